"""What a user sees of a run while it trains: a bar on a terminal, plain lines in a log or a pipe, and one
line first when the run will take long.

A newcomer who pipes ``vadbench run`` into a log must not see nothing for an hour: a redrawn bar would be
most of a log, so off a terminal the progress is a line every `LINE_SECONDS`. Either way the first
`TIMED_STEPS` steps after the first (which pays one-off costs: allocation, compilation) are timed, and a
run whose schedule will take more than `LONG_RUN_SECONDS` at that pace says so and how to shorten it,
before the rest of its steps.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

import torch
from tqdm.auto import tqdm

#: A run whose training will take longer than this (seconds, at the pace of its first steps) says so first.
LONG_RUN_SECONDS = 300.0
#: Steps timed for the estimate, after the first.
TIMED_STEPS = 3
#: Seconds between two progress lines off a terminal.
LINE_SECONDS = 30.0
#: Whether this process may draw a bar on a terminal; a worker process (several share one terminal) writes
#: lines instead (`vadbench.executors.worker.run`).
BARS = True


def duration(seconds: float) -> str:
    """A rough duration for people: ``40 s``, ``12 min``, ``2.1 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def device_name(device: torch.device) -> str:
    """How the notice names the device the pace was measured on: ``CPU``, ``GPU`` (CUDA) or torch's name."""
    return {"cpu": "CPU", "cuda": "GPU"}.get(device.type, device.type)


class StepProgress:
    """Progress of `steps` training steps of the run `description` on `device`; nothing when not `enabled`.

    Call `step` after each step (1-based), with the latest logged loss when there is one.
    """

    def __init__(self, steps: int, description: str, device: torch.device, *, enabled: bool = True) -> None:
        self.steps, self.description, self.device, self.enabled = steps, description, device, enabled
        self.stream: TextIO = sys.stderr
        self.terminal = enabled and BARS and self.stream.isatty()
        self.bar = tqdm(total=steps, desc=description, disable=not self.terminal, leave=False, unit="step",
                        file=self.stream)
        self.first_done = 0.0
        self.pace: float | None = None
        self.last_line = 0.0

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.bar.close()

    def step(self, index: int, loss: float | None = None) -> None:
        """Record that step `index` is done."""
        if not self.enabled:
            return
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        self.bar.update(1)
        if index == 1 or (self.pace is None and index == 1 + TIMED_STEPS):
            self._time(index)
        if not self.terminal and self.pace is not None and time.monotonic() - self.last_line >= LINE_SECONDS:
            self._line(index, loss)

    def _time(self, index: int) -> None:
        """The clock after the first step, and the pace after `TIMED_STEPS` more; then the notice of a long run."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # queued steps would make the pace look faster than it is
        now = time.monotonic()
        if index == 1:
            self.first_done = now
            return
        self.pace = (now - self.first_done) / TIMED_STEPS
        self.last_line = now  # the first progress line comes `LINE_SECONDS` after the pace is known
        estimate = self.pace * self.steps
        if estimate > LONG_RUN_SECONDS:
            self._say(f"{self.description}: {self.steps} steps, about {duration(estimate)} on this "
                      f"{device_name(self.device)}; --steps N for a shorter run")

    def _line(self, index: int, loss: float | None) -> None:
        """A progress line for a log: the step, the loss, the pace and the time left at that pace."""
        pace = self.pace or 0.0
        self.last_line = time.monotonic()
        trained = f", loss {loss:.4f}" if loss is not None else ""
        left = duration(pace * (self.steps - index))
        self._say(f"{self.description}: step {index}/{self.steps}{trained}, {pace:.2f} s/step, about {left} left")

    def _say(self, line: str) -> None:
        if self.terminal:
            tqdm.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)
