"""Built-in executor ``local``: worker processes on this machine, one per visible GPU or N on the CPU.

Each worker is a single-process pool of its own (spawn context, so CUDA and torch's threads start
clean), pinned to one GPU and to a share of the CPU cores. One pool per worker means a worker that
dies takes only its own run with it: that run is reported as a worker failure and the worker is
restarted for the next run, while the other workers go on. A worker keeps its runner, so runs of
the same benchmark in that worker load it once.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import torch

from vadbench import hookimpl
from vadbench.api.errors import UsageError
from vadbench.api.executor import Executor, WorkerFailure, describe_error
from vadbench.api.types import RunResult, RunSpec
from vadbench.engine.runner import runs_on_cpu
from vadbench.executors import worker
from vadbench.plugins.manager import Plugins


@dataclass(frozen=True)
class LocalConfig:
    """workers: processes (default: one per visible GPU, else one per CPU core);
    cpus_per_run: torch threads per worker (default: the cores shared out among the workers)."""

    workers: int | None = None
    cpus_per_run: int | None = None

    def __post_init__(self) -> None:
        for name in ("workers", "cpus_per_run"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")


class LocalExecutor(Executor):
    """Worker processes on this machine: one per visible GPU, or N CPU workers."""

    Config = LocalConfig

    def _shares(self) -> tuple[list[str], int, int]:
        """The visible GPUs, the number of workers and the torch threads of each."""
        gpus = visible_gpus()
        cores = available_cores()
        count = self.config.workers or len(gpus) or cores
        return gpus, count, self.config.cpus_per_run or max(1, cores // count)

    def threads(self, spec: RunSpec) -> int | None:
        return self._shares()[2] if runs_on_cpu(spec) else None

    def open(self, plugins: Plugins, *, progress: bool) -> None:
        gpus, count, threads = self._shares()
        # More workers than GPUs share the GPUs round-robin (several small runs per GPU).
        self._workers = [_Worker(gpus[i % len(gpus)] if gpus else None, threads, progress) for i in range(count)]

    def close(self) -> None:
        for each in self._workers:
            each.stop()

    def execute(self, specs: Sequence[RunSpec]) -> Iterator[RunResult | WorkerFailure]:
        queue = deque(specs)
        running: dict[Future[RunResult], tuple[_Worker, RunSpec]] = {}
        try:
            while queue or running:
                busy = {each for each, _ in running.values()}
                for each in self._workers:
                    if queue and each not in busy:
                        spec = queue.popleft()
                        running[each.submit(spec)] = (each, spec)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    each, spec = running.pop(future)
                    yield _outcome(each, spec, future)
        finally:
            for each, _ in running.values():  # interrupted: stop the runs still in flight
                each.kill()


class _Worker:
    """One worker process (a single-process pool), started on first use and again after it dies."""

    def __init__(self, gpu: str | None, threads: int, progress: bool) -> None:
        self.gpu = gpu
        self.threads = threads
        self.progress = progress
        self._pool: ProcessPoolExecutor | None = None
        self._future: Future[RunResult] | None = None

    def submit(self, spec: RunSpec) -> Future[RunResult]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=worker.start,
                initargs=(self.gpu, os.getpid()),
            )
        self._future = self._pool.submit(worker.run, spec, self.threads, None, self.progress)
        return self._future

    def stop(self) -> None:
        """Let the process exit; one still running a run (Ctrl-C) is ended with it."""
        if self._future is not None and not self._future.done():
            self.kill()
        elif self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def kill(self) -> None:
        """End the process now, with its run (``terminate_workers`` does this from Python 3.14 on)."""
        if self._pool is None:
            return
        for process in list((self._pool._processes or {}).values()):
            process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)  # returns at once: the process is gone
        self._pool = None


def _outcome(each: _Worker, spec: RunSpec, future: Future[RunResult]) -> RunResult | WorkerFailure:
    """The result of a finished future, or the failure of its worker (a usage error stops the grid)."""
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, UsageError):
        raise error
    if isinstance(error, BrokenProcessPool):
        each.kill()  # the next run starts a fresh process
        return WorkerFailure(spec, "the worker process died (killed, out of memory, or crashed)")
    return WorkerFailure(spec, describe_error(error))


def visible_gpus() -> list[str]:
    """IDs of the GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` would name them."""
    count = torch.cuda.device_count()
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


def available_cores() -> int:
    """CPU cores this process may run on (its affinity, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@hookimpl
def vadbench_register_executors(register: Callable[..., None]) -> None:
    register("local", LocalExecutor)
