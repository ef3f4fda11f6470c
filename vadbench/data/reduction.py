"""Reduction of a full-length training video of T snippets to the segments a method trains on.

A method declares its reduction (`Reduction`, part of `vadbench.api.method.TrainingInput`); the dataset
adapter applies it to every training video while reading it (so a preparation cache entry holds one
reduction), and the engine never sees the full-length training videos. The kinds:

- ``mean`` (`pool_segments`): the public RTFM code's mean pooling to S segments (RTFM, MGFN, UR-DMU,
  BN-WVAD; Tian et al.'s retrained MIL baseline);
- ``c3d`` (`pool_segments_sultani`): Sultani et al.'s ``Save_C3DFeatures_32Segments.m``, the input of
  their own C3D results (boundaries rounded from 1-based positions, the last snippet left out, every
  segment L2-normalised);
- ``subsample`` (`subsample_segments`): S uniformly spaced snippets when T > S, else the T snippets
  followed by zero padding (PEL4VAD); the true length min(T, S) goes with the sample;
- ``full``: every snippet, zero-padded to the longest training video (memory grows with it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from vadbench.api.types import TRAIN_SEGMENTS

#: The kinds of `Reduction`.
ReductionKind = Literal["mean", "c3d", "subsample", "full"]


def segment_bounds(length: int, segments: int = TRAIN_SEGMENTS) -> np.ndarray:
    """Segment boundaries ``linspace(0, T, S + 1)`` cast to int, as the public code computes them."""
    return np.linspace(0, length, segments + 1).astype(np.int64)


def pool_segments(features: np.ndarray, segments: int = TRAIN_SEGMENTS) -> np.ndarray:
    """Pool (T, C, D) snippets to (C, S, D): segment i is the mean of rows [b_i, b_{i+1}).

    An empty range (T < S) takes row b_i, so short videos repeat snippets instead of failing.
    """
    length = _length(features)
    bounds = segment_bounds(length, segments)
    starts = np.minimum(bounds[:-1], length - 1)
    ends = np.maximum(bounds[1:], starts + 1)
    return np.ascontiguousarray(_range_means(features, starts, ends).transpose(1, 0, 2), dtype=np.float32)


def sultani_ranges(length: int, segments: int = TRAIN_SEGMENTS) -> tuple[np.ndarray, np.ndarray]:
    """0-based [start, end) snippet ranges of ``Save_C3DFeatures_32Segments.m``'s segments.

    The script's 1-based boundaries are ``b = round(linspace(1, T, S + 1))`` (MATLAB rounds halves away
    from zero; k (T - 1) / S is exact in floating point, so halves do occur) and segment i covers
    snippets b_i .. b_{i+1} - 1, or b_i alone when that range is empty. Snippet T is therefore used only
    through an empty range (T <= 17 for 32 segments), never as part of a mean.
    """
    positions = np.linspace(1, length, segments + 1)
    bounds = np.floor(positions + 0.5).astype(np.int64)  # halves away from zero (all positions are >= 1)
    starts = bounds[:-1] - 1
    ends = np.maximum(bounds[1:] - 1, starts + 1)
    return starts, ends


def pool_segments_sultani(features: np.ndarray, segments: int = TRAIN_SEGMENTS) -> np.ndarray:
    """Pool (T, C, D) snippets to (C, S, D) as Sultani et al.'s C3D script does, each crop on its own.

    Segment i is the mean of the snippets of `sultani_ranges`, scaled to unit L2 norm. (The script stops
    with an error on an all-zero segment; here such a segment stays zero.)
    """
    starts, ends = sultani_ranges(_length(features), segments)
    means = _range_means(features, starts, ends)
    norms = np.linalg.norm(means, axis=-1, keepdims=True)
    normalised = means / np.maximum(norms, np.finfo(np.float64).tiny)
    return np.ascontiguousarray(normalised.transpose(1, 0, 2), dtype=np.float32)


def subsample_segments(features: np.ndarray, segments: int) -> np.ndarray:
    """(T, C, D) -> (C, S, D): snippets at ``linspace(0, T - 1, S)`` cast to int when T > S, else all T
    snippets followed by zero rows (PEL4VAD's training input)."""
    length = _length(features)
    if length > segments:
        chosen = features[np.linspace(0, length - 1, segments).astype(np.int64)]
    else:
        chosen = np.zeros((segments, *features.shape[1:]), dtype=np.float32)
        chosen[:length] = features
    return np.ascontiguousarray(np.asarray(chosen, np.float32).transpose(1, 0, 2))


@dataclass(frozen=True)
class Reduction:
    """How a training video of T snippets becomes `segments` segments (see the module docstring).

    Examples: ``Reduction()`` (RTFM: mean over 32), ``Reduction("mean", 200)`` (UR-DMU, BN-WVAD),
    ``Reduction("subsample", 200)`` (PEL4VAD), ``Reduction("c3d")`` (Sultani et al.'s C3D script),
    ``Reduction("full")``.
    """

    kind: ReductionKind = "mean"
    segments: int = TRAIN_SEGMENTS

    def __post_init__(self) -> None:
        if self.kind not in _REDUCERS and self.kind != "full":
            raise ValueError(f"Reduction.kind must be one of mean, c3d, subsample, full, got {self.kind!r}")
        if self.segments < 1:
            raise ValueError(f"Reduction.segments must be at least 1, got {self.segments}")

    @property
    def pads(self) -> bool:
        """Whether reduced videos may end in zero padding (their true lengths then go with them)."""
        return self.kind in ("subsample", "full")

    def size(self, longest: int) -> int:
        """Segments per reduced video, given the longest video of the set (used by ``full`` only)."""
        return longest if self.kind == "full" else self.segments

    def length(self, snippets: int) -> int:
        """The true (unpadded) segments of a video of `snippets` snippets."""
        if self.kind == "full":
            return snippets
        return min(snippets, self.segments) if self.kind == "subsample" else self.segments

    def __call__(self, features: np.ndarray, size: int) -> np.ndarray:
        """(T, C, D) snippets -> (C, size, D) segments (`size` from `Reduction.size`)."""
        if self.kind == "full":
            return subsample_segments(features, size)  # T <= size: the snippets, then zero padding
        return _REDUCERS[self.kind](features, self.segments)

    def record(self) -> dict[str, object]:
        """The reduction as flat config entries."""
        return {"input.reduction": self.kind, "input.segments": None if self.kind == "full" else self.segments}

    @property
    def key(self) -> str:
        """A short text that names the reduction in cache keys."""
        return self.kind if self.kind == "full" else f"{self.kind}-{self.segments}"


_REDUCERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "mean": pool_segments, "c3d": pool_segments_sultani, "subsample": subsample_segments,
}


