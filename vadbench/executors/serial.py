"""Built-in executor ``serial`` (the default): one run after another in the driver's own process.

No start-up cost and per-step progress bars; plugins registered in-process are visible to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from vadbench import hookimpl
from vadbench.api.errors import UsageError
from vadbench.api.executor import Executor, WorkerFailure, describe_error
from vadbench.api.types import RunResult, RunSpec
from vadbench.engine.runner import Runner, runs_on_cpu
from vadbench.plugins.manager import Plugins


@dataclass(frozen=True)
class SerialConfig:
    """cpus_per_run: torch threads for the runs (default: torch's own choice, all cores)."""

    cpus_per_run: int | None = None

    def __post_init__(self) -> None:
        if self.cpus_per_run is not None and self.cpus_per_run < 1:
            raise ValueError(f"cpus_per_run must be at least 1, got {self.cpus_per_run}")


class SerialExecutor(Executor):
    """One run after another in this process (the default)."""

    Config = SerialConfig

    def threads(self, spec: RunSpec) -> int | None:
        return (self.config.cpus_per_run or torch.get_num_threads()) if runs_on_cpu(spec) else None

    def open(self, plugins: Plugins, *, progress: bool) -> None:
        self._runner = Runner(plugins, progress=progress)
        self._threads = torch.get_num_threads()
        if self.config.cpus_per_run is not None:
            torch.set_num_threads(self.config.cpus_per_run)

    def close(self) -> None:
        torch.set_num_threads(self._threads)

    def execute(self, specs: Sequence[RunSpec]) -> Iterator[RunResult | WorkerFailure]:
        for spec in specs:
            try:
                outcome: RunResult | WorkerFailure = self._runner.run(spec)
            except UsageError:
                raise
            except Exception as error:  # e.g. CUDA out of memory: recorded and retried, the grid goes on
                outcome = WorkerFailure(spec, describe_error(error))
            yield outcome


@hookimpl
def vadbench_register_executors(register: Callable[..., None]) -> None:
    register("serial", SerialExecutor)
