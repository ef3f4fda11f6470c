"""RTFM training objective, scoring and optimiser.

Tian, Pang, Chen, Singh, Verjans, Carneiro: "Weakly-supervised Video Anomaly Detection with Robust
Temporal Feature Magnitude Learning", ICCV 2021 (arXiv 2101.10030).

Loss on a batch of B normal and B abnormal videos (B, C, S, D), normal first as in the public code.
Each crop is one MTN sequence; snippet scores and feature magnitudes (L2 norm of X_t) are averaged
over crops. Per video, the magnitudes are multiplied by a dropout(0.7) mask of ones (values 0 or 1/0.3)
and the top-k snippets are selected; then

- cls = BCE(mean of the k selected scores, video label) over the 2B videos;
- fm = mean over the B x C (abnormal i crop c, normal i crop c) pairs of
  (|margin - ||mean_k x_abn||_2| + ||mean_k x_nor||_2)^2;
- smooth = lambda_smooth * sum_t (s_t+1 - s_t)^2 over the flattened abnormal-batch scores;
- sparse = lambda_sparse * ||abnormal-batch scores||_2 (or their sum);
- loss = cls + alpha * fm + smooth + sparse.

The returned ``cls`` and ``fm`` entries are unweighted, ``smooth`` and ``sparse`` weighted.

Without feature magnitudes (``use_fm=False``, the paper's "w/o FM" rows, trained "with the original MIL
ranking objective of Sultani et al."): loss = mean over the B pairs (abnormal video i, normal video i)
of max(0, 1 - max_t s_abn + max_t s_nor) (crop-averaged scores, margin 1 as Sultani et al.) + the same
smooth and sparse terms as above; the ``rank`` entry replaces ``cls`` and ``fm``, and no magnitudes or
top-k are computed. (Sultani et al.'s own code ranks every abnormal against every normal video and sums
over the abnormal videos, see `vadbench.methods.sultani_mil`.)

DIFFERENCES between the paper, the public code (tianyu0207/RTFM at cf938f4) and vadbench (defaults follow
the code, which produced the published numbers; tests/unit/test_rtfm.py checks vadbench against the
code's forward, loss terms, gradients, Adam step and test scores):

- Checkpoint selection: the public ``main.py`` evaluates the TEST set once before training and then after
  every step s with s % 5 == 0 and s > 200 (steps count from 1: 205, 210, ..., 15000), always by
  frame-level ROC AUC (its ``test`` computes AUC on ShanghaiTech and UCF-Crime alike); it saves the
  weights whenever that AUC beats the best so far (strictly, so the first best is kept on ties), and the
  final weights at the end. The published numbers are those of the best test-AUC checkpoint. vadbench
  evaluates the final weights (protocol ``last``, the default); protocol ``oracle-test`` applies the
  code's rule, and its rows are shown apart as test-selected.
- Input width: the public model is fixed to 2048-d features (its PDC branches are 512 channels, its TSA
  512 with 256 inside the non-local block) and 10 crops; vadbench takes D and the crops from the data,
  with D/4 channels per branch and D/8 inside the non-local block (the public widths at D = 2048).
- Fuse conv (Conv1d D -> D, k=3, no bias -> ReLU -> BN after the PDC/TSA concat): public code only.
- Weight decay: 5e-3 (code); the paper says 5e-4 (``weight_decay=5e-4``).
- Sparsity: L2 norm of the flattened abnormal-batch scores (code, ``sparsity="l2"``); the paper sums
  the scores (``sparsity="sum"``).
- Smoothness: over the flattened abnormal batch, so it crosses video boundaries, and the last score is
  compared with itself (code); the paper writes it per video.
- Learning rate: 1e-3 for every dataset here; the paper uses 1e-4 on XD-Violence (``lr=1e-4``).
- Top-k with a dropout mask on the magnitudes (code); the paper takes the plain top-k. The code draws two
  (B, T) masks, abnormal videos first, from the one dropout module it also applies to the features and
  the hidden layers; vadbench draws one (2B, T) mask, normal rows first (`RTFM.selection_mask`). The
  masks follow the same law; the public code sets no seed, so there is no stream to reproduce.
- BCE: probabilities are floored at the smallest normal float32 before the log (torch's ``BCELoss`` in
  the code clamps the log at -100); the two differ only for saturated scores.
- Batches with one video per class: the public model takes any forward with one normal video for a test
  forward and uses the normal video's magnitudes, scores and features in place of the abnormal video's,
  so the code cannot train with ``--batch-size 1``; vadbench trains with any ``batch_size``.
- Videos with T < k (vadbench): k is clamped to T instead of failing; this only arises when a method is
  trained on fewer segments than k.
- Checkpoints: the weights the public code saves (``torch.save(model.state_dict(), ...pkl)``) load through
  `vadbench.methods.rtfm.checkpoint` (a map of module names; every shape is the public one) wherever the
  model has PDC and TSA and the public widths (hidden 512 and 128; D = 2048 for the public code's files),
  and then score as the public ``test_10crop.test`` does (tests/unit/test_public_checkpoint_rtfm_mgfn.py).
- Batches: the code's two shuffled loaders (`RTFM.declarations`), but each shuffles with a generator
  of its own seeded from the run's seed, where the code's loaders share torch's global generator with
  initialisation and dropout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from vadbench.api.method import Declarations, Method, Presentation, Sampling, TrainBatch, TrainingInput, valid_mask
from vadbench.methods._shared.checks import check_input_shape, check_options
from vadbench.methods._shared.losses import binary_cross_entropy, ranking_hinge, score_sparsity, squared_differences
from vadbench.methods._shared.selection import dropout_mask, gather_top_k, top_k_indices
from vadbench.methods._shared.tensors import crop_sequences
from vadbench.methods.rtfm.checkpoint import import_public_checkpoint
from vadbench.methods.rtfm.model import RTFMNet


@dataclass(frozen=True)
class RTFMConfig:
    """Hyper-parameters of RTFM (defaults: the public code's, see DIFFERENCES).

    batch_size: videos per class in a batch; steps: training iterations; lr, weight_decay: Adam's;
    k: snippets selected per video; margin: m of the feature-magnitude loss; alpha: its weight;
    smooth, sparse: weights of the abnormal-score smoothness and sparsity terms; sparsity: "l2" (code)
    or "sum" (paper); dropout: on the snippet features and after each hidden FC layer; mask_dropout:
    rate of the dropout mask on the magnitudes before the top-k; hidden1, hidden2: classifier widths;
    use_pdc, use_tsa: MTN branches (both off: the paper's 1x1-conv baseline); use_fm: feature-magnitude
    learning, else Sultani et al.'s MIL ranking objective.
    """

    batch_size: int = 32
    steps: int = 15000
    lr: float = 1e-3
    weight_decay: float = 5e-3
    k: int = 3
    margin: float = 100.0
    alpha: float = 1e-4
    smooth: float = 8e-4
    sparse: float = 8e-3
    sparsity: Literal["l2", "sum"] = "l2"
    dropout: float = 0.7
    mask_dropout: float = 0.7
    hidden1: int = 512
    hidden2: int = 128
    use_pdc: bool = True
    use_tsa: bool = True
    use_fm: bool = True

    def __post_init__(self) -> None:
        check_options(
            self,
            positive=("batch_size", "steps", "lr", "k", "hidden1", "hidden2"),
            non_negative=("weight_decay", "margin", "alpha", "smooth", "sparse"),
            probability=("dropout", "mask_dropout"),
            choices={"sparsity": ("l2", "sum")},
        )


def feature_magnitude_loss(abnormal: torch.Tensor, normal: torch.Tensor, margin: float) -> torch.Tensor:
    """mean over pairs (i, c) of (|margin - ||mean_k a||| + ||mean_k n||)^2; inputs (B, C, k, D)."""
    abnormal_norm = torch.linalg.vector_norm(abnormal.mean(dim=2), dim=-1)
    normal_norm = torch.linalg.vector_norm(normal.mean(dim=2), dim=-1)
    return ((margin - abnormal_norm).abs() + normal_norm).square().mean()


class RTFM(Method):
    """RTFM: top-k feature-magnitude learning over a multi-scale temporal network (Tian et al., ICCV 2021)."""

    Config = RTFMConfig
    config: RTFMConfig
    #: 2: batches from the public code's epoch-based loaders instead of fresh draws every step.
    revision = 2
    #: Table 5's switches shown as check marks in ablation tables; k counts the pooled training segments
    #: whose magnitudes are averaged.
    presentation = Presentation(table_marks={"use_pdc": "PDC", "use_tsa": "TSA", "use_fm": "FM"},
                                segment_options={"k": "top-k"})

    def declarations(self) -> Declarations:
        """32 mean-pooled segments, crops joint, and the public code's loaders: a normal and an abnormal one
        of `batch_size` videos, shuffled, the last incomplete batch dropped, no workers, each restarted
        after its own length (``if (step - 1) % len(loader) == 0``); feature magnitudes from the scoring pass.
        The public code's checkpoints load where the model has its both branches, PDC and TSA (the ablations
        without one declare no public format: the public code has no such model)."""
        cfg = self.config
        return Declarations(
            training_input=TrainingInput(sampling=Sampling("epochs", shuffle=True, drop_last=True, restart="own")),
            score_with_magnitudes=self.score_with_magnitudes,
            public_checkpoint=import_public_checkpoint if cfg.use_pdc and cfg.use_tsa else None,
        )

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        check_input_shape(crops, feature_dim)
        cfg = self.config
        return RTFMNet(
            feature_dim,
            hidden=(cfg.hidden1, cfg.hidden2),
            dropout=cfg.dropout,
            use_pdc=cfg.use_pdc,
            use_tsa=cfg.use_tsa,
        )

    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """RTFM loss on a balanced batch of (2B, C, S, D) videos, normal first (see the module docstring)."""
        cfg = self.config
        videos, crops, steps, dim = batch.features.shape
        count = videos // 2
        # One forward over both classes: BatchNorm statistics cover the whole batch, as in the public code.
        features, crop_scores = model(crop_sequences(batch.features))
        features = features.reshape(2 * count, crops, steps, dim)
        scores = crop_scores.reshape(2 * count, crops, steps).mean(dim=1)
        if cfg.use_fm:
            terms = self._fm_terms(features, scores, count)
            total = terms["cls"] + cfg.alpha * terms["fm"]
        else:
            # Sultani et al.'s ranking hinge (margin 1) between abnormal video i and normal video i.
            terms = {"rank": ranking_hinge(scores[count:], scores[:count]).mean()}
            total = terms["rank"]
        # Across video boundaries, as the public code computes it on the flattened abnormal scores.
        terms["smooth"] = cfg.smooth * squared_differences(scores[count:].reshape(-1)).sum()
        terms["sparse"] = cfg.sparse * score_sparsity(scores[count:], cfg.sparsity)
        total = total + terms["smooth"] + terms["sparse"]
        return {"loss": total, **{name: term.detach() for name, term in terms.items()}}

    def selection_mask(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """The (2B, S) dropout mask of the magnitudes before the top-k, one draw for the whole batch."""
        return dropout_mask(magnitudes, self.config.mask_dropout)

    def _fm_terms(self, features: torch.Tensor, scores: torch.Tensor, count: int) -> dict[str, torch.Tensor]:
        """Classification and feature-magnitude terms of the top-k snippets of every video."""
        cfg = self.config
        # Only indices come out of the magnitudes, so they need no graph.
        magnitudes = torch.linalg.vector_norm(features.detach(), dim=-1).mean(dim=1)
        index = top_k_indices(magnitudes, cfg.k, self.selection_mask(magnitudes))
        selected, selected_scores = gather_top_k(features, scores, index)
        labels = torch.arange(2 * count, device=scores.device) >= count
        return {
            "cls": binary_cross_entropy(selected_scores.mean(dim=1), labels, saturated="floor"),
            "fm": feature_magnitude_loss(selected[count:], selected[:count], cfg.margin),
        }

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Crop-averaged snippet scores (B, T) of zero-padded (B, C, T, D) videos; zero at padding."""
        _, scores, mask = self._padded_forward(model, features, lengths)
        return scores.mean(dim=1) * mask

    def score_with_magnitudes(
        self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`score` and the crop-averaged feature magnitudes ||X_t||_2 (B, T) from one forward pass (the test
        pass stores both); zero at padding."""
        snippet_features, scores, mask = self._padded_forward(model, features, lengths)
        return scores.mean(dim=1) * mask, torch.linalg.vector_norm(snippet_features, dim=-1).mean(dim=1) * mask

    def _padded_forward(
        self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features (B, C, T, D), crop scores (B, C, T) and the (B, T) validity mask of padded videos."""
        batch, crops, steps, dim = features.shape
        mask = valid_mask(lengths, steps)
        sequences = crop_sequences(features)
        crop_mask = mask[:, None, :].expand(batch, crops, steps).reshape(batch * crops, steps)
        snippet_features, scores = model(sequences, crop_mask)
        return snippet_features.reshape(batch, crops, steps, dim), scores.reshape(batch, crops, steps), mask

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=self.config.lr, weight_decay=self.config.weight_decay)
