"""Conformance checks of an executor (`vadbench.api.executor.Executor`): a few tiny runs of the built-in methods
on the synthetic benchmark give the results of the ``serial`` executor (configure one CPU per run, as the
reference uses one torch thread). Executors declare ``Executor.same_numbers_as_serial``; one that does not
(``stacked``) must match serial up to float rounding, on runs that draw no random numbers in their step.
"""

from __future__ import annotations

import functools

import numpy as np

from vadbench.api.executor import Executor, WorkerFailure
from vadbench.api.types import RunResult, RunSpec
from vadbench.executors.serial import SerialConfig, SerialExecutor
from vadbench.plan.grid import flatten
from vadbench.plugins.manager import get_plugins
from vadbench.testing.common import ATOL

#: A tiny synthetic benchmark (the runs take a second each).
_TINY_SYNTHETIC = {
    "train_normal": 8, "train_abnormal": 8, "test_normal": 6, "test_abnormal": 6,
    "min_length": 12, "max_length": 24, "feature_dim": 16, "crops": 2, "mu": 4,
}
#: Two seeds of one configuration (which the stacked executor trains together; dropout off, so that
#: stacking changes nothing but float rounding) and another method: the built-ins, always installed.
EXECUTOR_SPECS = tuple(
    RunSpec(method, dataset_options=_TINY_SYNTHETIC, method_options=options, seed=seed, steps=6, device="cpu")
    for method, options, seed in (
        ("sultani-mil", {"dropout": 0.0}, 0), ("sultani-mil", {"dropout": 0.0}, 1), ("rtfm", {}, 0),
    )
)


def check_same_results_as_serial(executor: Executor) -> None:
    """`EXECUTOR_SPECS` give the same metrics, config and scores as under ``serial`` (one thread per run).

    Exactly the same unless the executor declares ``same_numbers_as_serial = False``; then equal up
    to float rounding (`ATOL`), with the same config but for ``engine`` (how the steps ran).
    """
    reference = _serial_results()
    with executor.session(get_plugins(), progress=False):
        outcomes = list(executor.execute(EXECUTOR_SPECS))
    failures = [f"{o.spec.method} seed {o.spec.seed}: {o.error}" for o in outcomes if isinstance(o, WorkerFailure)]
    assert not failures, f"runs failed: {failures}"
    results = [o for o in outcomes if isinstance(o, RunResult)]
    assert sorted(r.spec.key for r in results) == sorted(reference), "each spec must come back exactly once"
    exact = executor.same_numbers_as_serial
    for result in results:
        _compare(result, reference[result.spec.key], exact)


@functools.cache
def _serial_results() -> dict[str, RunResult]:
    """The reference: `EXECUTOR_SPECS` under ``serial`` with one thread (computed once per process)."""
    serial = SerialExecutor(SerialConfig(cpus_per_run=1))
    with serial.session(get_plugins(), progress=False):
        results = [o for o in serial.execute(EXECUTOR_SPECS) if isinstance(o, RunResult)]
    assert all(r.status == "ok" for r in results), "the serial reference runs failed"
    return {r.spec.key: r for r in results}


def _compare(result: RunResult, reference: RunResult, exact: bool) -> None:
    """Assert that `result` reproduces `reference`: exactly, or up to float rounding."""
    run = f"{result.spec.method} seed {result.spec.seed}"
    assert result.status == "ok", f"{run}: status {result.status!r} ({result.error})"
    ignored = set() if exact else {"engine"}
    config = {k: v for k, v in result.config.items() if k not in ignored}
    assert config == {k: v for k, v in reference.config.items() if k not in ignored}, f"{run}: config differs"
    ours, theirs = flatten(result.metrics), flatten(reference.metrics)
    assert ours.keys() == theirs.keys(), f"{run}: metrics {sorted(ours)} differ from serial's {sorted(theirs)}"
    assert result.scores.keys() == reference.scores.keys(), f"{run}: scored videos differ"
    if exact:
        assert ours == theirs, f"{run}: metrics differ from serial's"
        same = all(np.array_equal(result.scores[v], reference.scores[v]) for v in reference.scores)
    else:
        assert all(np.isclose(ours[k], theirs[k], rtol=ATOL, atol=ATOL) for k in theirs), f"{run}: metrics differ"
        same = all(np.allclose(result.scores[v], reference.scores[v], atol=ATOL) for v in reference.scores)
    assert same, f"{run}: scores differ from serial's"


EXECUTOR_CHECKS = (check_same_results_as_serial,)
