"""Sultani et al.'s MIL ranking method: training objective, scoring and optimiser.

Sultani, Chen, Shah: "Real-world Anomaly Detection in Surveillance Videos", CVPR 2018.

Each video is a bag of 32 segments. For each (abnormal i, normal i) pair of a batch the loss is

    max(0, 1 - max_t s_abn,t + max_t s_nor,t) + smooth * sum_t (s_t - s_t+1)^2 + sparse * sum_t s_t

with smoothness (31 terms for 32 segments) and sparsity on the abnormal bag only, averaged over the
pairs, plus the L2 weight penalty ``weight_penalty * sum ||W||^2`` over the three weight matrices.

DIFFERENCES between the paper, the public code and vadbench (defaults follow the code):

- Learning rate: Adagrad 0.01 (public code) by default; the paper says 0.001 (``lr=0.001``).
- L2 regularisation 1e-3 per layer: added to the loss as Keras' weight regulariser does (0.001 times
  the sum of squared weights, biases excluded), not as the optimiser's ``weight_decay``, which with
  Adagrad would mean a different (per-coordinate rescaled) update. The ``l2`` loss entry reports it.
- Crops (vadbench): Sultani et al. use one C3D feature per segment. For multi-crop features (such as the
  10-crop I3D features RTFM retrains this baseline on) every crop is scored and the scores are averaged
  over crops before the max and the ranking hinge, as RTFM averages its crop scores.
- L2 normalisation: with ``l2_normalize`` each pooled training segment and each full-length test snippet
  is scaled to unit norm by the network itself; vadbench scores full-length test snippets for every method.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from vadbench.method import Method, valid_mask
from vadbench.methods._checks import check_input_shape, check_options
from vadbench.methods.sultani_mil.model import MILNet


@dataclass(frozen=True)
class SultaniMILConfig:
    """Hyper-parameters of Sultani et al.'s MIL ranking (defaults: the public code's).

    batch_size: videos per class in a batch; steps: training iterations; lr: Adagrad learning rate;
    dropout: after the first two FC layers; hidden1, hidden2: FC widths; weight_penalty: L2 penalty per
    layer added to the loss; smooth, sparse: weights of the abnormal bag's smoothness and sparsity terms;
    margin: of the ranking hinge; l2_normalize: scale each segment feature to unit L2 norm.
    """

    batch_size: int = 30
    steps: int = 20000
    lr: float = 0.01
    dropout: float = 0.6
    hidden1: int = 512
    hidden2: int = 32
    weight_penalty: float = 1e-3
    smooth: float = 8e-5
    sparse: float = 8e-5
    margin: float = 1.0
    l2_normalize: bool = True

    def __post_init__(self) -> None:
        check_options(
            self,
            positive=("batch_size", "steps", "lr", "hidden1", "hidden2"),
            non_negative=("weight_penalty", "smooth", "sparse", "margin"),
            probability=("dropout",),
        )


def ranking_hinge(abnormal: torch.Tensor, normal: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Per pair max(0, margin - max_t abnormal + max_t normal): (B, T) scores -> (B,)."""
    return torch.relu(margin - abnormal.amax(dim=1) + normal.amax(dim=1))


def smoothness_per_video(scores: torch.Tensor) -> torch.Tensor:
    """sum_t (s_t - s_t+1)^2 within each video: (B, T) -> (B,)."""
    return (scores[:, 1:] - scores[:, :-1]).square().sum(dim=1)


def sparsity_per_video(scores: torch.Tensor) -> torch.Tensor:
    """sum_t s_t within each video: (B, T) -> (B,)."""
    return scores.sum(dim=1)


def linear_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weight matrices of every linear layer (the penalised ones; biases are not penalised)."""
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


def l2_penalty(weights: Iterable[torch.Tensor]) -> torch.Tensor:
    """Sum of squared entries of all `weights` (a non-empty iterable of tensors)."""
    return torch.stack([w.square().sum() for w in weights]).sum()


class SultaniMIL(Method):
    """Sultani MIL ranking: a segment-scoring MLP trained with the deep MIL ranking loss (CVPR 2018)."""

    Config = SultaniMILConfig
    config: SultaniMILConfig

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        check_input_shape(crops, feature_dim)
        cfg = self.config
        return MILNet(
            feature_dim,
            hidden=(cfg.hidden1, cfg.hidden2),
            dropout=cfg.dropout,
            l2_normalize=cfg.l2_normalize,
        )

    def loss(self, model: nn.Module, normal: torch.Tensor, abnormal: torch.Tensor) -> dict[str, torch.Tensor]:
        """MIL ranking loss on (B, C, S, D) bags; entries besides ``loss`` are weighted and detached."""
        cfg = self.config
        count = abnormal.shape[0]
        # One forward for both classes; crop scores are averaged into one score per segment.
        scores = model(torch.cat([normal, abnormal])).mean(dim=1)  # (2B, S)
        normal_scores, abnormal_scores = scores[:count], scores[count:]
        terms = {
            "rank": ranking_hinge(abnormal_scores, normal_scores, cfg.margin).mean(),
            "smooth": cfg.smooth * smoothness_per_video(abnormal_scores).mean(),
            "sparse": cfg.sparse * sparsity_per_video(abnormal_scores).mean(),
            "l2": cfg.weight_penalty * l2_penalty(linear_weights(model)),
        }
        total = terms["rank"] + terms["smooth"] + terms["sparse"] + terms["l2"]
        return {"loss": total, **{name: term.detach() for name, term in terms.items()}}

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per-snippet scores (B, T) of zero-padded (B, T, C, D) videos, averaged over crops."""
        mask = valid_mask(lengths, features.shape[1])
        return model(features).mean(dim=-1) * mask

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adagrad(parameters, lr=self.config.lr)
