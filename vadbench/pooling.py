"""Mean-pooling of a full-length video to a fixed number of training segments (RTFM, Sultani et al.)."""

from __future__ import annotations

import numpy as np

from vadbench.types import TRAIN_SEGMENTS


def segment_bounds(length: int, segments: int = TRAIN_SEGMENTS) -> np.ndarray:
    """Segment boundaries ``linspace(0, T, S + 1)`` cast to int, as the public code computes them."""
    return np.linspace(0, length, segments + 1).astype(np.int64)


def pool_segments(features: np.ndarray, segments: int = TRAIN_SEGMENTS) -> np.ndarray:
    """Pool (T, C, D) snippets to (C, S, D): segment i is the mean of rows [b_i, b_{i+1}).

    An empty range (T < S) takes row b_i, so short videos repeat snippets instead of failing.
    """
    length = features.shape[0]
    if length < 1:
        raise ValueError("cannot pool a video with no snippets")
    bounds = segment_bounds(length, segments)
    starts = np.minimum(bounds[:-1], length - 1)
    ends = np.maximum(bounds[1:], starts + 1)
    # Prefix sums give every segment mean in one vectorised step.
    cumulative = np.concatenate(
        [np.zeros((1, *features.shape[1:]), np.float64), np.cumsum(features, axis=0, dtype=np.float64)]
    )
    means = (cumulative[ends] - cumulative[starts]) / (ends - starts)[:, None, None]
    return np.ascontiguousarray(means.transpose(1, 0, 2), dtype=np.float32)
