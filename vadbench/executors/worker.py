"""What runs inside a worker process (local or Ray): one Runner per process, runs one at a time.

The runner is built on the first run a process gets and kept, so every later run of the same
benchmark in that process skips loading it. Plugins are loaded in the worker itself, from entry
points and ``VADBENCH_PLUGINS``, exactly as the driver loads its own.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time

import torch
from tqdm.auto import tqdm

from vadbench.api.types import RunResult, RunSpec
from vadbench.engine import progress as step_progress
from vadbench.engine.runner import Runner
from vadbench.plugins.manager import get_plugins


def start(gpu: str | None, driver: int) -> None:
    """Initialise a local worker process: pin its GPU, leave Ctrl-C to the driver, end with the driver.

    CUDA reads ``CUDA_VISIBLE_DEVICES`` when torch first touches it, which is after this, so the
    worker's ``cuda`` is the pinned GPU. The driver stops the workers itself on Ctrl-C; a worker
    that caught the signal too would print a traceback and might lose the run it just finished.
    tqdm's default lock is a multiprocessing semaphore, which a worker ended by Ctrl-C would leak
    (a resource_tracker warning); a worker draws no bars, so a thread lock does. A thread watches
    the driver (process id `driver`), so that a worker whose driver was killed outright ends too.
    """
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tqdm.set_lock(threading.RLock())
    threading.Thread(target=_exit_without, args=(driver,), daemon=True, name="driver-watch").start()


def _exit_without(driver: int) -> None:
    """End this worker once the driver that started it is gone (killed with SIGKILL: no cleanup ran).

    Otherwise it would finish its run for nobody and then wait for work forever, holding its GPU.
    The driver is this process's parent; an orphan gets another one.
    """
    while os.getppid() == driver:
        time.sleep(1)
    os._exit(1)


def run(spec: RunSpec, threads: int, folder: str | None = None, progress: bool = False) -> RunResult:
    """Run `spec` with `threads` torch threads (the same count gives the same numbers on the CPU).

    `folder`: the driver's working directory, entered when it exists here, so that relative data
    roots resolve as they do for the driver (a Ray worker starts elsewhere; see executors.ray_cluster).
    `progress`: the driver's (off with ``--quiet``): the run says first when it will take long, and writes a
    progress line every half minute, never a bar (the workers share the driver's terminal or log).
    """
    torch.set_num_threads(threads)
    if folder is not None and os.path.isdir(folder):
        os.chdir(folder)
    step_progress.BARS = False
    runner = _runner()
    runner.progress = progress
    return runner.run(spec)


@functools.cache
def _runner() -> Runner:
    """This process's runner (it caches the benchmarks it loads)."""
    return Runner(get_plugins(), progress=False)
