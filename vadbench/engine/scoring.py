"""The one scoring path: test scoring, `val` selection and stored feature magnitudes all go through it.

A `VideoScorer` scores a list of videos (`Videos`: the test set, or held-out training videos reduced to
segments through `SegmentVideos`) with any model of a method, as many times as asked. Every pass
applies the method's declarations in one place:

- padding: a method whose ``padded_scoring`` (`Declarations`) is "safe" guarantees that zero padding does not change a
  video's scores (`Method.score`), so its videos are sorted by length and scored in padded batches
  under a row budget (sorting keeps padding small); any other method gets each video scored alone;
- trimming: each video's scores (and magnitudes) are cut to its true length, so nothing downstream
  ever sees a padded position (a `val` top-k included);
- `Declarations.postprocess`: applied to each video's trimmed scores, once per pass, whatever consumes them
  (the final evaluation, `oracle-test` and `val` checkpoint selection alike): every consumer sees the
  scores the method's declared scoring gives;
- magnitudes, where asked and declared (`Declarations.score_with_magnitudes`), come from the same forward
  passes as the scores, so storing them costs no second pass over the test set.

The batches are planned once. On an accelerator whose free memory holds them (`vadbench.engine.placement`)
they are padded once and stay on the device (`resident`), and each pass copies only its results back to the
host, in one transfer; otherwise (always on the CPU) each pass pads them anew, a batch at a time, reading the
videos from the preparation cache's memory map and releasing its pages after each batch, so that a pass
holds one padded batch, never the test set (5.7 GB for UCF-Crime's 10 x 2048-d features). One scorer serves
every pass of a run (`with_acceleration` shares its batches), so the test set is never held twice.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

import numpy as np
import torch
from torch import nn

from vadbench.api.mapped import release
from vadbench.api.method import Method
from vadbench.api.types import TrainSet
from vadbench.engine.acceleration import Acceleration, FallBack, compile_function, device_flags
from vadbench.engine.placement import fits

#: Upper bound on padded (snippet, crop) rows per scoring batch. Counted in rows, not feature values:
#: a method's hidden layers (512 wide for RTFM and MIL) cost memory per row whatever D is.
BATCH_ROWS = 2**15

T = TypeVar("T")


class Videos(Protocol):
    """Videos to score: each one's true length and its features (T, C, D). `TestSet` is one."""

    @property
    def lengths(self) -> np.ndarray: ...

    def video(self, i: int) -> np.ndarray: ...


@dataclass(frozen=True)
class SegmentVideos:
    """Training videos reduced to segments (N, C, S, D), as `Videos` of their true segments (T, C, D):
    how `val` selection scores its held-out videos."""

    train: TrainSet

    @property
    def lengths(self) -> np.ndarray:
        return self.train.segment_lengths

    def video(self, i: int) -> np.ndarray:
        return self.train.features[i, :, : self.lengths[i]].transpose(1, 0, 2)


class Scored(NamedTuple):
    """One pass: per-video scores (post-processed) and, where asked and the method has them, magnitudes,
    each (T,) float32 in list order."""

    scores: list[np.ndarray]
    magnitudes: list[np.ndarray] | None


def length_batches(lengths: np.ndarray, crops: int, budget: int = BATCH_ROWS) -> list[np.ndarray]:
    """Video indices grouped into batches of similar length whose padded rows fit the budget (a budget
    of 0 puts every video in a batch of its own)."""
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


