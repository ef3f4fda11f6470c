"""The transformer layer of UR-DMU's public code, which BN-WVAD's public code (the same authors') reuses:
pre-norm layers of global softmax attention beside a fixed local attention, and a feed-forward block.

Shapes: sequences (N, T, W). Per head, the global part is softmax(Q K^T / sqrt(d)) V and the local part
G U with the fixed (T, T) matrix G of `local_attention`; both are built a block of query rows at a time
(`vadbench.methods._shared.blocks`), so a long test video costs memory linear in its length.
"""

from __future__ import annotations

import torch
from torch import nn

from vadbench.methods._shared.blocks import ALL_ROWS, by_row_blocks


def local_weights(
    length: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32, rows: slice = ALL_ROWS
) -> torch.Tensor:
    """(R, T) exp(-|i - j| / e) for the rows i in `rows` (all T by default), from 1-based positions, with
    e = exp(1) computed in `dtype`."""
    positions = torch.arange(1, length + 1, dtype=dtype, device=device)
    distance = (positions[None, :] - positions[rows, None]).abs()
    return torch.exp(-distance / torch.exp(torch.tensor(1.0, dtype=dtype, device=device)))


def local_sums(length: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(T,) s_j = sum_k exp(-|j - k| / e): the row sums of `local_weights`, a block of rows at a time."""
    return by_row_blocks(
        lambda rows: local_weights(length, device, dtype, rows).sum(dim=-1), length, per_row=length, dim=0
    )


def local_attention(
    length: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32, rows: slice = ALL_ROWS,
    sums: torch.Tensor | None = None,
) -> torch.Tensor:
    """The rows `rows` (all T by default) of the fixed local attention matrix G (T, T):
    G[i, j] = exp(-|i - j| / e) / s_j, s_j = sum_k exp(-|j - k| / e) (`sums`, from `local_sums` if not given).

    Column-normalised, as the public code's broadcasting divides (its rows near the ends do not sum
    to 1). Built in `dtype` from 1-based positions, with e = exp(1) computed in `dtype`: the public code
    builds it in torch's default dtype, i.e. in its working precision (float32, or float64 when that is
    the default).
    """
    if sums is None:
        sums = local_sums(length, device, dtype)
    return local_weights(length, device, dtype, rows) / sums


class GlobalLocalAttention(nn.Module):
    """Per head: [softmax(Q K^T / sqrt(d)) V || G U] (2 d), heads concatenated, Linear -> width, dropout."""

    def __init__(self, width: int, heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.qkvu = nn.Linear(width, 4 * inner, bias=False)
        self.out = nn.Linear(2 * inner, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        count, length, _ = x.shape
        # (N, T, 4 h d) -> four (N, h, T, d): channel blocks Q, K, V, U, each split head by head.
        q, k, v, u = self.qkvu(x).reshape(count, length, 4, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        # G is built in the parameters' precision (float32 or float64), then cast to U's (bf16 under autocast).
        dtype = self.qkvu.weight.dtype
        sums = local_sums(length, x.device, dtype)

        def heads_rows(rows: slice) -> torch.Tensor:
            attention = torch.softmax(torch.matmul(q[:, :, rows], k.transpose(-1, -2)) * self.head_dim**-0.5, dim=-1)
            local = local_attention(length, x.device, dtype, rows, sums).to(u.dtype)
            return torch.cat([torch.matmul(attention, v), torch.matmul(local, u)], dim=-1)

        # A block of query rows at a time: the (T, T) weights of a long test video never exist at once.
        heads = by_row_blocks(heads_rows, length, per_row=count * self.heads * length, dim=2)
        return self.dropout(self.out(heads.transpose(1, 2).reshape(count, length, -1)))


#: The public code's names (translayer.py: ``PreNorm(Attention)``, ``PreNorm(FeedForward)`` in a ModuleList) of a
#: layer's tensors, as prefixes -> `TransformerLayer`'s.
PUBLIC_LAYER_NAMES = {
    "0.norm.": "attention_norm.",
    "0.fn.to_qkv.": "attention.qkvu.",
    "0.fn.to_out.0.": "attention.out.",
    "1.norm.": "feedforward_norm.",
    "1.fn.net.0.": "feedforward.0.",
    "1.fn.net.3.": "feedforward.3.",
}


def public_layer_prefixes(public: str, ours: str) -> dict[str, str]:
    """Renaming prefixes (`vadbench.methods._shared.checkpoints.renamed`) from the public code's layer list
    `public` (``selfatt.layers``) to the ModuleList of `TransformerLayer` at `ours`, layer by layer."""
    return {f"{public}.{{n}}.{theirs}": f"{ours}.{{n}}.{mine}" for theirs, mine in PUBLIC_LAYER_NAMES.items()}


class TransformerLayer(nn.Module):
    """Pre-norm layer: x + Attn(LN(x)), then x + FF(LN(x)); FF = Linear, GELU, Dropout, Linear, Dropout."""

    def __init__(self, width: int, heads: int, head_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(width)
        self.attention = GlobalLocalAttention(width, heads, head_dim, dropout)
        self.feedforward_norm = nn.LayerNorm(width)
        self.feedforward = nn.Sequential(
            nn.Linear(width, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, width), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention(self.attention_norm(x)) + x
        return self.feedforward(self.feedforward_norm(x)) + x
