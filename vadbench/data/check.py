"""`vadbench data check`: validate everything a run would touch and list every problem at once.

A dataset whose adapter can collect problems (it has a ``check() -> CheckReport`` method, as every
file-backed adapter built on `vadbench.data.feature_dataset.FeatureDataset` does) reports all of them; any other
dataset is checked by loading it, which reports the first. A user fixing a data root then sees the
whole list in one go instead of one error per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.types import Benchmark

#: How many problems the command line prints before summing up the rest.
SHOWN_PROBLEMS = 20


class Problems:
    """Collects `UsageError` messages so that validation goes on past the first bad file."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    @contextmanager
    def collect(self) -> Iterator[None]:
        """Record a `UsageError` raised inside the block instead of propagating it."""
        try:
            yield
        except UsageError as error:
            self.add(str(error))

    def __len__(self) -> int:
        return len(self.messages)

    def raise_first(self, hint: str) -> None:
        """Raise the first problem as one `UsageError`, saying how many more there are and `hint`."""
        if not self.messages:
            return
        more = len(self.messages) - 1
        suffix = f" (and {more} more problem{'s' * (more > 1)}; {hint})" if more else ""
        raise UsageError(self.messages[0] + suffix)


@dataclass
class CheckReport:
    """The outcome of a data check: an empty `problems` list means the data is ready to run."""

    problems: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self, shown: int = SHOWN_PROBLEMS) -> list[str]:
        """What the command line prints: the summary, or the first `shown` problems and a count."""
        if self.ok:
            return self.summary.splitlines()
        extra = len(self.problems) - shown
        return self.problems[:shown] + ([f"... and {extra} more problems"] if extra > 0 else [])


def check_dataset(dataset: Any) -> CheckReport:
    """Validate `dataset` (a `vadbench.api.dataset.Dataset`): its own `check()` when it has one, else a load."""
    check = getattr(dataset, "check", None)
    if callable(check):
        report = check()
        assert isinstance(report, CheckReport)
        return report
    try:
        benchmark = dataset.load()
    except UsageError as error:
        return CheckReport([str(error)])
    return CheckReport([], summarize(benchmark))


def summarize(benchmark: Benchmark, details: dict[str, Any] | None = None) -> str:
    """Videos per split and label, snippets, frames and positive frames, as a few lines of text."""
    train, test = benchmark.train, benchmark.test
    positives = int(np.count_nonzero(test.frame_labels))
    lines = [
        f"{benchmark.name}: C={train.crops} crops, D={train.feature_dim}, "
        f"primary metric {benchmark.primary_metric}",
        f"train: {_videos(train.labels)}, pooled to {train.features.shape[2]} segments",
        f"test:  {_videos(test.labels)}, {len(test.features)} snippets, {len(test.frame_labels)} frames, "
        f"{positives} positive ({100 * positives / max(1, len(test.frame_labels)):.1f}%)",
    ]
    lines += [f"{key}: {value}" for key, value in (details or {}).items()]
    return "\n".join(lines)


def _videos(labels: np.ndarray) -> str:
    abnormal = int(np.count_nonzero(labels))
    return f"{len(labels)} videos ({abnormal} abnormal, {len(labels) - abnormal} normal)"
