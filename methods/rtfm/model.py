"""The RTFM network: multi-scale temporal network (MTN) plus snippet classifier.

Tian, Pang, Chen, Singh, Verjans, Carneiro: "Weakly-supervised Video Anomaly Detection with Robust
Temporal Feature Magnitude Learning", ICCV 2021 (arXiv 2101.10030).

The network maps sequences of snippet features (N, T, D) to snippet features X (the dropped-out MTN
output, whose L2 norms are the feature magnitudes) and snippet scores in [0, 1]. It is
dimension-agnostic: every width follows from D and the classifier widths.

Ablation structure (paper Table 5). Disabled branches are absent, never computed and discarded, so
every parameter receives a gradient:

- PDC and TSA: concat [PDC1, PDC2, PDC3, TSA] = 3 D/4 + D/4 = D channels -> fuse conv D -> D.
- only PDC: 3 D/4 channels -> fuse conv 3 D/4 -> D; only TSA: D/4 channels -> fuse conv D/4 -> D.
  The fuse conv (k=3, no bias) -> ReLU -> BatchNorm1d -> + input is kept, so the ablations differ from
  the full model only in the branch that was removed.
- neither ("baseline"): one 1x1 Conv1d D -> D + input, as the paper replaces PDC and TSA by a 1x1 conv.

Padding. Test videos of different lengths are batched with zero padding and a validity mask. After
every layer whose output feeds a temporal convolution the padded positions are zeroed, so that conv
sees the zeros a lone video's own zero padding gives; the non-local block excludes padded snippets from
theta^T phi and divides by each video's valid length. Scores of real snippets therefore do not depend
on the padding (BatchNorm must be in eval mode for that: training batches are never padded, and the
``mask=None`` fast path skips all masking).
"""

from __future__ import annotations

import torch
from torch import nn

from vadbench.methods._shared.tensors import at_least_float32

