"""Top-k selection of the snippets of each video: which snippets (`top_k_indices`, optionally after a
`dropout_mask`) and what they hold (`gather_top_k`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dropout_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout applied to ones shaped as `like`: each entry 0 with probability p, else 1 / (1 - p), drawn
    from torch's generator (RTFM's and MGFN's public codes mask the magnitudes before the top-k so)."""
    return F.dropout(torch.ones_like(like), p=p, training=True)


def top_k_indices(values: torch.Tensor, k: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Indices (B, min(k, T)) of the largest `values` (B, T) of each row, after multiplying by `keep` if
    given (a `dropout_mask`).

    k is clamped to T so that short sequences select all their snippets instead of failing.
    """
    if keep is not None:
        values = values * keep
    return values.topk(min(k, values.shape[1]), dim=1).indices


def gather_top_k(
    features: torch.Tensor, scores: torch.Tensor, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The snippets `index` (B, k) of each video, the same ones in every crop: features (B, C, T, D) ->
    (B, C, k, D), scores (B, T) -> (B, k)."""
    crops, dim = features.shape[1], features.shape[3]
    feature_index = index[:, None, :, None].expand(-1, crops, -1, dim)
    return features.gather(2, feature_index), scores.gather(1, index)
