"""PEL4VAD's network: temporal context aggregation (TCA), a 1x1-conv encoder and a causal classifier.

Pu, Wu, Yang, Wang: "Learning Prompt-Enhanced Context Features for Weakly-Supervised Video Anomaly
Detection", IEEE TIP 2024. Written from the description of the public code (yujiangpu20/PEL4VAD at
eeb31f4), single attention head as every published configuration uses.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from vadbench.methods._shared.blocks import ALL_ROWS, by_row_blocks

#: Filler of the attention logits outside the local window (the public code's value).
OUTSIDE_WINDOW = -1e9


def distance_matrix(steps: int, like: torch.Tensor, rows: slice = ALL_ROWS) -> torch.Tensor:
    """(R, T) |i - j| for the query rows i in `rows` (all T by default), on the device and in the precision
    of `like`."""
    positions = torch.arange(steps, device=like.device, dtype=like.dtype)
    return (positions[rows, None] - positions[None, :]).abs()


def window_mask(steps: int, window: int, device: torch.device | None = None, rows: slice = ALL_ROWS) -> torch.Tensor:
    """(R, T) boolean for the query rows j in `rows` (all T by default): row j is True at columns
    clamp(j - window // 2 + k, 0, T - 1), k = 0 .. window - 1."""
    chosen = torch.arange(steps, device=device)[rows, None]
    columns = (chosen - window // 2 + torch.arange(window, device=device)[None, :]).clamp(0, steps - 1)
    mask = torch.zeros(len(chosen), steps, dtype=torch.bool, device=device)
    return mask.scatter(1, columns, True)


class SignedSqrt(torch.autograd.Function):
    """The public code's power normalisation sqrt(ReLU(x)) - sqrt(ReLU(-x)) as sign(x) sqrt(|x|), with the
    code's gradient 1 / (2 sqrt(|x|)), and 0 where x is exactly 0 (where the code's ReLU stops the infinite
    derivative of the square root): values and gradients bit for bit, a quarter of the time forward and
    backward (fewer passes over the tensor)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        root = x.abs().sqrt()
        ctx.save_for_backward(root)
        return root.copysign(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (root,) = ctx.saved_tensors
        return (grad / (2 * root)).masked_fill_(root == 0, 0)


def signed_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(ReLU(x)) - sqrt(ReLU(-x)), its gradient as the public code's (`SignedSqrt`)."""
    return cast(torch.Tensor, SignedSqrt.apply(x))


class DistancePrior(nn.Module):
    """adj[i, j] = exp(-| w |i - j|^2 - b |) with learnable scalars w (init gamma) and b (init beta)."""

    def __init__(self, gamma: float, beta: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.full((1,), float(gamma)))
        self.b = nn.Parameter(torch.full((1,), float(beta)))

    def forward(self, steps: int, rows: slice = ALL_ROWS) -> torch.Tensor:
        """The rows `rows` of the (T, T) prior (all of them by default)."""
        distance = distance_matrix(steps, self.w, rows)
        return torch.exp(-(self.w * distance.square() - self.b).abs())


class ContextAttention(nn.Module):
    """TCA: sigma(alpha) * global + (1 - sigma(alpha)) * local attention, the distance prior added to both
    logit maps; optional power + L2 normalisation (along time, as the code does) before the output layer.
    The two attention maps are mixed before their one product with the values (the code multiplies each
    with them and mixes the results: equal up to rounding, one T x T product less forward and backward).

    The (T, T) logits are built a block of query rows at a time (`by_row_blocks`): a row's two softmaxes
    need only that row, so a long test video costs memory linear in its length.
    """

    def __init__(self, feature_dim: int, hidden: int, normalise: bool) -> None:
        super().__init__()
        self.query = nn.Linear(feature_dim, hidden)
        self.key = nn.Linear(feature_dim, hidden)
        self.value = nn.Linear(feature_dim, hidden)
        self.out = nn.Linear(hidden, feature_dim)
        self.alpha = nn.Parameter(torch.tensor(0.0))
        self.scale = 1 / math.sqrt(hidden)
        self.normalise = normalise

    def forward(self, x: torch.Tensor, prior: DistancePrior, window: int) -> torch.Tensor:
        """x (B, T, D) -> (B, T, D), with the distance `prior` and a local window of `window` snippets."""
        q, k, v = self.query(x), self.key(x), self.value(x)
        steps = x.shape[1]

        def mixed_rows(rows: slice) -> torch.Tensor:
            logits = q[:, rows] @ k.transpose(1, 2) * self.scale + prior(steps, rows)
            local = window_mask(steps, window, x.device, rows)
            gate = torch.sigmoid(self.alpha)
            weights = gate * logits.softmax(dim=-1) + (1 - gate) * logits.masked_fill(~local, OUTSIDE_WINDOW).softmax(
                dim=-1)
            return weights @ v

        mixed = by_row_blocks(mixed_rows, steps, per_row=len(x) * steps, dim=1)
        if self.normalise:
            mixed = signed_sqrt(mixed)
            mixed = F.normalize(mixed, dim=1)  # dim 1 of (B, T, H): the time axis, as in the public code
        return self.out(mixed)


class PEL4VADNet(nn.Module):
    """(B, T, D) snippets -> (scores (B, T) in [0, 1], video features h (B, prompt_dim, T)).

    x + TCA(x) -> LayerNorm -> 1x1 conv to prompt_dim (h) -> GELU/dropout -> 1x1 conv to out_dim ->
    GELU/dropout -> causal conv of kernel t_step (left zero padding) -> sigmoid. Weights of every
    Linear/Conv layer Xavier-uniform, biases PyTorch's default.
    """

    def __init__(
        self, feature_dim: int, *, hidden: int, out_dim: int, prompt_dim: int, window: int, gamma: float,
        beta: float, normalise: bool, t_step: int, temperature: float, dropout: float,
    ) -> None:
        super().__init__()
        self.window = window
        self.attention = ContextAttention(feature_dim, hidden, normalise)
        self.distance = DistancePrior(gamma, beta)
        self.norm = nn.LayerNorm(feature_dim)
        self.linear1 = nn.Conv1d(feature_dim, prompt_dim, kernel_size=1)
        self.linear2 = nn.Conv1d(prompt_dim, out_dim, kernel_size=1)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.classifier = nn.Conv1d(out_dim, 1, kernel_size=t_step)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature), dtype=torch.float32))
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Conv1d):
                nn.init.xavier_uniform_(module.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.norm(x + self.attention(x, self.distance, self.window)).transpose(1, 2)
        video = self.dropout1(F.gelu(self.linear1(x)))
        embedded = self.dropout2(F.gelu(self.linear2(video)))
        return torch.sigmoid(causal_classifier(self.classifier, embedded)), video


def causal_classifier(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """`conv` (one output channel, kernel K) over x (B, C, T) zero-padded by K - 1 steps in front -> (B, T):
    y_t = bias + sum_k w_k . x_(t - K + 1 + k), as the public code's padded Conv1d. The products with the K
    kernel columns are one batched matrix product (B, K, T), whose K rows are then summed shifted: 1/8 of
    the convolution's time forward and backward on one CPU thread at PEL4VAD's widths (300 channels, K 9),
    equal up to rounding."""
    kernel, steps = conv.kernel_size[0], x.shape[2]
    weights = conv.weight[0].T.expand(len(x), -1, -1)  # (B, K, C)
    taps = F.pad(torch.bmm(weights, x), (kernel - 1, 0))  # (B, K, K - 1 + T): taps[k, t + K - 1] = w_k . x_t
    shifted = torch.stack([taps[:, k, k : k + steps] for k in range(kernel)]).sum(dim=0)
    return shifted if conv.bias is None else shifted + conv.bias
