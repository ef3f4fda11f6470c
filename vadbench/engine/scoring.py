"""Scoring a whole test set: videos sorted by length and scored in zero-padded batches.

Sorting keeps padding small; a method whose ``padded_scoring`` is "safe" guarantees that padding does
not change a video's scores (`Method.score`), so the result equals scoring each video alone; any other
method gets each video scored alone. The method's declared `Method.postprocess` is applied to each
video's scores after every pass (the final evaluation and checkpoint selection alike). A `TestScorer`
prepares the batches once and scores them as often as asked (the final evaluation, or checkpoint selection every few
steps): on an accelerator the padded batches stay on the device, and each pass copies only the scores
back to the host, in one transfer.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from vadbench.api.method import Method
from vadbench.api.types import TestSet
from vadbench.engine.acceleration import Acceleration, FallBack, compile_function, device_flags

#: Upper bound on padded (snippet, crop) rows per scoring batch. Counted in rows, not feature values:
#: a method's hidden layers (512 wide for RTFM and MIL) cost memory per row whatever D is.
BATCH_ROWS = 2**15


def length_batches(lengths: np.ndarray, crops: int, budget: int = BATCH_ROWS) -> list[np.ndarray]:
    """Video indices grouped into batches of similar length whose padded rows fit the budget."""
    order = np.argsort(lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    for end in range(1, len(order) + 1):
        # The batch is padded to its longest video, the last one in sorted order.
        if end < len(order) and (end + 1 - start) * lengths[order[end]] * crops <= budget:
            continue
        batches.append(order[start:end])
        start = end
    return batches


def pad_videos(test: TestSet, videos: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded features (B, T_max, C, D) and lengths (B,) of the given test videos."""
    lengths = test.lengths[videos]
    batch = np.zeros((len(videos), int(lengths.max()), *test.features.shape[1:]), dtype=np.float32)
    for row, video in enumerate(videos):
        batch[row, : lengths[row]] = test.video(int(video))
    return torch.from_numpy(batch).to(device), torch.from_numpy(lengths.astype(np.int64)).to(device)


def list_order(test: TestSet, batches: list[np.ndarray]) -> np.ndarray:
    """Positions, in the flattened padded batch scores, of every real snippet in test-list order."""
    lengths = test.lengths
    starts = np.empty(len(test), dtype=np.int64)
    base = 0
    for videos in batches:
        steps = int(lengths[videos].max())
        starts[videos] = base + steps * np.arange(len(videos))
        base += steps * len(videos)
    return np.concatenate([np.arange(start, start + n) for start, n in zip(starts, lengths, strict=True)])


class TestScorer:
    """Scores one test set with any model of `method`, as many times as asked.

    `resident` (default: on any device but the CPU) pads the batches once, when the scorer is built,
    and keeps them on the device; otherwise they are padded anew in each pass (on the CPU keeping them
    would double the host memory for nothing). `acceleration` applies bf16 autocast and torch.compile
    (with dynamic shapes: batches differ in length) to the scoring call.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self, method: Method, test: TestSet, device: torch.device, *,
        acceleration: Acceleration | None = None, budget: int = BATCH_ROWS, resident: bool | None = None,
    ) -> None:
        self.test, self.device, self.method = test, device, method
        # A budget of 0 rows puts every video in a batch of its own.
        self.batches = length_batches(test.lengths, int(test.features.shape[1]),
                                      budget if method.padded_scoring == "safe" else 0)
        self.order = torch.from_numpy(list_order(test, self.batches)).to(device)
        self.resident = None
        if device.type != "cpu" if resident is None else resident:
            self.resident = [pad_videos(test, videos, device) for videos in self.batches]
        self.acceleration = acceleration or Acceleration()
        score = self.acceleration.autocast(method.score, device)
        self.score = score
        if self.acceleration.compile:
            self.score = FallBack(compile_function(score, dynamic=True), score, "torch.compile of the scorer")

    @property
    def engine(self) -> str:
        """What ran: precision, plus compile unless it fell back to eager."""
        compiled = isinstance(self.score, FallBack) and not self.score.failed
        return self.acceleration.precision + ("+compile" if compiled else "")

    def padded_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(features (B, T_max, C, D), lengths (B,)) per batch, on the device."""
        if self.resident is not None:
            yield from self.resident
        else:
            for videos in self.batches:
                yield pad_videos(self.test, videos, self.device)

    @torch.inference_mode()
    def scores(self, model: nn.Module) -> torch.Tensor:
        """Snippet scores of all test videos concatenated in list order, (sum T,) float32 on the device."""
        model.eval()
        with device_flags(self.device):
            flat = [self.score(model, features, lengths).float().reshape(-1)
                    for features, lengths in self.padded_batches()]
        return torch.cat(flat)[self.order]

    def __call__(self, model: nn.Module) -> list[np.ndarray]:
        """Snippet scores of every test video, in test-list order, post-processed as the method declares."""
        videos = np.split(self.scores(model).cpu().numpy(), self.test.offsets[1:-1])
        if type(self.method).postprocess is Method.postprocess:
            return videos
        return [np.asarray(self.method.postprocess(scores), dtype=np.float32) for scores in videos]


def score_videos(
    method: Method, model: nn.Module, test: TestSet, device: torch.device, *, acceleration: Acceleration | None = None
) -> list[np.ndarray]:
    """Snippet scores of every test video, in test-list order (one pass; keep a TestScorer for many)."""
    return TestScorer(method, test, device, acceleration=acceleration)(model)
