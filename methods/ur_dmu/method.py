"""UR-DMU training objective, scoring and optimiser.

Zhou, Yu, Yang: "Dual Memory Units with Uncertainty Regulation for Weakly Supervised Video Anomaly
Detection", AAAI 2023 (arXiv 2302.05160). Public code: henrryzh1/UR-DMU, read at commit 40cfdf5f8beb
(the last code change is 152c4dc, 17 March 2023); the facts below are that code's, and
tests/reference/ur_dmu_reference.py runs it for the equality tests.

Training input: every training video is mean-pooled to 200 segments (RTFM-style boundaries; by default
fewer where every training video is shorter, `URDMUConfig.for_data`), every crop is a sample of its own,
and a batch is `batch_size` normal then `batch_size` abnormal samples (the model splits the batch in half).
With s the snippet scores (2B, T), k = T // 16 + 1 and BCE the mean binary cross-entropy:

- mil = BCE(mean top-k of s over time, video label) over the 2B samples;
- abnormal = BCE(mean top-k of A_att, 1), pseudo = BCE(mean top-k of (1 - N_Aatt), 1) over the B abnormal
  samples; normal = BCE(N_att, 1), abnormal_on_normal = BCE(A_Natt, 0) over every normal snippet;
- triplet = TripletMarginLoss(margin 1, p 2, eps 1e-6) of the L2-normalised (no epsilon) top-k means: anchor = normal
  videos at top-k N_att, positive = abnormal videos at top-k N_Aatt, negative = abnormal at top-k A_att;
- kl = mean over (video, channel) of -1/2 sum over TIME of (1 + logvar - mu^2 - exp(logvar)), the VAE on
  the normal memory's read-out of normal videos;
- distance = mean over videos of relu(100 - ||top-k mean of enc_mu(abnormal read-out)|| + ||top-k mean
  of the sampled normal read-out||);
- loss = mil + 0.1 (abnormal + pseudo + normal + abnormal_on_normal) + 0.1 triplet + 0.001 kl
  + 0.0001 distance.

The returned terms besides ``loss`` are unweighted and detached. Test scores: the test branch (no
sampling) on every crop, averaged over crops after the sigmoid.

DIFFERENCES between the paper, the public code and vadbench (defaults follow the code):

- Checkpoint: the public code tests on the test set at step 0 and every 10 steps from step 20 and keeps
  the best checkpoint (UCF by AUC, XD by AP); its reported numbers (UCF AUC 86.97 at step 1430, XD AP
  81.66 at step 840 of 3000) are such test-selected checkpoints. vadbench trains `steps` (3000) and
  selects as its protocol says (by default the last model, no test-set selection). Measured effect
  (leaderboards/field-protocols.md, synthetic, batches of 8 + 8, seed 0, every 10 steps): +3.08
  [+1.61, +4.61] AUC and AP 42.0 to 58.4 over the last weights (selected step 30).
- Batches: the code's two shuffled loaders of crop files (`URDMU.declarations`; a batch may hold
  several crops of one video), but each shuffles with a generator of its own seeded from the run's
  seed, where the code's loaders share torch's global generator (seeded by the code) with
  initialisation, dropout and the VAE noise.
- Input width: the public code hard-codes 1024-d features (the first Conv1d's in-channels); vadbench
  builds that conv for the data's D (nothing else depends on it; 2048-d RTFM features add 1,572,864
  parameters). Pooling boundaries: int (UCF) or uint16 (XD) casts in the code, identical values;
  vadbench's ``Reduction("mean", 200)``.
- Crops: as the public code, each crop is an independent training sample; at test time the code
  averages the sigmoid scores of 10 single-crop forwards (UCF) or of a 5-crop batch (XD), i.e. the same
  crop mean after the sigmoid that vadbench computes for any crop count.
- Datasets: the code has loaders for UCF-Crime and XD-Violence only, with one configuration for both
  (the differences are the list split, the test batching and the selection metric, none of which is a
  method option), so there are no per-dataset presets; vadbench runs the same defaults on every dataset
  (ShanghaiTech and others have no official UR-DMU numbers).
- Short videos: top-k over time takes T // 16 + 1 <= T snippets and the memories take slots // 16 + 1
  <= slots items, so videos of any length T >= 1 score as in the public code; nothing is clamped.
- Randomness: the VAE noise is drawn with ``torch.randn_like`` from the global generator (seeded by the
  runner); dropout is 0.5 in the transformer, as in the code.
- Stacked runs (``stackable``, default True): the step is a pure function of the parameters (no
  BatchNorm, clip or own step); under vmap each run draws its own dropout masks and VAE noise
  (``randomness="different"``), so stacked runs are equally valid samples, not the same ones.
- Cost: at the published sizes a step is about 1 TFLOP (forward and backward of 128 samples x 200
  segments of 1024-d features through a 512-wide transformer); the published 3000 steps are meant for a
  GPU (one CPU thread needs tens of seconds a step).
- BCE: torch's ``binary_cross_entropy`` (as the code's ``BCELoss``), with autocast off (torch refuses it
  under CUDA autocast): in float32 under bf16 autocast, otherwise in the working precision. (The public
  loss cannot run in float64 as written: ``AD_Loss`` casts the labels with ``.float()`` and ``BCELoss``
  refuses a float32 target for a float64 input; the equality reference casts the target for it.)
- Weights: the checkpoints the public code saves (``torch.save(net.state_dict())`` of its WSAD, as its
  released ``models/*.pkl``) load, through `vadbench.methods.ur_dmu.checkpoint` (the names renamed, no
  tensor changed), and score as its xd_test.py ``test`` does
  (tests/unit/test_public_checkpoint_urdmu_bnwvad_pel4vad.py).
- History: until commit 152c4dc the anchor of the distance term was gathered with the abnormal top-k
  indices; vadbench follows HEAD (the normal indices).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from vadbench.api.method import Declarations, Method, Sampling, TrainBatch, TrainingInput, valid_mask
from vadbench.api.reduction import Reduction
from vadbench.methods._shared.checks import check_input_shape, check_options
from vadbench.methods._shared.losses import binary_cross_entropy
from vadbench.methods._shared.tensors import crop_sequences
from vadbench.methods._shared.widths import (
    WidthsAndSegmentsFollowData,
    scaled,
    scaled_attention,
    width_scale,
)
from vadbench.methods.ur_dmu.checkpoint import public_state
from vadbench.methods.ur_dmu.model import TrainOutputs, URDMUNet, snippet_k


@dataclass(frozen=True)
class URDMUConfig(WidthsAndSegmentsFollowData):
    """Hyper-parameters of UR-DMU (defaults: the public code's).

    batch_size: samples (crops) per class in a batch; steps: training iterations; lr, weight_decay:
    Adam's; segments: pooled training segments per video; width: embedding and transformer width;
    depth, heads, head_dim, mlp_dim, dropout: the transformer's (head_dim: channels per attention head,
    the public code's ``dim_head``, named as BN-WVAD's and MGFN's option is); slots: items
    per memory unit (both); head_hidden: the classifier's hidden width; memory_weight: weight of the four
    memory BCE terms; triplet_weight, triplet_margin: the triplet term's; kl_weight: the VAE's KL term's;
    distance_weight, distance_margin: the read-out distance term's.

    The widths and segments are the published ones (1024-d features, videos of 200 snippets or more); below
    1024-d the default widths follow the features, on shorter videos the segments their length (`for_data`).
    """

    batch_size: int = 64
    steps: int = 3000
    lr: float = 1e-4
    weight_decay: float = 5e-5
    segments: int = 200
    width: int = 512
    depth: int = 2
    heads: int = 4
    head_dim: int = 128
    mlp_dim: int = 512
    dropout: float = 0.5
    slots: int = 60
    head_hidden: int = 128
    memory_weight: float = 0.1
    triplet_weight: float = 0.1
    triplet_margin: float = 1.0
    kl_weight: float = 0.001
    distance_weight: float = 1e-4
    distance_margin: float = 100.0

    def __post_init__(self) -> None:
        check_options(
            self,
            positive=("batch_size", "steps", "lr", "segments", "width", "depth", "heads", "head_dim", "mlp_dim",
                      "slots", "head_hidden"),
            non_negative=("weight_decay", "memory_weight", "triplet_weight", "triplet_margin", "kl_weight",
                          "distance_weight", "distance_margin"),
            probability=("dropout",),
        )

    @classmethod
    def widths_for(cls, feature_dim: int | None) -> dict[str, Any]:
        """The width defaults for `feature_dim`-d features where they are not the published ones: below 1024-d
        each width times D / 1024, the attention's heads as well (64-d: width 32, one head of 32)."""
        scale = width_scale(feature_dim)
        if scale == 1:
            return {}
        heads, head_dim = scaled_attention(cls.heads, cls.head_dim, scale)
        return {"width": scaled(cls.width, scale), "heads": heads, "head_dim": head_dim,
                "mlp_dim": scaled(cls.mlp_dim, scale), "head_hidden": scaled(cls.head_hidden, scale)}


def top_k_time_mean(scores: torch.Tensor) -> torch.Tensor:
    """Mean of the T // 16 + 1 largest entries of each row of (N, T) scores: (N,)."""
    return scores.topk(snippet_k(scores.shape[-1]), dim=-1).values.mean(dim=-1)


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """x / ||x||_2 over the last axis, without an epsilon (as the public code)."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True)


def triplet_term(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float) -> torch.Tensor:
    """mean of relu(margin + d(anchor, positive) - d(anchor, negative)), d(x, y) = ||x - y + 1e-6||_2: torch's
    ``TripletMarginLoss(margin, p=2)`` written out, because vmap (stacked runs) has no batching rule for it."""
    return torch.relu(
        margin + F.pairwise_distance(anchor, positive, p=2.0) - F.pairwise_distance(anchor, negative, p=2.0)
    ).mean()


def kl_term(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """mean over (video, channel) of -1/2 sum_t (1 + logvar - mu^2 - exp(logvar)); inputs (B, T, W)."""
    return (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)).mean()


def distance_term(negative: torch.Tensor, anchor: torch.Tensor, margin: float) -> torch.Tensor:
    """mean over videos of relu(margin - ||negative|| + ||anchor||); inputs (B, W)."""
    return torch.relu(
        margin - torch.linalg.vector_norm(negative, dim=-1) + torch.linalg.vector_norm(anchor, dim=-1)
    ).mean()


class URDMU(Method):
    """UR-DMU: dual (normal/abnormal) memory units with uncertainty regulation (Zhou et al., AAAI 2023)."""

    Config = URDMUConfig
    config: URDMUConfig
    #: 2: batches from the public code's epoch-based loaders instead of fresh draws every step.
    revision = 2

    def declarations(self) -> Declarations:
        """`segments` mean-pooled segments (200), every crop its own sample, balanced batches (normal first)
        from the public code's loaders: a normal and an abnormal one of `batch_size` crop samples,
        shuffled, the last incomplete batch dropped, no workers, each restarted after its own length. Each
        test video is scored alone: the fixed local attention depends on T and the global attention
        attends to every snippet. The public code's checkpoints load (`public_state`)."""
        return Declarations(
            training_input=TrainingInput(
                Reduction("mean", self.config.segments), crops="independent", batch="balanced",
                sampling=Sampling("epochs", shuffle=True, drop_last=True, restart="own"),
            ),
            padded_scoring="alone",
            public_checkpoint=public_state,
        )

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        check_input_shape(crops, feature_dim)
        cfg = self.config
        return URDMUNet(
            feature_dim, width=cfg.width, depth=cfg.depth, heads=cfg.heads, head_dim=cfg.head_dim,
            mlp_dim=cfg.mlp_dim, dropout=cfg.dropout, slots=cfg.slots, head_hidden=cfg.head_hidden,
        )

    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """UR-DMU loss on a balanced batch of (2B, S, D) samples, normal first (see the module docstring)."""
        out: TrainOutputs = cast(URDMUNet, model).train_forward(batch.features)
        terms = self.terms(out, batch.labels)
        cfg = self.config
        total = (
            terms["mil"]
            + cfg.memory_weight * (terms["abnormal"] + terms["pseudo"] + terms["normal"] + terms["abnormal_on_normal"])
            + cfg.triplet_weight * terms["triplet"]
            + cfg.kl_weight * terms["kl"]
            + cfg.distance_weight * terms["distance"]
        )
        return {"loss": total, **{name: term.detach() for name, term in terms.items()}}

    def terms(self, out: TrainOutputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted loss terms of the training branch's outputs (with graph)."""
        cfg = self.config
        ones = torch.ones_like(out.normal_att)
        abnormal_ones = ones[:, 0]
        # torch's BCELoss, as the public code's (see DIFFERENCES: BCE).
        bce = functools.partial(binary_cross_entropy, saturated="clamp_log")
        return {
            "mil": bce(top_k_time_mean(out.scores), labels),
            "abnormal": bce(top_k_time_mean(out.abnormal_att), abnormal_ones),
            "pseudo": bce(top_k_time_mean(1 - out.normal_on_abnormal), abnormal_ones),
            "normal": bce(out.normal_att, ones),
            "abnormal_on_normal": bce(out.abnormal_on_normal, torch.zeros_like(ones)),
            "triplet": triplet_term(
                l2_normalise(out.anchor), l2_normalise(out.positive), l2_normalise(out.negative), cfg.triplet_margin
            ),
            "kl": kl_term(out.mu, out.logvar),
            "distance": distance_term(out.negative_mu, out.anchor_sample, cfg.distance_margin),
        }

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Snippet scores (B, T) of (B, C, T, D) videos: the test branch per crop, crop mean after the
        sigmoid; zero at padding (the engine scores each video alone: ``padded_scoring="alone"``)."""
        batch, crops, steps, _ = features.shape
        scores = model(crop_sequences(features)).reshape(batch, crops, steps).mean(dim=1)
        return scores * valid_mask(lengths, steps)

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        cfg = self.config
        return torch.optim.Adam(parameters, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
