"""Built-in executor ``ray`` (extra ``vadbench[ray]``): each run is a Ray task on a local or remote cluster.

Ray schedules the tasks by their ``num_gpus`` (fractional values pack several runs on one GPU) and
``num_cpus``. The tasks return their `RunResult` (scores included) to the driver, which writes the
run store, so results need no shared filesystem; the feature roots, however, are read by the
workers and must be visible to them at the same path. Ray's own task retries are off: a failed
task comes back as a worker failure, and the driver's retry policy applies as for every executor.

Ray starts its workers in the driver's working directory and puts it first on their ``sys.path``.
Started from a vadbench source checkout, the workers would then import the bare ``vadbench/``
folder instead of the installed package (whose ``vadbench.methods`` and ``vadbench.datasets`` exist
only once installed) and find no plugins. So the job gets an empty working directory
(`job_runtime_env`), and each task moves to the driver's folder only after its imports, when that
folder exists on the node, so that relative data roots still work on a local cluster.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from vadbench import hookimpl
from vadbench.api.errors import UsageError
from vadbench.api.executor import Executor, WorkerFailure, describe_error
from vadbench.api.types import RunResult, RunSpec
from vadbench.executors import worker
from vadbench.executors.local import available_cores
from vadbench.plugins.manager import Plugins

#: Driver settings that decide which plugins load; the workers get the same.
PLUGIN_ENVIRONMENT = ("VADBENCH_PLUGINS", "VADBENCH_DISABLE_PLUGIN_AUTOLOAD")


@dataclass(frozen=True)
class RayConfig:
    """address: a running cluster (``auto``, ``ray://host:10001``; default: start a local one);
    workers: runs at once on the local cluster (default: every core); gpus_per_run: GPUs per run,
    fractional allowed (default: 1 when the cluster has GPUs, else 0); cpus_per_run: CPUs (and torch
    threads) per run."""

    address: str | None = None
    workers: int | None = None
    gpus_per_run: float | None = None
    cpus_per_run: int = 1

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.cpus_per_run < 1:
            raise ValueError(f"cpus_per_run must be at least 1, got {self.cpus_per_run}")
        if self.gpus_per_run is not None and not (
            0 <= self.gpus_per_run <= 1 or float(self.gpus_per_run).is_integer()
        ):
            raise ValueError(f"gpus_per_run must be a fraction up to 1 or a whole number, got {self.gpus_per_run}")
        if self.address and self.workers:
            raise ValueError("workers sizes a local Ray cluster; with an address the cluster's resources decide")


class RayExecutor(Executor):
    """Ray tasks on a local or remote cluster (pip install "vadbench[ray]")."""

    Config = RayConfig

    def threads(self, spec: RunSpec) -> int | None:
        """`cpus_per_run`, unless the run is given a GPU (known before the cluster is joined only when
        ``--gpus-per-run`` or ``--device cuda`` says so; else its CPU threads stay in its key)."""
        on_gpu = (self.config.gpus_per_run or 0) > 0 or spec.device.startswith("cuda")
        return None if on_gpu else self.config.cpus_per_run

    def open(self, plugins: Plugins, *, progress: bool) -> None:
        self._ray = import_ray()
        self._started = not self._ray.is_initialized()
        if self._started:
            self._connect()
        gpus = self.config.gpus_per_run
        if gpus is None:
            gpus = 1 if self._ray.cluster_resources().get("GPU", 0) > 0 else 0
        environment = {name: os.environ[name] for name in PLUGIN_ENVIRONMENT if name in os.environ}
        self._task = self._ray.remote(worker.run).options(
            num_cpus=self.config.cpus_per_run, num_gpus=gpus, max_retries=0,
            runtime_env={"env_vars": environment} if environment else None,
        )
        self._in_flight: dict[Any, RunSpec] = {}
        self._progress = progress

    def _connect(self) -> None:
        """Start a local cluster or join the one at ``address``; a cluster that cannot be joined is one line."""
        try:
            with tempfile.TemporaryDirectory(prefix="vadbench-ray-") as empty:  # Ray uploads it at init
                self._ray.init(**self._init_arguments(), runtime_env=job_runtime_env(empty))
        except ConnectionError as error:
            if not self.config.address:
                raise
            # Ray reports a refused token as a failed connection, its cause inside a traceback's text.
            raise UsageError(
                f"--address {self.config.address}: cannot join a Ray cluster there ({describe_error(error)}); "
                "a cluster with token authentication needs RAY_AUTH_MODE=token and its token "
                "(~/.ray/auth_token or RAY_AUTH_TOKEN)"
            ) from None

    def _init_arguments(self) -> dict[str, Any]:
        if self.config.address:
            return {"address": self.config.address}
        workers = self.config.workers or max(1, available_cores() // self.config.cpus_per_run)
        return {"num_cpus": workers * self.config.cpus_per_run, "include_dashboard": False}

    def close(self) -> None:
        self._cancel()
        if self._started:
            self._ray.shutdown()

    def execute(self, specs: Sequence[RunSpec]) -> Iterator[RunResult | WorkerFailure]:
        for spec in specs:
            self._in_flight[self._task.remote(spec, self.config.cpus_per_run, os.getcwd(), self._progress)] = spec
        try:
            while self._in_flight:
                done, _ = self._ray.wait(list(self._in_flight), num_returns=1)
                yield self._outcome(done[0], self._in_flight.pop(done[0]))
        finally:
            self._cancel()

    def _outcome(self, ref: Any, spec: RunSpec) -> RunResult | WorkerFailure:
        """The task's result, or its failure (a usage error inside the task stops the grid)."""
        exceptions = self._ray.exceptions
        try:
            result: RunResult = self._ray.get(ref)
        except exceptions.RayTaskError as error:  # the run raised
            cause = error.cause
            if isinstance(cause, UsageError):
                raise UsageError(str(cause)) from None
            return WorkerFailure(spec, describe_error(cause))
        except exceptions.RayError as error:  # a worker or node was lost
            return WorkerFailure(spec, describe_error(error))
        return result

    def _cancel(self) -> None:
        """Stop the tasks still in flight (Ctrl-C, an error): nothing keeps running on the cluster."""
        for ref in self._in_flight:
            self._ray.cancel(ref, force=True)
        self._in_flight.clear()


def job_runtime_env(empty_folder: str) -> dict[str, Any]:
    """The Ray job's runtime environment: an empty working directory (see the module docstring)."""
    return {"working_dir": empty_folder}


def import_ray() -> ModuleType:
    """Ray, imported on first use so that vadbench never needs it unless this executor is chosen."""
    try:
        import ray
    except ImportError:
        raise UsageError('--executor ray needs Ray: pip install "vadbench[ray]"') from None
    return ray


@hookimpl
def vadbench_register_executors(register: Callable[..., None]) -> None:
    register("ray", RayExecutor)
