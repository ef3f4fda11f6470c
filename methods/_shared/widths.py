"""Widths that follow narrow features and segments that follow short videos: the rules each built-in method's
``Config.for_data`` applies.

RTFM's network is built from the feature dimension D (D/4 channels per PDC branch, D/8 inside the
non-local block: the public widths at D = 2048), so narrow features give a narrow network. The methods
published after it fix their widths for 1024-d features (MGFN's for 2048-d) and would train a network of
the published size on the 64-d synthetic set, tens of times RTFM's cost a step. They follow D the same way
below the narrowest real features: each width is the published one times D / 1024 (at least 1), and an
attention keeps its width heads x channels-per-head, with the heads scaled as well (at least one). From
1024-d up (every real feature set here: I3D 1024, RTFM's 2048) the published widths stay.

UR-DMU and BN-WVAD mean-pool every training video to 200 segments, sized for real videos of hundreds to
thousands of snippets; their attention costs grow with the square of that count. On data whose longest
training video is shorter (the synthetic default: 96), the 200 segments only repeat snippets, so there the
default is that length instead (`fewer_segments`).
"""

from __future__ import annotations

from typing import Any

from vadbench.api.dataset import DataShape

#: The feature dimension from which the published widths apply unchanged (the narrowest real features).
PUBLISHED_FROM = 1024


def width_scale(feature_dim: int | None) -> float:
    """D / 1024 below 1024-d features, else 1 (the published widths; also when D is not known)."""
    return 1.0 if feature_dim is None else min(1.0, feature_dim / PUBLISHED_FROM)


def scaled(width: int, scale: float) -> int:
    """`width` times `scale`, rounded, at least 1."""
    return max(1, round(width * scale))


def scaled_attention(heads: int, head_width: int, scale: float) -> tuple[int, int]:
    """Heads and channels per head of an attention whose width heads x head_width follows `scale`: the heads
    scaled (at least one), the width shared among them."""
    scaled_heads = scaled(heads, scale)
    return scaled_heads, max(1, scaled(heads * head_width, scale) // scaled_heads)


def fewer_segments(published: int, longest_training_video: int | None) -> dict[str, int]:
    """``{"segments": T}`` when the longest training video has T snippets, fewer than the `published` segment
    count; else nothing (the published count; also when T is not known)."""
    if longest_training_video is None or longest_training_video >= published:
        return {}
    return {"segments": longest_training_video}


class WidthsAndSegmentsFollowData:
    """A method ``Config`` whose defaults follow the data in both ways (UR-DMU, BN-WVAD): its own
    `widths_for` below 1024-d features, and as many segments as the longest training video has snippets
    where that is fewer than the published count (the synthetic default: 96; `fewer_segments`)."""

    segments: int

    @classmethod
    def widths_for(cls, feature_dim: int | None) -> dict[str, Any]:
        """The width defaults for `feature_dim`-d features where they are not the published ones."""
        raise NotImplementedError

    @classmethod
    def for_data(cls, shape: DataShape) -> dict[str, Any]:
        """The defaults for data of `shape` where they are not the published ones."""
        return {**cls.widths_for(shape.feature_dim), **fewer_segments(cls.segments, shape.longest_training_video)}
