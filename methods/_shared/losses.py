"""Loss terms that several methods compute alike: binary cross-entropy in the working precision, the MIL
ranking hinge, and the smoothness and sparsity regularisers of snippet scores."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from vadbench.methods._shared.tensors import at_least_float32


def binary_cross_entropy(
    probabilities: torch.Tensor, targets: torch.Tensor, *, saturated: Literal["clamp_log", "floor"]
) -> torch.Tensor:
    """Mean binary cross-entropy of `probabilities` in [0, 1] against `targets`, computed in the working
    precision (`at_least_float32`: float32, float64 in a float64 run) with autocast off, under which torch
    refuses its own BCE.

    `saturated` says what a probability of exactly 0 or 1 (a saturated sigmoid) gives:

    - ``"clamp_log"``: torch's ``BCELoss``, each log clamped at -100 (its backward keeps the gradient
      finite);
    - ``"floor"``: the probabilities are floored at the smallest normal float32 before the log, in every
      precision, so a term is at most about 87 and its gradient stays finite (a log clamped after the
      fact would give 0 / 0).

    The two differ only for saturated probabilities.
    """
    with torch.autocast(probabilities.device.type, enabled=False):
        p = at_least_float32(probabilities)
        y = targets.to(p.dtype)
        if saturated == "clamp_log":
            return F.binary_cross_entropy(p, y)
        if saturated == "floor":
            tiny = torch.finfo(torch.float32).tiny
            return -(y * p.clamp(min=tiny).log() + (1 - y) * (1 - p).clamp(min=tiny).log()).mean()
    raise ValueError(f"saturated must be 'clamp_log' or 'floor', got {saturated!r}")


def ranking_hinge(abnormal: torch.Tensor, normal: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """max(0, margin - max_t abnormal + max_t normal) over the last (snippet) axis, leading axes broadcast:
    Sultani et al.'s MIL ranking loss of bags of scores.

    (B, T) and (B, T) scores give the B pairs (abnormal i, normal i) -> (B,); (A, 1, T) and (1, N, T) give
    every pair -> (A, N).
    """
    return torch.relu(margin - abnormal.amax(dim=-1) + normal.amax(dim=-1))


def squared_differences(scores: torch.Tensor) -> torch.Tensor:
    """(s_t+1 - s_t)^2 of neighbouring scores along the last axis: (..., T) -> (..., T - 1).

    Its sums are the smoothness terms: ``.sum(dim=1)`` of (B, T) scores per video, ``.sum()`` over a batch
    of videos, and of ``scores.reshape(-1)`` across video boundaries (as RTFM's public code flattens them).
    """
    return (scores[..., 1:] - scores[..., :-1]).square()


def score_sparsity(scores: torch.Tensor, kind: Literal["l2", "sum"] = "l2") -> torch.Tensor:
    """The sparsity term of `scores`: the L2 norm of the flattened scores (``"l2"``, RTFM's public code) or
    their sum (``"sum"``, RTFM's paper)."""
    if kind == "l2":
        return torch.linalg.vector_norm(scores.reshape(-1))
    if kind == "sum":
        return scores.sum()
    raise ValueError(f"sparsity must be 'l2' or 'sum', got {kind!r}")
