"""Applying a `vadbench.api.reduction.Reduction`: a full-length training video of T snippets pooled to the
segments a method trains on (`reduce_video`), while the dataset adapter reads it. One function per kind:

- ``mean``: `pool_segments`, the public RTFM code's mean pooling;
- ``c3d``: `pool_segments_sultani`, Sultani et al.'s ``Save_C3DFeatures_32Segments.m``;
- ``subsample`` and ``full``: `subsample_segments`, uniformly spaced snippets or every snippet, then zero
  padding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vadbench.api.reduction import Reduction
from vadbench.api.types import TRAIN_SEGMENTS


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


def reduce_video(features: np.ndarray, reduction: Reduction, size: int) -> np.ndarray:
    """(T, C, D) snippets -> (C, size, D) segments as `reduction` says (`size` from `Reduction.size`)."""
    if reduction.kind == "full":
        return subsample_segments(features, size)  # T <= size: the snippets, then zero padding
    return _REDUCERS[reduction.kind](features, reduction.segments)


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
