"""BN-WVAD's network: a temporal conv embedding, UR-DMU's global + fixed-local transformer layer (the
same authors' code, `vadbench.methods._shared.transformer`; without dropout, as BN-WVAD builds it) and
the BatchNorm "normal head" whose running statistics are the detector (see `vadbench.methods.bn_wvad`)."""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from vadbench.methods._shared.transformer import TransformerLayer


class NormalHead(nn.Module):
    """conv1 -> (BN1, ReLU) -> conv2 -> (BN2, ReLU) -> conv3 -> sigmoid on (B, C, T).

    Returns the pre-BN features of the two BN layers and the (B, T) scores; the BN layers' running
    statistics (updated by the forward pass in training mode) are the normal-feature anchors.
    """

    def __init__(self, channels: int, ratios: tuple[int, int], kernel_sizes: tuple[int, int, int]) -> None:
        super().__init__()
        widths = (channels, channels // ratios[0], channels // ratios[1])
        self.conv1 = nn.Conv1d(widths[0], widths[1], kernel_sizes[0], padding=kernel_sizes[0] // 2)
        self.bn1 = nn.BatchNorm1d(widths[1])
        self.conv2 = nn.Conv1d(widths[1], widths[2], kernel_sizes[1], padding=kernel_sizes[1] // 2)
        self.bn2 = nn.BatchNorm1d(widths[2])
        self.conv3 = nn.Conv1d(widths[2], 1, kernel_sizes[2], padding=kernel_sizes[2] // 2)

    @property
    def norms(self) -> tuple[nn.BatchNorm1d, nn.BatchNorm1d]:
        return self.bn1, self.bn2

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        first = self.conv1(x)
        second = self.conv2(torch.relu(self.bn1(first)))
        scores = torch.sigmoid(self.conv3(torch.relu(self.bn2(second))))
        return [first, second], scores[:, 0]


class BNWVADNet(nn.Module):
    """(B, T, D) sequences -> pre-BN head features [(B, C1, T), (B, C2, T)] and scores (B, T)."""

    def __init__(
        self,
        feature_dim: int,
        *,
        width: int = 512,
        depth: int = 2,
        heads: int = 4,
        head_dim: int = 128,
        mlp_dim: int = 512,
        ratios: tuple[int, int] = (16, 32),
        kernel_sizes: tuple[int, int, int] = (1, 1, 1),
    ) -> None:
        super().__init__()
        self.embedding = nn.Conv1d(feature_dim, width, kernel_size=3, padding=1)
        self.layers = nn.ModuleList(TransformerLayer(width, heads, head_dim, mlp_dim, 0.0) for _ in range(depth))
        self.head = NormalHead(width, ratios, kernel_sizes)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = torch.relu(self.embedding(x.transpose(1, 2))).transpose(1, 2)
        for layer in self.layers:
            x = layer(x)
        return self.head(x.transpose(1, 2))

    def anchors(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(running mean, running var) of each head BN layer: the normal anchors and their variances."""
        return [(cast(torch.Tensor, norm.running_mean), cast(torch.Tensor, norm.running_var))
                for norm in self.head.norms]


def mahalanobis(features: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """sqrt(sum_c (f_c - mean_c)^2 / var_c) of (B, C, T) features -> (B, T) (no eps, as the public code)."""
    return ((features - mean[None, :, None]).square() / var[None, :, None]).sum(dim=1).sqrt()
