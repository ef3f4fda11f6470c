"""The MGFN network: feature amplification, Glance and Focus stages, snippet classifier.

Shapes inside are (N, channels, T) with N = videos x crops; the network takes (N, T, D) snippet features
and returns the (N, T, dim3) features after the final LayerNorm and the (N, T) sigmoid scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vadbench.methods._shared.blocks import by_row_blocks

#: The block types of a stage: Glance (global self-attention over time) or Focus (local temporal mixing).
BLOCK_TYPES = ("glance", "focus")


class ChannelNorm(nn.Module):
    """Normalisation over the channel axis of (N, C, T): (x - mean) / (std + eps) * weight + bias.

    The variance is biased and eps is added to the standard deviation (not under the root), as MGFN does.
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        std = (x - mean).square().mean(dim=1, keepdim=True).sqrt()
        return (x - mean) / (std + self.eps) * self.weight[:, None] + self.bias[:, None]


class GlanceBlock(nn.Module):
    """Channel norm, multi-head softmax self-attention over all T snippets, 1x1 output projection.

    The (T, T) weights are built a block of query rows at a time (`by_row_blocks`).
    """

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.norm = ChannelNorm(dim)
        self.qkv = nn.Conv1d(dim, 3 * heads * head_dim, 1, bias=False)
        self.out = nn.Conv1d(heads * head_dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, steps = x.shape
        # (N, 3 * H * Dh, T) -> three (N, H, T, Dh); channel h * Dh + d of each third belongs to head h.
        query, key, value = (
            part.reshape(n, self.heads, self.head_dim, steps).transpose(2, 3)
            for part in self.qkv(self.norm(x)).chunk(3, dim=1)
        )
        query = query * self.head_dim**-0.5

        def mixed_rows(rows: slice) -> torch.Tensor:
            return (query[:, :, rows] @ key.transpose(2, 3)).softmax(dim=-1) @ value

        # A block of query rows at a time: the (T, T) weights of a long test video never exist at once.
        mixed = by_row_blocks(mixed_rows, steps, per_row=n * self.heads * steps, dim=2)
        return self.out(mixed.transpose(2, 3).reshape(n, self.heads * self.head_dim, steps))


class FocusBlock(nn.Module):
    """BatchNorm, 1x1 value projection, a per-head temporal kernel, 1x1 output projection.

    Value channel j belongs to head j mod H, and every channel of a head is convolved with that head's
    one kernel (and bias), as the public code's regrouping does.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, kernel: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.BatchNorm1d(dim)
        self.value = nn.Conv1d(dim, heads * head_dim, 1, bias=False)
        self.local = nn.Conv1d(heads, heads, kernel, padding=kernel // 2, groups=heads)
        self.out = nn.Conv1d(heads * head_dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = self.value(self.norm(x))
        n, channels, steps = value.shape
        grouped = value.reshape(n * channels // self.heads, self.heads, steps)
        return self.out(self.local(grouped).reshape(n, channels, steps))


class FeedForward(nn.Module):
    """Channel norm, 1x1 expansion, GELU, 1x1 projection."""

    def __init__(self, dim: int, expansion: int) -> None:
        super().__init__()
        self.norm = ChannelNorm(dim)
        self.expand = nn.Conv1d(dim, dim * expansion, 1)
        self.project = nn.Conv1d(dim * expansion, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(F.gelu(self.expand(self.norm(x))))


class Layer(nn.Module):
    """x + conv3(x), then x + block(x), then x + feed_forward(x)."""

    def __init__(self, block: nn.Module, dim: int, expansion: int) -> None:
        super().__init__()
        self.local = nn.Conv1d(dim, dim, 3, padding=1)
        self.block = block
        self.feed_forward = FeedForward(dim, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.local(x)
        x = x + self.block(x)
        return x + self.feed_forward(x)


class Stage(nn.Module):
    def __init__(self, kind: str, dim: int, depth: int, head_dim: int, expansion: int, kernel: int) -> None:
        super().__init__()
        heads = dim // head_dim
        if kind not in BLOCK_TYPES:
            raise ValueError(f"block type must be one of {', '.join(BLOCK_TYPES)}, got {kind!r}")
        if heads < 1:
            raise ValueError(f"a stage of width {dim} has no head of {head_dim} channels")

        def block() -> nn.Module:
            if kind == "glance":
                return GlanceBlock(dim, heads, head_dim)
            return FocusBlock(dim, heads, head_dim, kernel)

        self.layers = nn.ModuleList(Layer(block(), dim, expansion) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class Transition(nn.Module):
    """Channel norm and a 1x1 convolution to the next stage's width."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.norm = ChannelNorm(dim)
        self.project = nn.Conv1d(dim, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.norm(x))


class MGFNNet(nn.Module):
    """MGFN on (N, T, D) snippet features; the feature magnitude ||x_t||_2 is computed here from them."""

    def __init__(
        self,
        feature_dim: int,
        dims: Sequence[int] = (64, 128, 1024),
        depths: Sequence[int] = (3, 3, 2),
        blocks: Sequence[str] = ("glance", "focus", "focus"),
        head_dim: int = 64,
        expansion: int = 4,
        kernel: int = 5,
        magnitude_ratio: float = 0.1,
    ) -> None:
        super().__init__()
        if not len(dims) == len(depths) == len(blocks):
            raise ValueError("dims, depths and blocks need one entry per stage")
        self.magnitude_ratio = magnitude_ratio
        self.embed = nn.Conv1d(feature_dim, dims[0], 3, padding=1)
        self.embed_magnitude = nn.Conv1d(1, dims[0], 3, padding=1)
        self.stages = nn.ModuleList(
            Stage(kind, dim, depth, head_dim, expansion, kernel)
            for kind, dim, depth in zip(blocks, dims, depths, strict=True)
        )
        self.transitions = nn.ModuleList(Transition(dims[i], dims[i + 1]) for i in range(len(dims) - 1))
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = features.transpose(1, 2)  # (N, D, T)
        magnitude = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        x = self.embed(x) + self.magnitude_ratio * self.embed_magnitude(magnitude)
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index < len(self.transitions):
                x = self.transitions[index](x)
        snippet_features = self.norm(x.transpose(1, 2))
        return snippet_features, torch.sigmoid(self.head(snippet_features)).squeeze(-1)
