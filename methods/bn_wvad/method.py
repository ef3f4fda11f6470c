"""BN-WVAD training objective, scoring and optimiser.

Zhou, Qu, Xu, Shen, Song, Shen: "BatchNorm-based Weakly Supervised Video Anomaly Detection", arXiv
2311.15367 (IEEE TCSVT 2024, doi 10.1109/TCSVT.2024.3450734)
(public code: github.com/cool-xuan/BN-WVAD, commit 4fa3a5d; tests/reference/bn_wvad_reference.py runs it for
the equality tests).

Training: every crop is an independent sample (B, S, D) of S = 200 mean-pooled segments (by default; fewer
where every training video is shorter, `BNWVADConfig.for_data`), in balanced batches of `batch_size` normal
then as many abnormal samples. One forward pass in training mode (the two head BatchNorm layers normalise
with batch statistics and update their running statistics); then, per head layer l, with the pre-BN
features f_l (B, C_l, S) and the running mean mu_l and var var_l AFTER this batch's update:

- d_l(t) = sqrt(sum_c (f_l[c, t] - mu_l[c])^2 / var_l[c]) (the DFM / Mahalanobis distance, no eps);
- abnormal selection: per abnormal sample the top floor(ratio_sample * S) snippets by d_l, united with the
  top floor(B * S * ratio_batch) snippets of the whole abnormal half; the N_a selected feature rows in
  (sample, time) order are the negatives;
- normal selection: the k = N_a // B + 1 snippets with the LARGEST d_l of each normal sample, rank-major
  (rank, then sample), the first N_a rows are the positives;
- mpp_l = mean over the N_a pairs of max(D(mu_l, pos) - D(mu_l, neg) + margin, 0), D the distance above.

loss = w_normal * mean_i ||s_i||_2 (scores of the normal half, L2 norm over time) + w_mpp1 * mpp_1 +
w_mpp2 * mpp_2. There is no BCE/MIL term. Adam (lr 1e-4, weight decay 5e-5), gradient norm clipped at 1.

Test: eval mode (running statistics); per crop, (d_1 + d_2) * s; the mean over crops after the product.
The score is NOT a probability (``probability_scores = False``): it is unbounded above and >= 0, so the
engine records no false-alarm rate at 0.5 for it; AUC and AP depend only on the ranking.

DIFFERENCES between the paper, the public code and vadbench (defaults follow the code):

- Datasets: the public code supports XD-Violence only (Wu et al.'s 1024-d I3D, 5 crops, one file per crop);
  the README links UCF-Crime features and the paper gives UCF-Crime AUC 87.24, but no UCF or ShanghaiTech
  loader, config or record is released, and the paper's UCF hyper-parameters are not in the repo. vadbench
  runs BN-WVAD on every dataset with the XD defaults (one set of published hyper-parameters, no preset for
  settings nobody published) and takes the input width from the data (the first conv's in-channels;
  nothing else depends on it): UCF/SH RTFM features (2048-d, 10 crops) train every crop as its own sample
  and average the 10 crops' products at test, as the code does with XD's 5. Numbers outside XD-Violence
  are therefore vadbench's, not reproductions. On small training sets (UCSD Ped2's weak splits) the engine
  clamps the batch to the smaller class, and the batch-level selection count floor(B * S * ratio_batch)
  follows the batch actually drawn, as the code's formula does.
- Crops and batches: the public loaders read one crop-file per sample, so a balanced batch is 64 normal +
  64 abnormal crop-files; vadbench walks the crop samples as those loaders do (`BNWVAD.declarations`),
  but each loader shuffles with a generator of its own seeded from the run's seed, where the code's
  loaders share torch's global generator (seeded by the code) with initialisation and dropout.
- Checkpoint selection: the public code evaluates on the test set every 5 steps and keeps the checkpoint of
  the best test AP (its reported step 900); vadbench evaluates the weights after the 1000 steps by default
  (protocol ``last``); the test-set selection is available as a protocol. Measured effect
  (leaderboards/field-protocols.md, synthetic, batches of 8 + 8, seed 0, every 10 steps): +16.47
  [+12.92, +20.16] AUC over the last weights, the selected checkpoint being step 10.
- Seeds: the public code seeds 2022 and sets cudnn deterministic; vadbench seeds per run.
- Short training sets: when ratio_batch * B * S < 1 and ratio_sample * S < 1 nothing is selected; the public
  code would then average an empty triplet loss (NaN). vadbench counts such an mpp term as 0 (never the case
  at the defaults: S = 200). k = N_a // B + 1 is clamped to S (it exceeds S only when every abnormal
  snippet is selected), where the public code's top-k would fail.
- Test-time videos of any length T >= 1 score as in the public code (no top-k at test); padded batches are
  not safe (the fixed local attention's weights depend on T), so the engine scores each video alone.
- Weights: the checkpoints the public code saves (``torch.save(net.state_dict())`` of its WSAD, as its
  released ``ckpts/xd_best.pkl``) load, through `vadbench.methods.bn_wvad.checkpoint` (the names renamed, the
  head's BatchNorm running statistics with the parameters), and score as its test.py ``test`` does
  (tests/unit/test_public_checkpoint_urdmu_bnwvad_pel4vad.py).
- Paper vs code: this implementation follows the public code alone (the paper's full text was not
  compared line by line here); the paper's numbers are UCF-Crime AUC 87.24 (no code for it) and
  XD-Violence AP 84.93, which the code's log reproduces (step 900, AUC 94.71, AP 84.93, chosen by test AP).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from vadbench.api.method import Declarations, Method, Sampling, TrainBatch, TrainingInput, valid_mask
from vadbench.api.reduction import Reduction
from vadbench.methods._shared.checks import check_input_shape, check_options
from vadbench.methods._shared.tensors import crop_sequences
from vadbench.methods._shared.widths import (
    WidthsAndSegmentsFollowData,
    scaled,
    scaled_attention,
    width_scale,
)
from vadbench.methods.bn_wvad.checkpoint import public_state
from vadbench.methods.bn_wvad.model import BNWVADNet, mahalanobis


@dataclass(frozen=True)
class BNWVADConfig(WidthsAndSegmentsFollowData):
    """Hyper-parameters of BN-WVAD (defaults: the public code's, XD-Violence).

    batch_size: crop samples per class in a batch; steps: training iterations; lr, weight_decay: Adam's;
    clip: the maximum global gradient norm; segments: mean-pooled segments per training sample;
    ratio_sample, ratio_batch: the abnormal selection ratios (per sample, over the abnormal batch);
    w_normal, w_mpp1, w_mpp2: weights of the normal-score loss and the two layers' triplet losses;
    margin: the triplet margin; width, depth, heads, head_dim, mlp_dim: embedding and transformer sizes;
    ratios: channel reductions of the two head layers (width // ratio); kernel_sizes: the head convs'.

    The widths and segments are the published ones (1024-d features, videos of 200 snippets or more); below
    1024-d the default widths follow the features, on shorter videos the segments their length (`for_data`).
    """

    batch_size: int = 64
    steps: int = 1000
    lr: float = 1e-4
    weight_decay: float = 5e-5
    clip: float = 1.0
    segments: int = 200
    ratio_sample: float = 0.2
    ratio_batch: float = 0.4
    w_normal: float = 1.0
    w_mpp1: float = 5.0
    w_mpp2: float = 20.0
    margin: float = 1.0
    width: int = 512
    depth: int = 2
    heads: int = 4
    head_dim: int = 128
    mlp_dim: int = 512
    ratios: tuple[int, ...] = (16, 32)
    kernel_sizes: tuple[int, ...] = (1, 1, 1)

    def __post_init__(self) -> None:
        check_options(
            self,
            positive=("batch_size", "steps", "lr", "clip", "segments", "width", "depth", "heads", "head_dim",
                      "mlp_dim"),
            non_negative=("weight_decay", "ratio_sample", "ratio_batch", "w_normal", "w_mpp1", "w_mpp2",
                          "margin"),
        )
        if len(self.ratios) != 2 or min(self.ratios) < 1 or max(self.ratios) > self.width:
            raise ValueError(f"option 'ratios' must be two divisors of width in [1, width], got {self.ratios!r}")
        if len(self.kernel_sizes) != 3 or any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"option 'kernel_sizes' must be three odd sizes, got {self.kernel_sizes!r}")
        if not (self.ratio_sample <= 1 and self.ratio_batch <= 1):
            raise ValueError("options 'ratio_sample' and 'ratio_batch' must be at most 1")

    @classmethod
    def widths_for(cls, feature_dim: int | None) -> dict[str, Any]:
        """The width defaults for `feature_dim`-d features where they are not the published ones: below 1024-d
        each width times D / 1024, the attention's heads as well (64-d: width 32, one head of 32), but never
        narrower than the head layers' largest ratio (32: its layer keeps one channel)."""
        scale = max(width_scale(feature_dim), max(cls.ratios) / cls.width)
        if scale == 1:
            return {}
        heads, head_dim = scaled_attention(cls.heads, cls.head_dim, scale)
        return {"width": scaled(cls.width, scale), "heads": heads, "head_dim": head_dim,
                "mlp_dim": scaled(cls.mlp_dim, scale)}


def select_pairs(
    features: torch.Tensor, distances: torch.Tensor, ratio_sample: float, ratio_batch: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive (normal) and negative (abnormal) feature rows (N_a, C) of a balanced batch, paired by row.

    features (2B, C, S) normal first, distances (2B, S). Abnormal: the union of each sample's top
    floor(S * ratio_sample) and the abnormal half's top floor(B * S * ratio_batch) snippets by distance,
    in (sample, time) order. Normal: the N_a // B + 1 farthest snippets of each normal sample, rank-major,
    the first N_a rows.
    """
    count, channels, steps = features.shape
    half = count // 2
    per_sample = int(steps * ratio_sample)
    per_batch = int(half * steps * ratio_batch)  # the public code's order of operations
    rows = features.transpose(1, 2)  # (2B, S, C)
    normal_rows, abnormal_rows = rows[:half], rows[half:]
    normal_distance, abnormal_distance = distances[:half], distances[half:]

    sample_mask = torch.zeros_like(abnormal_distance, dtype=torch.bool)
    sample_mask.scatter_(1, abnormal_distance.topk(per_sample, dim=-1).indices, True)
    batch_mask = torch.zeros(half * steps, dtype=torch.bool, device=distances.device)
    batch_mask[abnormal_distance.reshape(-1).topk(per_batch).indices] = True
    selected = sample_mask.reshape(-1) | batch_mask
    negatives = abnormal_rows.reshape(-1, channels)[selected]

    chosen = len(negatives)
    k = min(chosen // half + 1, steps)
    index = normal_distance.topk(k, dim=-1).indices  # (B, k), farthest first
    positives = normal_rows.gather(1, index[..., None].expand(-1, -1, channels))
    positives = positives.transpose(0, 1).reshape(-1, channels)[:chosen]
    return positives, negatives


def triplet_loss(
    mean: torch.Tensor, var: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, margin: float
) -> torch.Tensor:
    """mean over pairs of max(D(mu, p) - D(mu, n) + margin, 0), D(mu, x) = sqrt(sum_c (x - mu)^2 / var);
    0 when no pair was selected."""
    if len(positives) == 0:
        return positives.sum() * 0.0
    positive = ((positives - mean).square() / var).sum(dim=-1).sqrt()
    negative = ((negatives - mean).square() / var).sum(dim=-1).sqrt()
    return (margin + positive - negative).clamp(min=0).mean()


class BNWVAD(Method):
    """BN-WVAD: BatchNorm running statistics as the normal anchor of a Mahalanobis-distance detector."""

    Config = BNWVADConfig
    config: BNWVADConfig
    #: 2: batches from the public code's epoch-based loaders instead of fresh draws every step.
    revision = 2

    def declarations(self) -> Declarations:
        """`segments` mean-pooled segments (200), every crop its own sample, balanced batches (normal first)
        from the public code's loaders: a normal and an abnormal one of `batch_size` crop samples,
        shuffled, the last incomplete batch dropped, 4 workers, each restarted after its own length. The
        fixed local attention's weights depend on T: each test video is scored alone. Not stackable: the
        head's BatchNorm running statistics are loss anchors and the test-time detector. The scores,
        (d_1 + d_2) * sigmoid, are unbounded above, not probabilities. Gradients clipped to ``clip``. The
        public code's checkpoints load (`public_state`), BatchNorm statistics included."""
        return Declarations(
            training_input=TrainingInput(
                Reduction("mean", self.config.segments), crops="independent", batch="balanced",
                sampling=Sampling("epochs", shuffle=True, drop_last=True, restart="own", workers=4),
            ),
            padded_scoring="alone",
            stackable=False,
            probability_scores=False,
            grad_clip=self.config.clip,
            public_checkpoint=public_state,
        )

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        check_input_shape(crops, feature_dim)
        cfg = self.config
        return BNWVADNet(
            feature_dim, width=cfg.width, depth=cfg.depth, heads=cfg.heads, head_dim=cfg.head_dim,
            mlp_dim=cfg.mlp_dim, ratios=(cfg.ratios[0], cfg.ratios[1]),
            kernel_sizes=(cfg.kernel_sizes[0], cfg.kernel_sizes[1], cfg.kernel_sizes[2]),
        )

    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """BN-WVAD loss on a balanced batch (2B, S, D), normal first (see the module docstring)."""
        cfg = self.config
        half = len(batch.features) // 2
        head_features, scores = model(batch.features)  # training mode: the running statistics update here
        normal = torch.linalg.vector_norm(scores[:half], dim=1).mean()
        mpp = []
        for features, (mean, var) in zip(head_features, cast(BNWVADNet, model).anchors(), strict=True):
            # Post-update running statistics, as the public code reads them after the forward pass.
            mean, var = mean.detach().clone(), var.detach().clone()
            distances = mahalanobis(features.detach(), mean, var)  # only indices come out of them
            positives, negatives = select_pairs(features, distances, cfg.ratio_sample, cfg.ratio_batch)
            mpp.append(triplet_loss(mean, var, positives, negatives, cfg.margin))
        total = cfg.w_normal * normal + cfg.w_mpp1 * mpp[0] + cfg.w_mpp2 * mpp[1]
        return {"loss": total, "normal": normal.detach(), "mpp1": mpp[0].detach(), "mpp2": mpp[1].detach()}

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(d_1 + d_2) * s per crop, averaged over crops: (B, T) of zero-padded (B, C, T, D); zero at padding."""
        batch, crops, steps, _ = features.shape
        head_features, scores = model(crop_sequences(features))
        anchors = cast(BNWVADNet, model).anchors()
        distance = sum(mahalanobis(f, mean, var) for f, (mean, var) in zip(head_features, anchors, strict=True))
        per_crop = (distance * scores).reshape(batch, crops, steps)
        return per_crop.mean(dim=1) * valid_mask(lengths, steps)

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=self.config.lr, betas=(0.9, 0.999),
                                weight_decay=self.config.weight_decay)
