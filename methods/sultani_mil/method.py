"""Sultani et al.'s MIL ranking method: training objective, scoring and optimiser.

Sultani, Chen, Shah: "Real-world Anomaly Detection in Surveillance Videos", CVPR 2018. Public code:
WaqasSultani/AnomalyDetectionCVPR2018 (TrainingAnomalyDetector_public.py, Save_C3DFeatures_32Segments.m).

Each video is a bag of 32 segment scores. On a batch of B abnormal bags a_j and B normal bags n_i the
public code (its ``custom_objective``, B = 30, plus the Keras weight regularisers) minimises

    sum_j mean_i max(0, 1 - max_t a_j,t + max_t n_i,t)
    + smooth * sum_j sum_t (a_j,t - a_j,t+1)^2 + sparse * sum_j sum_t a_j,t + weight_penalty * sum ||W||^2

Every abnormal bag is ranked against every normal bag; smoothness (31 neighbour pairs for 32 segments)
and sparsity apply to the abnormal bags only; the sums over the abnormal bags are not divided by B
(Keras returns the objective as it is); the weight penalty is Keras' ``l2(0.001)`` regulariser of each
Dense layer's weight matrix (biases excluded). This is ``reduction="sum"``, the default.

DIFFERENCES between the paper, the public code and vadbench (defaults follow the code):

- Reduction: the code sums the data terms over the abnormal bags (``reduction="sum"``); the paper writes
  the objective of one pair of bags. ``reduction="mean"`` averages them (1/B of the code's data terms)
  and keeps the same weight penalty, which then weighs B = 30 times more against the data (at
  initialisation, 4096-d inputs: about half of the loss instead of about 3 %).
- Learning rate: Adagrad 0.01 (public code) by default; the paper says 0.001 (``lr=0.001``). Adagrad's
  epsilon is Keras' 1e-8 (torch's default is 1e-10).
- L2 regularisation 1e-3 per layer: added to the loss as Keras' weight regulariser does (0.001 times
  the sum of squared weights, biases excluded), not as the optimiser's ``weight_decay``, which with
  Adagrad would mean a different (per-coordinate rescaled) update. The ``l2`` loss entry reports it.
- Input: Sultani et al.'s UCF-Crime AUC 75.41 was trained on C3D fc6 features reduced to 32 segments by
  Save_C3DFeatures_32Segments.m (rounded 1-based boundaries, last snippet unused, each segment
  L2-normalised): the option ``input="c3d"`` (`vadbench.data.pooling.pool_segments_sultani`).
  Tian et al. (RTFM, ICCV 2021) retrained this baseline on 10-crop I3D features through RTFM's pipeline,
  with RTFM's pooling (``input="rtfm"``, the default), for SH AUC 85.33, UCF AUC 77.92, XD AP 75.68.
- Test scoring: the public code scores the 32 segments of each test video (Test_Anomaly_Detector_public.py);
  vadbench scores every full-length snippet, for every method.
- Crops (vadbench): Sultani et al. use one C3D feature per segment. For multi-crop features (such as the
  10-crop I3D features RTFM retrains this baseline on) every crop is scored and the scores are averaged
  over crops before the max and the ranking hinge, as RTFM averages its crop scores.
- Batches: as the code, every step draws its B normal and B abnormal videos afresh (without replacement
  within the batch), with a seeded torch generator of vadbench's where the code uses numpy's global one.
- L2 normalisation: with ``l2_normalize`` each pooled training segment and each full-length test snippet
  is scaled to unit norm by the network itself (a no-op on segments the C3D script already normalised).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from vadbench.api.method import Declarations, Method, Sampling, TrainBatch, TrainingInput, valid_mask
from vadbench.api.reduction import Reduction
from vadbench.methods._shared.checks import check_input_shape, check_options
from vadbench.methods._shared.losses import ranking_hinge, squared_differences
from vadbench.methods.sultani_mil.model import MILNet


@dataclass(frozen=True)
class SultaniMILConfig:
    """Hyper-parameters of Sultani et al.'s MIL ranking (defaults: the public code's).

    batch_size: videos per class in a batch; steps: training iterations; lr: Adagrad learning rate;
    dropout: after the first two FC layers; hidden1, hidden2: FC widths; weight_penalty: L2 penalty per
    layer added to the loss; smooth, sparse: weights of the abnormal bag's smoothness and sparsity terms;
    margin: of the ranking hinge; l2_normalize: scale each segment feature to unit L2 norm; reduction:
    "sum" over the abnormal bags (code) or "mean" (the averaged form), see the module docstring; input:
    the 32 training segments as RTFM pools them ("rtfm") or as Sultani et al.'s C3D script ("c3d").
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
    reduction: Literal["sum", "mean"] = "sum"
    input: Literal["rtfm", "c3d"] = "rtfm"

    def __post_init__(self) -> None:
        check_options(
            self,
            positive=("batch_size", "steps", "lr", "hidden1", "hidden2"),
            non_negative=("weight_penalty", "smooth", "sparse", "margin"),
            probability=("dropout",),
            choices={"reduction": ("sum", "mean"), "input": ("rtfm", "c3d")},
        )