def pad_videos(videos: Videos, chosen: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded features (B, C, T_max, D), crops before time as in training batches, and lengths (B,) of
    the `chosen` videos (each stored (T, C, D); the pages read from a memory map released after)."""
    lengths = videos.lengths[chosen]
    first = videos.video(int(chosen[0]))
    crops, dim = first.shape[1:]
    batch = np.zeros((len(chosen), crops, int(lengths.max()), dim), dtype=np.float32)
    for row, video in enumerate(chosen):
        batch[row, :, : lengths[row]] = videos.video(int(video)).transpose(1, 0, 2)
    release(first)
    return torch.from_numpy(batch).to(device), torch.from_numpy(lengths.astype(np.int64)).to(device)


def list_order(lengths: np.ndarray, batches: list[np.ndarray]) -> np.ndarray:
    """Positions, in the flattened padded batch scores, of every real snippet in list order (the gather
    that trims and reorders in one step)."""
    starts = np.empty(len(lengths), dtype=np.int64)
    base = 0
    for videos in batches:
        steps = int(lengths[videos].max())
        starts[videos] = base + steps * np.arange(len(videos))
        base += steps * len(videos)
    return np.concatenate([np.arange(start, start + n) for start, n in zip(starts, lengths, strict=True)])


class VideoScorer:
    """Scores `videos` with any model of `method`, as many times as asked (see the module docstring).

    `resident` pads the batches once, when the scorer is built, and keeps them on the device; otherwise
    they are padded anew in each pass. By default they are resident on an accelerator whose free memory
    holds them (`vadbench.engine.placement.fits`; `memory` overrides what the device reports), never on
    the CPU (keeping them would hold the test set in the host's memory). `acceleration` applies bf16
    autocast and torch.compile (with dynamic shapes: batches differ in length) to the scoring call.
    """

    def __init__(
        self, method: Method, videos: Videos, device: torch.device, *,
        acceleration: Acceleration | None = None, budget: int = BATCH_ROWS, resident: bool | None = None,
        memory: tuple[int, int] | None = None,
    ) -> None:
        self.videos, self.device, self.method = videos, device, method
        self.declared = method.declarations()
        self.lengths = np.asarray(videos.lengths)
        shape = videos.video(0).shape  # (T, C, D) of a view: no feature is read
        batched = self.declared.padded_scoring == "safe"
        self.batches = length_batches(self.lengths, int(shape[1]), budget if batched else 0)
        self.order = torch.from_numpy(list_order(self.lengths, self.batches)).to(device)
        self.offsets = np.cumsum(self.lengths)[:-1]
        padded = sum(len(chosen) * int(self.lengths[chosen].max()) for chosen in self.batches)
        self.padded_bytes = 4 * padded * int(shape[1]) * int(shape[2])
        self.resident = None
        if fits(self.padded_bytes, device, memory) if resident is None else resident:
            self.resident = [pad_videos(videos, chosen, device) for chosen in self.batches]
        self.acceleration = acceleration or Acceleration()
        self._accelerate()

    def with_acceleration(self, acceleration: Acceleration) -> VideoScorer:
        """A scorer of the same videos under `acceleration` that shares this one's batches (resident ones
        included), so that a second way of scoring them does not hold the test set a second time."""
        if acceleration == self.acceleration:
            return self
        other = copy.copy(self)
        other.acceleration = acceleration
        other._accelerate()
        return other

    def _accelerate(self) -> None:
        """The method's scoring calls under the scorer's acceleration."""
        self.score = self._accelerated(self.method.score)
        hook = self.declared.score_with_magnitudes
        self.score_with_magnitudes = None if hook is None else self._accelerated(hook)

    def _accelerated(self, function: Callable[..., T]) -> Callable[..., T]:
        """`function` under the scorer's autocast, compiled when asked (eager if compiling fails)."""
        eager = self.acceleration.autocast(function, self.device)
        if not self.acceleration.compile:
            return eager
        return FallBack(compile_function(eager, dynamic=True), eager, "torch.compile of the scorer")

    @property
    def engine(self) -> str:
        """What ran: precision, plus compile unless a scoring call fell back to eager."""
        calls = (self.score, self.score_with_magnitudes)  # None: the method has no magnitudes
        compiled = self.acceleration.compile and not any(isinstance(c, FallBack) and c.failed for c in calls)
        return self.acceleration.precision + ("+compile" if compiled else "")

    def padded_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(features (B, C, T_max, D), lengths (B,)) per batch, on the device."""
        if self.resident is not None:
            yield from self.resident
        else:
            for chosen in self.batches:
                yield pad_videos(self.videos, chosen, self.device)

    @torch.inference_mode()
    def flat(self, model: nn.Module, magnitudes: bool = False) -> torch.Tensor:
        """Snippet scores of all videos concatenated in list order, (1, sum T) float32 on the device; with
        `magnitudes`, (2, sum T): the magnitudes below, or (1, sum T) when the method has none."""
        model.eval()
        rows: list[list[torch.Tensor]] = []
        with device_flags(self.device):
            for features, lengths in self.padded_batches():
                if magnitudes and self.score_with_magnitudes is not None:
                    outputs = list(self.score_with_magnitudes(model, features, lengths))
                else:
                    outputs = [self.score(model, features, lengths)]
                rows.append([output.float().reshape(-1) for output in outputs])
                del features  # freed before the next batch is padded: one padded batch at a time
        return torch.stack([torch.cat(parts) for parts in zip(*rows, strict=True)])[:, self.order]

    def __call__(self, model: nn.Module, *, magnitudes: bool = False) -> Scored:
        """One pass: every video's scores, trimmed and post-processed as the method declares, in list order;
        with `magnitudes`, also its feature magnitudes from the same forward passes (None if it has none)."""
        flat = self.flat(model, magnitudes).cpu().numpy()  # the pass's one transfer to the host
        scores = np.split(flat[0], self.offsets)
        postprocess = self.declared.postprocess
        if postprocess is not None:
            scores = [np.asarray(postprocess(video), dtype=np.float32) for video in scores]
        return Scored(scores, np.split(flat[1], self.offsets) if len(flat) > 1 else None)


def score_videos(
    method: Method, model: nn.Module, videos: Videos, device: torch.device, *,
    acceleration: Acceleration | None = None,
) -> list[np.ndarray]:
    """Snippet scores of every video, in list order (one pass; keep a VideoScorer for many)."""
    return VideoScorer(method, videos, device, acceleration=acceleration)(model).scores