#: Dilations of the three PDC branches.
PDC_DILATIONS = (1, 2, 4)


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded positions of channels-first `x` (N, ch, T); `mask` is (N, 1, T) or None."""
    return x if mask is None else x * mask


class PyramidDilatedConv(nn.Module):
    """PDC: three temporal convs D -> D/4 (k=3, dilation 1, 2, 4), each -> ReLU -> BatchNorm1d."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(dim, dim // 4, kernel_size=3, dilation=d, padding=d),
                nn.ReLU(),
                nn.BatchNorm1d(dim // 4),
            )
            for d in PDC_DILATIONS
        )
        self.out_channels = len(PDC_DILATIONS) * (dim // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, D, T) with padded positions already zero -> (N, 3 D/4, T)."""
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class NonLocalBlock(nn.Module):
    """Non-local block without softmax: y = (theta^T phi / N) g; out = BN(W y) + input.

    The BatchNorm after W starts at weight 0 and bias 0, so the block starts as the identity.
    """

    def __init__(self, channels: int, inter: int) -> None:
        super().__init__()
        self.theta = nn.Conv1d(channels, inter, kernel_size=1)
        self.phi = nn.Conv1d(channels, inter, kernel_size=1)
        self.g = nn.Conv1d(channels, inter, kernel_size=1)
        norm = nn.BatchNorm1d(channels)
        nn.init.zeros_(norm.weight)
        nn.init.zeros_(norm.bias)
        self.project = nn.Sequential(nn.Conv1d(inter, channels, kernel_size=1), norm)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (N, ch, T) -> (N, ch, T); `mask` (N, 1, T) excludes padded snippets."""
        theta = self.theta(x).transpose(1, 2)  # (N, T, I)
        phi = _masked(self.phi(x), mask)  # (N, I, T): a zero column drops snippet j from every sum
        g = self.g(x).transpose(1, 2)  # (N, T, I)
        steps, inter = theta.shape[1], theta.shape[2]
        # Without a softmax the product is associative; the cheaper order avoids a (T, T) matrix for
        # long test videos. The choice depends only on shapes, so torch.compile specialises on it.
        y = (theta @ phi) @ g if steps <= inter else theta @ (phi @ g)
        count = steps if mask is None else mask.sum(dim=-1, keepdim=True).clamp(min=1)
        return self.project((y / count).transpose(1, 2)) + x


class TemporalSelfAttention(nn.Module):
    """TSA: Conv1d D -> D/4 (k=1, no bias) -> ReLU -> non-local block with D/8 inner channels."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        # No bias: padded (zero) inputs stay zero, which the non-local block's residual relies on.
        self.reduce = nn.Sequential(nn.Conv1d(dim, dim // 4, kernel_size=1, bias=False), nn.ReLU())
        self.non_local = NonLocalBlock(dim // 4, dim // 8)
        self.out_channels = dim // 4

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (N, D, T) with padded positions already zero -> (N, D/4, T)."""
        return self.non_local(self.reduce(x), mask)


class MultiScaleTemporalNetwork(nn.Module):
    """MTN: the enabled branches (PDC, TSA) concatenated -> fuse conv -> ReLU -> BN, plus the input."""

    def __init__(self, dim: int, use_pdc: bool = True, use_tsa: bool = True) -> None:
        super().__init__()
        if not (use_pdc or use_tsa):
            raise ValueError("the MTN needs PDC or TSA; use PointwiseBaseline for neither")
        self.pdc = PyramidDilatedConv(dim) if use_pdc else None
        self.tsa = TemporalSelfAttention(dim) if use_tsa else None
        branch_channels = sum(b.out_channels for b in (self.pdc, self.tsa) if b is not None)
        # The fuse conv is in the public code, not in the paper; it also maps ablated widths back to D.
        self.fuse = nn.Sequential(
            nn.Conv1d(branch_channels, dim, kernel_size=3, padding=1, bias=False),
            nn.ReLU(),
            nn.BatchNorm1d(dim),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (N, D, T) -> (N, D, T)."""
        x = _masked(x, mask)
        parts = []
        if self.pdc is not None:
            parts.append(self.pdc(x))
        if self.tsa is not None:
            parts.append(self.tsa(x, mask))
        return self.fuse(_masked(torch.cat(parts, dim=1), mask)) + x


class PointwiseBaseline(nn.Module):
    """The paper's ablation baseline: PDC and TSA replaced by one 1x1 Conv1d D -> D, plus the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel_size=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x: (N, D, T) -> (N, D, T); pointwise, so padding cannot leak and `mask` is unused."""
        return self.conv(x) + x


class RTFMNet(nn.Module):
    """MTN -> dropout (snippet features X) -> FC D -> h1 -> h2 -> 1 -> sigmoid (snippet scores).

    The classifier holds the FC layers; `forward` applies the sigmoid in float32, or float64 in a float64 run.
    """

    def __init__(
        self,
        feature_dim: int,
        *,
        hidden: tuple[int, int] = (512, 128),
        dropout: float = 0.7,
        use_pdc: bool = True,
        use_tsa: bool = True,
    ) -> None:
        super().__init__()
        check_feature_dim(feature_dim, use_pdc=use_pdc, use_tsa=use_tsa)
        self.mtn: nn.Module = (
            MultiScaleTemporalNetwork(feature_dim, use_pdc, use_tsa)
            if use_pdc or use_tsa
            else PointwiseBaseline(feature_dim)
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Sequential(
            nn.Linear(feature_dim, hidden[0]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden[1], 1),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, T, D) sequences; mask: (N, T) bool of real snippets, None when nothing is padded.

        Returns snippet features X (N, T, D) and snippet scores (N, T). Outputs at padded positions
        are meaningless; callers mask them.
        """
        channel_mask = None if mask is None else mask[:, None, :].to(x.dtype)
        features = self.dropout(self.mtn(x.transpose(1, 2), channel_mask).transpose(1, 2))
        logits = self.classifier(features).squeeze(-1)
        # The sigmoid runs in at least float32: under bf16 autocast it would round scores above ~0.996 to 1.
        return features, at_least_float32(logits).sigmoid()


def check_feature_dim(dim: int, *, use_pdc: bool, use_tsa: bool) -> None:
    """Refuse feature dimensions that the enabled branches cannot split into D/4 and D/8 channels."""
    if use_tsa and dim % 8:
        raise ValueError(f"RTFM with TSA needs a feature dimension D divisible by 8, got D={dim}")
    if use_pdc and dim % 4:
        raise ValueError(f"RTFM with PDC needs a feature dimension D divisible by 4, got D={dim}")


def init_weights(model: nn.Module) -> None:
    """Xavier-uniform weights and zero biases on every conv and linear layer (BatchNorm untouched)."""
    for module in model.modules():
        if isinstance(module, nn.Conv1d | nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
