"""Built-in executor ``stacked``: in this process, runs that differ only in their seed train together.

The specs are grouped by everything but the seed. A group of several fp32 runs with protocol ``last``
trains as one stacked model (`vadbench.multirun`: one copy of the data, one step for all seeds); any
other run runs alone, as under ``serial``. Stacked runs draw other dropout masks than the same runs
alone would (see `vadbench.multirun`), so choose one executor per comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from vadbench import hookimpl
from vadbench.errors import UsageError
from vadbench.executor import Executor, WorkerFailure, describe_error
from vadbench.multirun import can_stack, run_stacked, stack_groups
from vadbench.plugins import Plugins
from vadbench.runner import Runner
from vadbench.types import RunResult, RunSpec


@dataclass(frozen=True)
class StackedConfig:
    """No options: the runs of a group share this process and its device."""


class StackedExecutor(Executor):
    """Seeds of one configuration trained together as one stacked model, in this process."""

    Config = StackedConfig
    same_numbers_as_serial = False  # stacked steps round differently and draw other dropout masks

    def open(self, plugins: Plugins, *, progress: bool) -> None:
        self._runner = Runner(plugins, progress=progress)

    def execute(self, specs: Sequence[RunSpec]) -> Iterator[RunResult | WorkerFailure]:
        for group in stack_groups(specs):
            if can_stack(group):
                yield from self._together(group)
            else:
                for spec in group:
                    yield from self._together([spec], stacked=False)

    def _together(self, group: list[RunSpec], stacked: bool = True) -> Iterator[RunResult | WorkerFailure]:
        try:
            results = run_stacked(self._runner, group) if stacked else [self._runner.run(group[0])]
        except UsageError:
            raise
        except Exception as error:  # e.g. CUDA out of memory: every run of the group is retried later
            yield from (WorkerFailure(spec, describe_error(error)) for spec in group)
            return
        yield from results


@hookimpl
def vadbench_register_executors(register: Callable[..., None]) -> None:
    register("stacked", StackedExecutor)
