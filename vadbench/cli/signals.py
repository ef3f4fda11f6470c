"""SIGTERM stops a command as Ctrl-C does.

A scheduler ending a job, or ``kill``, sends SIGTERM; Python's default would end the process at once and leave
the executors' worker processes orphaned. As a `KeyboardInterrupt`, it goes through the same cleanup as Ctrl-C:
the executors end their workers, and the command line says that the finished runs are stored.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, a scheduler ending the job) stops the command as Ctrl-C does,
    so that the executors' cleanup ends their worker processes instead of leaving them orphaned."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt
