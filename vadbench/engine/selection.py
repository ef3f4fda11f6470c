"""Selectors: how each model-selection protocol (`vadbench.plan.protocols`) watches a training run.

The runner trains on `Selector.train`, calls `on_step` after every step and `finish` once after the
last one; `finish` loads the selected weights, which the runner then evaluates on the test set once.
Only `OracleTestSelector` reads the test labels before that final evaluation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from vadbench.api.errors import UsageError
from vadbench.api.method import Method
from vadbench.api.types import Benchmark, TrainSet
from vadbench.engine.acceleration import Acceleration
from vadbench.engine.scoring import SegmentVideos, VideoScorer
from vadbench.plan.protocols import parse_protocol
from vadbench.report.metrics import METRICS, expand_to_frames


class Selector:
    """Protocol ``last``: trains on every training video and keeps the final weights.

    The runner trains on `train`, calls `on_step` after every step and `finish` after the last one.
    """

    def __init__(self, train: TrainSet) -> None:
        self.train = train

    def on_step(self, model: nn.Module, step: int) -> None:
        """Called by the training loop after each (1-based) step."""

    def finish(self, model: nn.Module) -> dict[str, Any]:
        """Load the selected weights into `model`; returns what to record about the selection."""
        return {}

    def curve(self) -> dict[str, Any]:
        """The selection metric at each check, for the run's stored training curves (none here)."""
        return {}


class CheckpointSelector(Selector):
    """Scores the model at checkpoints and keeps the weights with the best score.

    Subclasses say which steps are checkpoints (`is_checkpoint`), how weights are scored (`criterion`)
    and which checkpoint a tie keeps (`improves`). When no checkpoint was scored, `finish` leaves the
    final weights in place and records the last step as the selected one.

    criterion_name: what `criterion` measures, named in the stored selection curve (`curve`).
    """

    criterion_name = ""

    def __init__(self, train: TrainSet, steps: int, every: int) -> None:
        super().__init__(train)
        self.steps, self.every = steps, every
        self.best_score = -np.inf
        self.best_step = steps
        self.best_state: dict[str, torch.Tensor] | None = None
        self.scored = 0
        self.checks: list[tuple[int, float]] = []

    def is_checkpoint(self, step: int) -> bool:
        """Whether the weights after (1-based) `step` are scored."""
        raise NotImplementedError

    def criterion(self, model: nn.Module) -> float:
        """The selection score of the current weights (higher is better)."""
        raise NotImplementedError

    def improves(self, score: float) -> bool:
        """Whether a checkpoint scoring `score` replaces the best one so far."""
        raise NotImplementedError

    def on_step(self, model: nn.Module, step: int) -> None:
        if not self.is_checkpoint(step):
            return
        score = self.criterion(model)
        model.train()  # scoring switched the model to eval mode
        self.scored += 1
        self.checks.append((step, score))
        if self.improves(score):
            self.best_score, self.best_step = score, step
            self.best_state = copy.deepcopy(model.state_dict())

    def finish(self, model: nn.Module) -> dict[str, Any]:
        selection: dict[str, Any] = {"selected_step": self.best_step, "checkpoints_scored": self.scored}
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
            selection["selection_score"] = float(self.best_score)
        return selection

    def curve(self) -> dict[str, Any]:
        values = [score if np.isfinite(score) else None for _, score in self.checks]
        return {"selection": {"metric": self.criterion_name, "steps": [step for step, _ in self.checks],
                              "values": values, "selected_step": self.best_step}}


