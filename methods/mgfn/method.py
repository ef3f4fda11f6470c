"""MGFN training objective, scoring and optimiser.

Chen, Liu, Zhang, Fok, Qi, Wu: "MGFN: Magnitude-Contrastive Glance-and-Focus Network for
Weakly-Supervised Video Anomaly Detection", AAAI 2023 (arXiv 2211.15098); public code
github.com/carolchenyx/MGFN. (the name ends in a dot), commit 98e9389 (HEAD, April 2023).

Network (`MGFNNet`): every crop of a video is one sequence. The feature magnitude m_t = ||x_t||_2 of each
input snippet is computed inside the network from the features it receives (pooled segments in
training, raw snippets at test, as the public code's dataset computes them), and the input is
conv3(x) + 0.1 * conv3(m) ("feature amplification"). Three stages (Glance 64-d, Focus 128-d, Focus
1024-d; depths 3, 3, 2) of [x + conv3(x), x + block(x), x + FF(x)] layers, LayerNorm, Linear, sigmoid.

Loss on a balanced batch of n normal and n abnormal videos (2n, C, S, D), normal first:

- scores s (2n, S) and the magnitudes of the final (post-LayerNorm) features are averaged over crops;
  per video the magnitudes are multiplied by a dropout(0.7) mask of ones and the top-k (3) segments are
  selected, the same segments in every crop;
- cls = BCE(mean of the k selected scores, video label) over the 2n videos;
- with n(X) the L1 norms (C n, k) of the selected features of one class, rows crop-major (row r = crop
  r // n, video r % n), and the contrastive loss of 3-vectors a, b with d = ||a - b + 1e-6||_2 (torch's
  pairwise distance): label 1: mean(max(margin - d, 0)^2) (margin 200), label 0: mean(d^2);
- con = contrastive(n(X_abn), n(X_nor), 1), row i with row i;
- con_n = contrastive(n(X_nor) rows h.., rows ..h, 0) with h = half the rows, so with 10 crops crop c + 5
  of a video is paired with crop c of the same video (the public code's pairing, not pairs of videos);
  con_a likewise for the abnormal videos;
- mgfn = cls + alpha * (beta * con + con_a + con_n), alpha = beta = 1e-3;
- regularisers (HEAD, ``regularisers="head"``): sparse = 8e-3 * ||s of the n normal videos||_2 and
  smooth = 8e-4 * sum over all 2n videos of sum_t (s_t+1 - s_t)^2;
  (authors' original, ``"original"``): both on the flattened abnormal scores, sparse = 8e-3 * L2 norm,
  smooth = 8e-4 * sum of squared differences along the flattened vector (crossing videos, last 0);
- loss = mgfn + smooth + sparse.

The returned ``cls``, ``con``, ``con_n``, ``con_a`` entries are unweighted, ``smooth`` and ``sparse``
weighted. Test scores: the crop mean of the snippet sigmoid scores, each video alone (global attention
over time: padding would change the scores), BatchNorm with its running statistics.

DIFFERENCES between the paper, the public code and vadbench (defaults follow the public code at HEAD):

- Regularisers: the paper and the authors' original code (<= ded0ef6) put sparsity and smoothness on the
  abnormal scores (flattened, smoothness crossing videos); a contributor's commit a6588e1 (after
  publication) moved sparsity to the normal scores and made smoothness per video over all videos. HEAD is
  the default; the preset ``mgfn-original`` (``regularisers="original"``) is the version behind the
  paper's numbers.
- Contrastive pairs: the paper describes same-class pairs of different videos; the code pairs crop c + C/2
  with crop c of the same video (crop-major order), which vadbench keeps. With an odd number of rows
  (C n odd) vadbench leaves the last row out of the same-class terms (the public code fails there unless
  there are 3 rows), and with a single row those terms are 0.
- Input width and crops come from the data (`build(crops, feature_dim)`): the public code hard-codes 2048
  input channels and 10 crops (in the split of the selected features). The magnitude channel, which the
  public dataset appends as channel 2049, is computed by `MGFNNet` from the features.
- XD-Violence: the released XD path does not run (it reads a missing ``args.add_mag_info``, returns samples
  without a crop axis, and the model is fixed to 2048 channels and 10 crops). vadbench runs every dataset
  (UCF-Crime, XD-Violence, ShanghaiTech, synthetic) with the same published hyper-parameters (the option
  comments suggest the same lr and batch for XD), the data's crops (5 on XD) jointly in one sample and the
  data's width (1024 on XD): an unpublished configuration, not the paper's XD number (whose features are
  uncertain).
- Training data: as the public loaders (`MGFN.declarations`): not shuffled, each "epoch" zips 50 normal
  and 50 abnormal batches of 16 videos in list order (vadbench: the training set's order, a real dataset's
  list file), so the same batches come every epoch and the last 10 abnormal UCF videos are never used.
  Nothing random remains in them; the public code sets no seed.
- Steps: 1000 "epochs" x 50 iterations = 50,000 (``steps``), constant lr 1e-3, Adam weight decay 5e-4.
- Checkpoint selection: the public code tests after every epoch and keeps the best test AUC (UCF) or AP
  (XD); vadbench does not select on the test set by default. Measured effect (leaderboards/
  field-protocols.md, synthetic, batches of 8 + 8, seed 0, every 10 steps): none, the best checkpoint
  is the last.
- BCE: probabilities are floored at the smallest normal float32 before the log (torch's BCELoss clamps the
  log at -100); the two differ only for saturated scores.
- Short videos: the public selection fails for fewer than k segments; vadbench clamps k to the number of
  segments (training uses 32). Test scoring needs no selection (in eval mode the public selection only
  averages the crops), so videos of any length T >= 1 are scored.
- Checkpoints: the weights the public code saves (``torch.save(model.state_dict(), ...pkl)``) load through
  `vadbench.methods.mgfn.checkpoint` (a map of module names, and the public channel norms' (1, d, 1)
  parameters as vectors) into a model of the same widths, depths and block types (for the public code's
  files: 2048-d features and the options' defaults), and then score as the public ``test.test`` does
  (tests/unit/test_public_checkpoint_rtfm_mgfn.py). The public ``dim_head`` option changes only the number
  of heads (each stays 64 channels wide, as its ``Backbone`` does not pass it on), so a public model built
  with another ``dim_head`` has no vadbench counterpart; its file is refused by the shape check.
- Randomness: the selection dropout (p = 0.7, values 0 or 1/0.3) is drawn for the abnormal videos, then the
  normal ones, from torch's generator (`MGFN.selection_mask`); the equality test injects the same fixed
  masks into both codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vadbench.api.dataset import DataShape
from vadbench.api.method import Declarations, Method, Presentation, Sampling, TrainBatch, TrainingInput, valid_mask
from vadbench.api.reduction import Reduction
from vadbench.methods._shared.checks import check_input_shape, check_options
from vadbench.methods._shared.losses import binary_cross_entropy, score_sparsity, squared_differences
from vadbench.methods._shared.selection import dropout_mask, gather_top_k, top_k_indices
from vadbench.methods._shared.tensors import crop_sequences
from vadbench.methods._shared.widths import scaled, width_scale
from vadbench.methods.mgfn.checkpoint import import_public_checkpoint
from vadbench.methods.mgfn.model import BLOCK_TYPES, MGFNNet


@dataclass(frozen=True)
class MGFNConfig:
    """Hyper-parameters of MGFN (defaults: the public code's at HEAD, see DIFFERENCES).

    batch_size: videos per class in a batch; steps: training iterations; lr, weight_decay: Adam's;
    segments: mean-pooled training segments per crop; k: segments selected per video; mask_dropout: rate
    of the dropout mask on the magnitudes before the top-k; margin: of the abnormal-normal contrastive
    term; alpha: weight of all contrastive terms; beta: extra weight of the abnormal-normal term; smooth,
    sparse: regulariser weights; regularisers: "head" (code at HEAD) or "original" (authors' version);
    magnitude_ratio: weight of the magnitude embedding; dim1..3, depth1..3, block1..3: width, depth and
    block type ("glance" or "focus") of the stages; head_dim: channels per head; expansion: feed-forward
    expansion; kernel: the Focus blocks' temporal kernel.

    The widths are the published ones (for 2048-d features, kept on 1024-d ones); below 1024-d the defaults
    follow the features (`for_data`).
    """

    batch_size: int = 16
    steps: int = 50000
    lr: float = 1e-3
    weight_decay: float = 5e-4
    segments: int = 32
    k: int = 3
    mask_dropout: float = 0.7
    margin: float = 200.0
    alpha: float = 1e-3
    beta: float = 1e-3
    smooth: float = 8e-4
    sparse: float = 8e-3
    regularisers: Literal["head", "original"] = "head"
    magnitude_ratio: float = 0.1
    dim1: int = 64
    dim2: int = 128
    dim3: int = 1024
    depth1: int = 3
    depth2: int = 3
    depth3: int = 2
    block1: Literal["glance", "focus"] = "glance"
    block2: Literal["glance", "focus"] = "focus"
    block3: Literal["glance", "focus"] = "focus"
    head_dim: int = 64
    expansion: int = 4
    kernel: int = 5

    def __post_init__(self) -> None:
        check_options(
            self,
            positive=("batch_size", "steps", "lr", "segments", "k", "dim1", "dim2", "dim3", "depth1", "depth2",
                      "depth3", "head_dim", "expansion", "kernel"),
            non_negative=("weight_decay", "margin", "alpha", "beta", "smooth", "sparse", "magnitude_ratio"),
            probability=("mask_dropout",),
            choices={"regularisers": ("head", "original"), "block1": BLOCK_TYPES, "block2": BLOCK_TYPES,
                     "block3": BLOCK_TYPES},
        )
        for dim in (self.dim1, self.dim2, self.dim3):
            if dim < self.head_dim:
                raise ValueError(f"option 'head_dim' ({self.head_dim}) must not exceed a stage width ({dim})")
        if self.kernel % 2 == 0:
            raise ValueError(f"option 'kernel' must be odd (same-length convolution), got {self.kernel}")

    @classmethod
    def for_data(cls, shape: DataShape) -> dict[str, Any]:
        """The defaults for data of `shape` where they are not the published ones: narrower widths below 1024-d
        features (`widths_for`); the 32 segments stay."""
        return cls.widths_for(shape.feature_dim)

    @classmethod
    def widths_for(cls, feature_dim: int | None) -> dict[str, Any]:
        """The width defaults for `feature_dim`-d features where they are not the published ones: below 1024-d
        each stage width and the channels per head times D / 1024 (64-d: stages 4, 8, 64, heads of 4)."""
        scale = width_scale(feature_dim)
        if scale == 1:
            return {}
        return {name: scaled(getattr(cls, name), scale) for name in ("dim1", "dim2", "dim3", "head_dim")}


def contrastive(first: torch.Tensor, second: torch.Tensor, similar: bool, margin: float) -> torch.Tensor:
    """Mean contrastive loss of row pairs: d^2 for similar pairs, max(margin - d, 0)^2 for dissimilar ones,
    with d torch's pairwise distance ||a - b + 1e-6||_2 (as the public code computes it)."""
    if len(first) == 0:
        return first.new_zeros(())
    distance = F.pairwise_distance(first, second)
    return distance.square().mean() if similar else (margin - distance).clamp(min=0).square().mean()


def halves(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows [h, 2h) and [0, h) with h = half the rows (an odd last row is left out)."""
    half = len(rows) // 2
    return rows[half : 2 * half], rows[:half]


class MGFN(Method):
    """MGFN: magnitude-contrastive Glance-and-Focus network (Chen et al., AAAI 2023)."""

    Config = MGFNConfig
    config: MGFNConfig
    #: k counts the pooled training segments whose magnitudes are averaged.
    presentation = Presentation(segment_options={"k": "top-k"})
    #: 2: batches from the public code's unshuffled zipped loaders instead of fresh draws every step; stored
    #: feature magnitudes computed for each test video alone (they were batched by length).
    revision = 2

    def declarations(self) -> Declarations:
        """`segments` mean-pooled segments, crops joint, balanced batches from the public code's loaders: a
        normal and an abnormal one of `batch_size` videos, not shuffled, the last incomplete batch dropped,
        both restarted when the shorter ends (``for epoch: for n, a in zip(nloader, aloader)``). Global
        self-attention over time: zero padding changes the scores, so each test video is scored alone. Not
        stackable: BatchNorm statistics in the Focus blocks and a random selection mask inside the loss.
        Feature magnitudes from the scoring pass; the public code's checkpoints load."""
        return Declarations(
            training_input=TrainingInput(
                Reduction("mean", self.config.segments), crops="joint", batch="balanced",
                sampling=Sampling("epochs", shuffle=False, drop_last=True, restart="zip"),
            ),
            padded_scoring="alone",
            stackable=False,
            score_with_magnitudes=self.score_with_magnitudes,
            public_checkpoint=import_public_checkpoint,
        )

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        check_input_shape(crops, feature_dim)
        cfg = self.config
        return MGFNNet(
            feature_dim,
            dims=(cfg.dim1, cfg.dim2, cfg.dim3),
            depths=(cfg.depth1, cfg.depth2, cfg.depth3),
            blocks=(cfg.block1, cfg.block2, cfg.block3),
            head_dim=cfg.head_dim,
            expansion=cfg.expansion,
            kernel=cfg.kernel,
            magnitude_ratio=cfg.magnitude_ratio,
        )

    def selection_mask(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """The (2n, S) dropout mask of the magnitudes (normal rows first), drawn abnormal half first as the
        public code draws it."""
        count = len(magnitudes) // 2
        abnormal = dropout_mask(magnitudes[count:], self.config.mask_dropout)
        normal = dropout_mask(magnitudes[:count], self.config.mask_dropout)
        return torch.cat([normal, abnormal])

    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """MGFN loss on a balanced batch of (2n, C, S, D) videos, normal first (see the module docstring)."""
        cfg = self.config
        videos, crops, steps, _ = batch.features.shape
        count = videos // 2
        # One forward over both classes: BatchNorm statistics cover the whole batch, as in the public code.
        features, crop_scores = model(crop_sequences(batch.features))
        features = features.reshape(videos, crops, steps, -1)
        scores = crop_scores.reshape(videos, crops, steps).mean(dim=1)
        # Only indices come out of the magnitudes, so they need no graph.
        magnitudes = torch.linalg.vector_norm(features.detach(), dim=-1).mean(dim=1)
        index = top_k_indices(magnitudes, cfg.k, self.selection_mask(magnitudes))
        selected, selected_scores = gather_top_k(features, scores, index)
        # L1 norms of the selected features, (C n, k) per class with rows crop-major.
        norms = selected.abs().sum(dim=-1).transpose(0, 1)
        normal_norms = norms[:, :count].reshape(crops * count, -1)
        abnormal_norms = norms[:, count:].reshape(crops * count, -1)
        labels = torch.arange(videos, device=scores.device) >= count
        terms = {
            "cls": binary_cross_entropy(selected_scores.mean(dim=1), labels, saturated="floor"),
            "con": contrastive(abnormal_norms, normal_norms, False, cfg.margin),
            "con_n": contrastive(*halves(normal_norms), True, cfg.margin),
            "con_a": contrastive(*halves(abnormal_norms), True, cfg.margin),
        }
        total = terms["cls"] + cfg.alpha * (cfg.beta * terms["con"] + terms["con_a"] + terms["con_n"])
        if cfg.regularisers == "head":
            # Within each of the 2n videos; sparsity of the normal scores.
            terms["smooth"] = cfg.smooth * squared_differences(scores).sum()
            terms["sparse"] = cfg.sparse * score_sparsity(scores[:count])
        else:
            # Both on the abnormal scores, smoothness across video boundaries (flattened).
            terms["smooth"] = cfg.smooth * squared_differences(scores[count:].reshape(-1)).sum()
            terms["sparse"] = cfg.sparse * score_sparsity(scores[count:])
        total = total + terms["smooth"] + terms["sparse"]
        return {"loss": total, **{name: term.detach() for name, term in terms.items()}}

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Crop-averaged snippet scores (B, T) of (B, C, T, D) videos; zero at padding (score videos alone)."""
        _, scores, mask = self._forward(model, features, lengths)
        return scores.mean(dim=1) * mask

    def score_with_magnitudes(
        self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`score` and the crop-averaged magnitudes ||X_t||_2 (B, T) of the final features (the selection's)
        from one forward pass (the test pass stores both); zero at padding."""
        snippet_features, scores, mask = self._forward(model, features, lengths)
        return scores.mean(dim=1) * mask, torch.linalg.vector_norm(snippet_features, dim=-1).mean(dim=1) * mask

    def _forward(
        self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, crops, steps, _ = features.shape
        snippet_features, scores = model(crop_sequences(features))
        mask = valid_mask(lengths, steps)
        return (
            snippet_features.reshape(batch, crops, steps, -1),
            scores.reshape(batch, crops, steps),
            mask,
        )

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=self.config.lr, weight_decay=self.config.weight_decay)
