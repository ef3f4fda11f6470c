"""The executor contract: where the runs of a grid execute (this process, worker processes, a Ray cluster).

An executor only runs specs and hands back what came of each one. The driver
(`vadbench.executors.driver.run_specs`) owns everything around it: skipping finished runs, writing the
run store as results arrive (so an interrupted grid resumes), the per-run lines, and the retry
policy (`vadbench.executors.driver.results_with_retry`), which is therefore the same for every executor.

The driver hands an executor its loaded plugins (`vadbench.plugins.manager.Plugins`, typed `Any` here so
that the contracts depend on nothing else of vadbench); an executor that runs specs itself passes them
to `vadbench.engine.runner.Runner`.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from vadbench.api.types import RunResult, RunSpec


@dataclass(frozen=True)
class WorkerFailure:
    """A run that produced no result: its worker raised, or the worker process or node was lost.

    A run that trains but diverges is not a worker failure: it returns a failed `RunResult`, and
    retrying it with the same seed would diverge again.
    """

    spec: RunSpec
    error: str


class Executor(abc.ABC):
    """Base class of executors. Subclasses set ``Config``: a frozen dataclass of all options.

    Constructors only store the config; `open` acquires resources, `close` releases them. Options
    named ``workers``, ``address``, ``gpus_per_run`` and ``cpus_per_run`` are set by the command-line
    flags of the same names.
    """

    Config: ClassVar[type]
    #: True when a run gives exactly the numbers it gives under ``serial`` (same torch threads); an
    #: executor that changes the arithmetic (``stacked``) sets False (`vadbench.testing` checks either).
    same_numbers_as_serial: ClassVar[bool] = True

    def __init__(self, config: Any) -> None:
        self.config = config

    def open(self, plugins: Any, *, progress: bool) -> None:  # noqa: B027 (optional hook, no-op default)
        """Acquire what the runs need (a runner, worker processes, a cluster connection).

        `plugins` are the driver's; executors whose workers are other processes load their own
        there (entry points and ``VADBENCH_PLUGINS``). `progress` allows per-step progress (a bar
        on a terminal, lines in a log; runs in this process only). Raise `UsageError` for a missing extra.
        """

    def close(self) -> None:  # noqa: B027 (optional hook, no-op default)
        """Release everything `open` acquired and stop any run still in flight (after an error or Ctrl-C)."""

    @contextmanager
    def session(self, plugins: Any, *, progress: bool) -> Iterator[Executor]:
        """`open` on entry, `close` on exit, whatever ends the block."""
        self.open(plugins, progress=progress)
        try:
            yield self
        finally:
            self.close()

    def threads(self, spec: RunSpec) -> int | None:
        """The torch threads a run of `spec` trains with here when it runs on the CPU, None when it runs on a
        GPU. It moves the numbers, so it is part of the run's key (`RunSpec.threads`); an executor that
        does not fix its runs' threads keeps the default None, and its CPU runs' keys cannot tell them apart."""
        return None

    def specs_as_run(self, specs: Sequence[RunSpec], plugins: Any) -> list[RunSpec]:
        """`specs` as this executor will run them (called by the driver before anything runs): each with the
        `threads` it gets here. An executor whose runs give other numbers than the same runs alone also
        marks that in their identity (`RunSpec.stacked`), so that they are stored and tabled apart."""
        return [replace(spec, threads=self.threads(spec)) for spec in specs]

    @abc.abstractmethod
    def execute(self, specs: Sequence[RunSpec]) -> Iterator[RunResult | WorkerFailure]:
        """Run each spec once and yield its outcome as soon as it is known, in any order.

        A `UsageError` raised by a run (a bad data root fails every run alike) is raised here and
        stops the grid. When the iteration stops early (Ctrl-C), `close` must stop the runs still in
        flight; a generator may also stop them when it is closed.
        """


def describe_error(error: BaseException) -> str:
    """One line for a worker's exception: its type and message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
