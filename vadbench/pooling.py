"""Reduction of a full-length video to a fixed number of training segments.

Two published reductions, chosen by the datasets' ``pooling`` option (`POOLINGS`):

- ``rtfm`` (`pool_segments`): the public RTFM code's mean-pooling, used by Tian et al. for RTFM and for
  the MIL baseline they retrained on I3D;
- ``sultani`` (`pool_segments_sultani`): Sultani et al.'s ``Save_C3DFeatures_32Segments.m``, the input of
  their own C3D results (boundaries rounded from 1-based positions, the last snippet left out, every
  segment L2-normalised).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from vadbench.types import TRAIN_SEGMENTS

#: The names of the reductions, as the datasets' ``pooling`` option takes them.
PoolingName = Literal["rtfm", "sultani"]


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


#: Each reduction by its ``pooling`` option name.
POOLINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"rtfm": pool_segments, "sultani": pool_segments_sultani}


def _length(features: np.ndarray) -> int:
    if features.shape[0] < 1:
        raise ValueError("cannot pool a video with no snippets")
    return int(features.shape[0])


def _range_means(features: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(S, C, D) float64 means of rows [starts_i, ends_i) of (T, C, D) `features` (non-empty ranges)."""
    # Prefix sums give every segment mean in one vectorised step.
    cumulative = np.concatenate(
        [np.zeros((1, *features.shape[1:]), np.float64), np.cumsum(features, axis=0, dtype=np.float64)]
    )
    return (cumulative[ends] - cumulative[starts]) / (ends - starts)[:, None, None]