class ValidationSelector(CheckpointSelector):
    """Protocol ``val``: best video-level AUC on held-out training videos (video labels only).

    The held-out videos go through the one scoring path (`VideoScorer`) as the test set does: batched or
    alone as the method declares, trimmed to their true segments, post-processed as the method declares.
    A video's score is the mean of its top tenth of segments (at least one; 3 of RTFM's 32), over its
    true segments only.
    """

    criterion_name = "video AUC of held-out training videos"

    def __init__(
        self, method: Method, train: TrainSet, held_out: TrainSet, device: torch.device, *,
        steps: int, every: int,
    ) -> None:
        super().__init__(train, steps, every)
        self.scorer = VideoScorer(method, SegmentVideos(held_out), device)
        self.labels = np.asarray(held_out.labels)

    def is_checkpoint(self, step: int) -> bool:
        """Every `every` steps and after the last one."""
        return step % self.every == 0 or step == self.steps

    def improves(self, score: float) -> bool:
        """Ties keep the later checkpoint: a saturated validation AUC does not stop training short."""
        return score >= self.best_score

    def video_scores(self, model: nn.Module) -> np.ndarray:
        """Each held-out video's score: the mean of the top tenth (at least one) of its segment scores."""
        return np.array([top_tenth_mean(scores) for scores in self.scorer(model).scores])

    def criterion(self, model: nn.Module) -> float:
        return float(roc_auc_score(self.labels, self.video_scores(model)))


def top_tenth_mean(scores: np.ndarray) -> float:
    """The mean of the largest max(1, T // 10) of a video's T scores (RTFM's video score: 3 of 32)."""
    count = max(1, len(scores) // 10)
    return float(np.sort(scores)[::-1][:count].mean())  # largest first, summed in the order topk gives


class OracleTestSelector(CheckpointSelector):
    """Protocol ``oracle-test``: best primary metric on the TEST set, selected as the public RTFM code does.

    It scores with the run's test scorer (`test_scorer` builds it, or gives the one built already), in fp32
    whatever the run's precision, and shares its prepared batches with the final evaluation: on an
    accelerator the test set is held once. The scorer is asked for at the first checkpoint, after the
    training set took its place on the device.
    """

    def __init__(
        self, benchmark: Benchmark, test_scorer: Callable[[], VideoScorer], *, steps: int, every: int, after: int
    ) -> None:
        super().__init__(benchmark.train, steps, every)
        self.after = after
        self.test = benchmark.test
        self.test_scorer = test_scorer
        self.metric = METRICS[benchmark.primary_metric]
        self.criterion_name = f"frame {benchmark.primary_metric.upper()} of the test set"

    def criterion(self, model: nn.Module) -> float:
        scores = np.concatenate(self.test_scorer().with_acceleration(Acceleration())(model).scores)
        frames = expand_to_frames(scores, self.test.snippet_frames)
        value = self.metric.of(frames, self.test)
        return -np.inf if value != value else value

    def is_checkpoint(self, step: int) -> bool:
        """``step % every == 0 and step > after``, the public code's test condition (the last step included
        only when it satisfies it)."""
        return step % self.every == 0 and step > self.after

    def improves(self, score: float) -> bool:
        """Strict improvement: ties keep the FIRST best, as the public code's ``auc > best_AUC``."""
        return score > self.best_score


def hold_out(train: TrainSet, fraction: float, seed: int) -> tuple[TrainSet, TrainSet]:
    """(training, held-out) videos: `fraction` of each class held out, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for label in (0, 1):
        videos = np.flatnonzero(np.asarray(train.labels) == label)
        if len(videos) < 2:
            raise UsageError(
                f"protocol val needs at least 2 {'abnormal' if label else 'normal'} training videos, "
                f"got {len(videos)}"
            )
        count = min(len(videos) - 1, max(1, round(fraction * len(videos))))
        held.extend(rng.choice(videos, size=count, replace=False).tolist())
    mask = np.zeros(len(train), dtype=bool)
    mask[held] = True
    return train.subset(np.flatnonzero(~mask)), train.subset(np.flatnonzero(mask))


def create_selector(
    protocol: str, method: Method, benchmark: Benchmark, device: torch.device, *, steps: int, seed: int,
    test_scorer: Callable[[], VideoScorer],
) -> Selector:
    """The selector of `protocol` for one run (``val`` draws its held-out videos with `seed`; ``oracle-test``
    scores with the run's `test_scorer`)."""
    parsed = parse_protocol(protocol)
    if parsed.name == "val":
        train, held_out = hold_out(benchmark.train, parsed.fraction, seed)
        return ValidationSelector(method, train, held_out, device, steps=steps, every=parsed.every)
    if parsed.name == "oracle-test":
        return OracleTestSelector(benchmark, test_scorer, steps=steps, every=parsed.every, after=parsed.after)
    return Selector(benchmark.train)
