"""Built-in executor ``stacked``: in this process, runs that differ only in their seed train together.

The specs are grouped by everything but the seed. A group of several fp32 seeds with protocol ``last``
trains as one stacked model (`vadbench.engine.stacking`: one copy of the data, one step for all seeds); any
other run runs alone, as under ``serial``. Stacked runs draw other dropout masks than the same runs
alone would, and which ones depends on the seeds stacked together (see `vadbench.engine.stacking`), so
`specs_as_run` marks each stacked run with its group's seeds (`RunSpec.stacked`): they get their own keys,
and a group of which only some runs are unfinished is trained whole again, so that each run's
numbers are the ones its key stands for.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import torch

from vadbench import hookimpl
from vadbench.api.errors import UsageError
from vadbench.api.executor import Executor, WorkerFailure, describe_error
from vadbench.api.types import RunResult, RunSpec
from vadbench.engine.runner import Runner, runs_on_cpu
from vadbench.engine.stacking import check_stackable, stack_groups
from vadbench.plugins.manager import Plugins


@dataclass(frozen=True)
class StackedConfig:
    """No options: the runs of a group share this process and its device."""


class StackedExecutor(Executor):
    """Seeds of one configuration trained together as one stacked model, in this process."""

    Config = StackedConfig
    same_numbers_as_serial = False  # stacked steps round differently and draw other dropout masks

    def open(self, plugins: Plugins, *, progress: bool) -> None:
        self._runner = Runner(plugins, progress=progress)

    def threads(self, spec: RunSpec) -> int | None:
        return torch.get_num_threads() if runs_on_cpu(spec) else None

    def specs_as_run(self, specs: Sequence[RunSpec], plugins: Plugins) -> list[RunSpec]:
        """Each run of a group that can stack, marked with the group's seeds in training order (sorted)."""
        specs = super().specs_as_run(specs, plugins)
        marked: dict[int, tuple[int, ...]] = {}
        for group in stack_groups(specs):
            try:
                check_stackable(group, plugins.methods.create(group[0].method, group[0].method_options))
            except UsageError as refusal:  # said, not silent: the user asked for stacked runs
                seeds = ", ".join(str(spec.seed) for spec in group)
                print(f"vadbench: --executor stacked: {group[0].method} on {group[0].dataset} (seeds {seeds}) "
                      f"trains each seed alone: {refusal}", file=sys.stderr)
                continue
            marked.update({id(spec): tuple(sorted(s.seed for s in group)) for spec in group})
        return [replace(spec, stacked=marked[id(spec)]) if id(spec) in marked else spec for spec in specs]

    def execute(self, specs: Sequence[RunSpec]) -> Iterator[RunResult | WorkerFailure]:
        for group in stack_groups(specs):
            if group[0].stacked:
                yield from self._together(group)
            else:
                for spec in group:
                    yield from self._together([spec])

    def _together(self, group: list[RunSpec]) -> Iterator[RunResult | WorkerFailure]:
        """The runs of `group`: stacked, they train with every seed of their group (`RunSpec.stacked`)."""
        try:
            if group[0].stacked:
                whole = [replace(group[0], seed=seed) for seed in group[0].stacked]
                wanted = {spec.key for spec in group}
                results = [r for r in self._runner.run_together(whole) if r.spec.key in wanted]
            else:
                results = self._runner.run_together(group)
        except UsageError:
            raise
        except Exception as error:  # e.g. CUDA out of memory: every run of the group is retried later
            yield from (WorkerFailure(spec, describe_error(error)) for spec in group)
            return
        yield from results


@hookimpl
def vadbench_register_executors(register: Callable[..., None]) -> None:
    register("stacked", StackedExecutor)
