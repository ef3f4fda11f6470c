"""The executor contract: where the runs of a grid execute (this process, worker processes, a Ray cluster).

An executor only runs specs and hands back what came of each one. The driver
(`vadbench.executors.driver.run_specs`) owns everything around it: skipping finished runs, writing the
run store as results arrive (so an interrupted grid resumes), the per-run lines, and the retry
policy (`results_with_retry`), which is therefore the same for every executor.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from vadbench.api.errors import UsageError
from vadbench.api.types import RunResult, RunSpec
from vadbench.plugins.registry import option_names

if TYPE_CHECKING:
    from vadbench.plugins.manager import Plugins

#: Attempts per run: a worker failure is retried once, then the run is stored as failed.
ATTEMPTS = 2


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

    def open(self, plugins: Plugins, *, progress: bool) -> None:  # noqa: B027 (optional hook, no-op default)
        """Acquire what the runs need (a runner, worker processes, a cluster connection).

        `plugins` are the driver's; executors whose workers are other processes load their own
        there (entry points and ``VADBENCH_PLUGINS``). `progress` allows per-step progress bars
        (runs in this process only). Raise `UsageError` for a missing extra.
        """

    def close(self) -> None:  # noqa: B027 (optional hook, no-op default)
        """Release everything `open` acquired and stop any run still in flight (after an error or Ctrl-C)."""

    @contextmanager
    def session(self, plugins: Plugins, *, progress: bool) -> Iterator[Executor]:
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

    def plan(self, specs: Sequence[RunSpec], plugins: Plugins) -> list[RunSpec]:
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


def create_executor(plugins: Plugins, name: str, options: Mapping[str, Any]) -> Executor:
    """The registered executor `name` with `options`; an option it does not take is named as a flag."""
    entry = plugins.executors.get(name)
    known = option_names(entry.cls.Config)
    for option in options:
        if option not in known:
            takes = ", ".join(f"--{flag(k)}" for k in known) or "no options"
            raise UsageError(f"--{flag(option)} does not apply to --executor {name} (it takes {takes})")
    return plugins.executors.create(name, options)


def flag(option: str) -> str:
    """The command-line flag of an executor option: ``gpus_per_run`` -> ``gpus-per-run``."""
    return option.replace("_", "-")


def results_with_retry(
    executor: Executor, specs: Sequence[RunSpec], on_retry: Callable[[WorkerFailure], None]
) -> Generator[RunResult, None, None]:
    """Each spec's result as it arrives; a worker failure is retried once, after the other runs.

    Retrying after the rest of the grid gives a lost node or a busy GPU time to come back. A failure
    that will be retried is passed to `on_retry`; a run that fails on every attempt is yielded as a
    failed `RunResult` whose error gives each attempt's failure.
    """
    errors: dict[str, list[str]] = {}
    for attempt in range(1, ATTEMPTS + 1):
        if not specs:
            return
        retry = []
        for outcome in executor.execute(specs):
            if isinstance(outcome, RunResult):
                yield outcome
                continue
            errors.setdefault(outcome.spec.key, []).append(outcome.error)
            if attempt < ATTEMPTS:
                on_retry(outcome)
                retry.append(outcome.spec)
            else:
                yield failed_result(outcome.spec, errors[outcome.spec.key])
        specs = retry


def failed_result(spec: RunSpec, errors: Sequence[str]) -> RunResult:
    """The stored record of a run whose worker failed on every attempt."""
    attempts = "; ".join(f"attempt {i}: {error}" for i, error in enumerate(errors, 1))
    return RunResult(spec, status="failed", error=f"worker failed {len(errors)} times ({attempts})")


def describe_error(error: BaseException) -> str:
    """One line for a worker's exception: its type and message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