#: Adagrad's epsilon in Keras, which trained the published model (torch's default is 1e-10).
ADAGRAD_EPS = 1e-8


def sparsity_per_video(scores: torch.Tensor) -> torch.Tensor:
    """sum_t s_t within each video: (B, T) -> (B,)."""
    return scores.sum(dim=1)


def snippet_crop_mean(scores: torch.Tensor) -> torch.Tensor:
    """The mean over crops of (B, C, T) test scores, (B, T), summed along each snippet's contiguous row of C
    scores, as revision 2 summed them: a sum along axis 1 rounds differently in the last bit for 5 or more
    crops, which would move the stored test scores of 10-crop features."""
    return scores.transpose(1, 2).contiguous().mean(dim=-1)


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
    #: 2: the public code's objective (every pair of bags, sums over the bags) and Adagrad eps 1e-8.
    revision = 2

    def declarations(self) -> Declarations:
        """32 segments per video, pooled as RTFM does or as Sultani et al.'s C3D script does (``input``), in
        balanced batches drawn afresh every step, as the public code draws random abnormal and normal videos
        for every batch."""
        reduction = Reduction("mean" if self.config.input == "rtfm" else "c3d")
        return Declarations(training_input=TrainingInput(reduction, sampling=Sampling("per_step")))

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        check_input_shape(crops, feature_dim)
        cfg = self.config
        return MILNet(
            feature_dim,
            hidden=(cfg.hidden1, cfg.hidden2),
            dropout=cfg.dropout,
            l2_normalize=cfg.l2_normalize,
        )

    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """MIL ranking loss on a balanced batch of (2B, C, S, D) bags, normal first; entries besides
        ``loss`` are weighted and detached."""
        cfg = self.config
        count = len(batch.features) // 2
        # One forward for both classes; crop scores are averaged into one score per segment.
        scores = model(batch.features).mean(dim=1)  # (2B, S)
        normal_scores, abnormal_scores = scores[:count], scores[count:]
        # Per abnormal bag: its hinge against every normal bag, averaged; then summed (or averaged) over bags.
        reduce = torch.sum if cfg.reduction == "sum" else torch.mean
        hinges = ranking_hinge(abnormal_scores[:, None], normal_scores[None, :], cfg.margin)  # (B, B)
        terms = {
            "rank": reduce(hinges.mean(dim=1)),
            "smooth": cfg.smooth * reduce(squared_differences(abnormal_scores).sum(dim=1)),
            "sparse": cfg.sparse * reduce(sparsity_per_video(abnormal_scores)),
            "l2": cfg.weight_penalty * l2_penalty(linear_weights(model)),
        }
        total = terms["rank"] + terms["smooth"] + terms["sparse"] + terms["l2"]
        return {"loss": total, **{name: term.detach() for name, term in terms.items()}}

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per-snippet scores (B, T) of zero-padded (B, C, T, D) videos, averaged over crops."""
        mask = valid_mask(lengths, features.shape[2])
        return snippet_crop_mean(model(features)) * mask

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adagrad(parameters, lr=self.config.lr, eps=ADAGRAD_EPS)
