"""Executors: the same numbers whichever one runs a grid, worker failures retried once, Ctrl-C resumable."""

import dataclasses
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import TINY_SYNTHETIC

from vadbench.api.errors import UsageError
from vadbench.api.executor import Executor
from vadbench.api.types import RunResult, RunSpec
from vadbench.executors.driver import create_executor, run_specs
from vadbench.executors.ray_cluster import job_runtime_env
from vadbench.executors.serial import SerialExecutor
from vadbench.plugins.manager import load_plugins
from vadbench.report.store import RunStore

TESTS = Path(__file__).resolve().parents[1]
#: One thread per run everywhere: torch's CPU reductions depend on the thread count.
OPTIONS = {"serial": {"cpus_per_run": 1}, "local": {"workers": 2, "cpus_per_run": 1}, "ray": {"cpus_per_run": 1}}
#: The executors that start processes (worker processes, a Ray cluster): ``slow``.
LOCAL = pytest.param("local", marks=pytest.mark.slow)
RAY = pytest.param("ray", marks=pytest.mark.slow)


def spec(method="sultani-mil", seed=0, **options):
    return RunSpec(method, dataset_options=dict(TINY_SYNTHETIC), method_options=options, seed=seed, steps=6,
                   device="cpu")


GRID = [spec(method, seed) for method in ("rtfm", "sultani-mil") for seed in (0, 1)]


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster with 2 CPUs whose workers can import the test plugin."""
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:  # the cluster's workers inherit this environment
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
        with tempfile.TemporaryDirectory() as empty:
            ray.init(num_cpus=2, include_dashboard=False, runtime_env=job_runtime_env(empty))
    yield
    ray.shutdown()


@pytest.fixture
def executor(request):
    """The executor named by the test's parameter (ray only where Ray is installed)."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return create_executor(load_plugins(), request.param, OPTIONS[request.param])


@pytest.fixture(scope="module")
def serial_results(tmp_path_factory):
    serial = create_executor(load_plugins(), "serial", OPTIONS["serial"])
    return run_specs(GRID, tmp_path_factory.mktemp("serial"), progress=False, executor=serial)


@pytest.mark.parametrize("executor", [LOCAL, RAY], indirect=True)
def test_same_specs_give_identical_results_with_every_executor(executor, serial_results, tmp_path):
    results = run_specs(GRID, tmp_path, progress=False, executor=executor)
    # spec order, whatever order they finished in; each keyed on the one thread it ran with
    assert [r.spec for r in results] == [dataclasses.replace(s, threads=1) for s in GRID]
    for ours, reference in zip(results, serial_results, strict=True):
        assert ours.status == reference.status == "ok"
        assert ours.metrics == reference.metrics and ours.config == reference.config
        stored = RunStore(tmp_path).scores(ours.spec)  # the driver wrote what the workers sent back
        for video, scores in reference.scores.items():
            np.testing.assert_array_equal(ours.scores[video], scores)
            np.testing.assert_array_equal(stored[video], scores)


@pytest.mark.parametrize("executor", ["serial", LOCAL, RAY], indirect=True)
def test_worker_failures_are_retried_once_and_the_grid_goes_on(executor, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VADBENCH_PLUGINS", "flaky_plugin")  # the workers load it themselves
    monkeypatch.syspath_prepend(str(TESTS))
    states = {name: tmp_path / name for name in ("raises", "twice", "crashes")}
    for state in states.values():
        state.mkdir()
    specs = [
        spec("flaky", state=str(states["raises"]), failures=1),
        spec("flaky", state=str(states["twice"]), failures=2),
        spec("sultani-mil"),
    ]
    if not isinstance(executor, SerialExecutor):  # the serial executor's worker is the test process itself
        specs.append(spec("flaky", state=str(states["crashes"]), failures=1, crash=True))  # a lost worker process
    results = run_specs(specs, tmp_path / "out", plugins=load_plugins(), executor=executor)

    assert [r.status for r in results] == ["ok", "failed", "ok", "ok"][: len(specs)]
    assert len(list(states["raises"].iterdir())) == 2 and len(list(states["twice"].iterdir())) == 2
    failed = RunStore(tmp_path / "out").result(results[1].spec)
    assert failed.status == "failed" and "attempt 1: RuntimeError: flaky: attempt 1 fails on purpose" in failed.error
    assert "attempt 2: RuntimeError: flaky: attempt 2 fails on purpose" in failed.error
    assert not RunStore(tmp_path / "out").is_finished(results[1].spec)  # the next invocation tries it again
    err = capsys.readouterr().err
    assert err.count("will retry after the others") == len(specs) - 1


@dataclass(frozen=True)
class NoOptions:
    pass


class FinishesOneThenInterrupted(Executor):
    """Yields the first run's result, then the user presses Ctrl-C."""

    Config = NoOptions
    closed = False

    def execute(self, specs):
        yield RunResult(specs[0], status="ok", metrics={"auc": 0.5, "ap": 0.5}, timings={"total": 0.0})
        raise KeyboardInterrupt

    def close(self):
        self.closed = True


def test_ctrl_c_keeps_the_finished_runs_and_closes_the_executor(tmp_path):
    executor = FinishesOneThenInterrupted(NoOptions())
    with pytest.raises(KeyboardInterrupt):
        run_specs(GRID, tmp_path, progress=False, executor=executor)
    assert executor.closed
    assert [RunStore(tmp_path).is_finished(s) for s in GRID] == [True, False, False, False]


def test_an_option_the_executor_does_not_take_is_named_as_a_flag():
    with pytest.raises(UsageError, match=r"--workers does not apply to --executor serial \(it takes --cpus-per-run\)"):
        create_executor(load_plugins(), "serial", {"workers": 2})
    with pytest.raises(UsageError, match="unknown executor 'slurm'"):
        create_executor(load_plugins(), "slurm", {})
    with pytest.raises(UsageError, match="gpus_per_run must be a fraction up to 1 or a whole number"):
        create_executor(load_plugins(), "ray", {"gpus_per_run": 1.5})


def test_a_ray_cluster_that_refuses_the_driver_is_one_line_naming_the_address_and_the_token(monkeypatch):
    def init(**arguments):  # what Ray 2.60 raises when the cluster wants a token this driver lacks
        raise ConnectionError(f"Failed to connect to Ray cluster at {arguments['address']}")

    fake_ray = SimpleNamespace(is_initialized=lambda: False, init=init)
    monkeypatch.setattr("vadbench.executors.ray_cluster.import_ray", lambda: fake_ray)
    executor = create_executor(load_plugins(), "ray", {"address": "10.0.0.1:6379"})
    with pytest.raises(UsageError, match=r"--address 10.0.0.1:6379: cannot join .*RAY_AUTH_MODE=token") as error:
        executor.open(load_plugins(), progress=False)
    assert "\n" not in str(error.value)


def test_ray_missing_is_a_usage_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    executor = create_executor(load_plugins(), "ray", {})
    with pytest.raises(UsageError, match=r'pip install "vadbench\[ray\]"'):
        executor.open(load_plugins(), progress=False)
