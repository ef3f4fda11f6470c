"""The working precision and the crop layout of feature tensors.

Training batches of a crops-joint method and scored videos are both (B, C, T, D); a network sees one crop
at a time as a sequence (B * C, T, D), video-major (row b * C + c is crop c of video b).
"""

from __future__ import annotations

import torch


def at_least_float32(values: torch.Tensor) -> torch.Tensor:
    """`values` in float32, or in their own precision where it is wider: half precision (bf16 autocast) is
    promoted, a float64 run stays float64."""
    return values.to(torch.promote_types(values.dtype, torch.float32))


def crop_sequences(features: torch.Tensor) -> torch.Tensor:
    """(B, C, T, D) videos -> (B * C, T, D) sequences, one per crop, video-major (a view when contiguous)."""
    return features.reshape(-1, *features.shape[2:])