def _length(features: np.ndarray) -> int:
    if features.shape[0] < 1:
        raise ValueError("cannot pool a video with no snippets")
    return int(features.shape[0])


def _range_means(features: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: int = 1024) -> np.ndarray:
    """(S, C, D) float64 means of rows [starts_i, ends_i) of (T, C, D) `features` (non-empty ranges).

    From the float64 prefix sums ``P_p = x_0 + ... + x_{p-1}`` (added in snippet order) at the segment
    bounds: ``(P_end - P_start) / (end - start)``. The sums run through the video `rows` snippets at a time,
    each block's sums continuing from the last one's (the same additions in the same order as one
    ``cumsum`` over the whole video), and only those at the bounds are kept: the longest UCF-Crime training
    video (61,031 snippets, 5 GB of 10 x 2048-d features) would otherwise need 10 GB of float64 sums, twice.
    """
    bounds = np.union1d(starts, ends)  # the prefix positions needed, sorted
    sums = np.empty((len(bounds), *features.shape[1:]), np.float64)
    running = np.zeros((1, *features.shape[1:]), np.float64)  # P at the start of the block
    found = 0
    for first in range(0, len(features), rows):
        block = np.cumsum(np.concatenate([running, features[first : first + rows]]), axis=0)  # P_first ...
        last = first + len(block) - 1
        while found < len(bounds) and bounds[found] <= last:
            sums[found] = block[bounds[found] - first]
            found += 1
        running = block[-1:]
    differences = sums[np.searchsorted(bounds, ends)] - sums[np.searchsorted(bounds, starts)]
    return differences / (ends - starts)[:, None, None]

#: RTFM's mean pooling to 32 segments: the training input of a method that declares none.
DEFAULT_REDUCTION = Reduction()
