"""Sultani et al.'s MIL ranking network: a 3-layer MLP scoring each segment independently.

Sultani, Chen, Shah: "Real-world Anomaly Detection in Surveillance Videos", CVPR 2018.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MILNet(nn.Module):
    """FC D -> h1 -> ReLU -> dropout -> FC h1 -> h2 (linear) -> dropout -> FC h2 -> 1 -> sigmoid.

    With `l2_normalize` each segment feature is scaled to unit L2 norm first, as Sultani et al. do
    with C3D features; it is part of the network so that training and scoring cannot disagree.
    The sigmoid is applied in float32 by `forward`.
    """

    def __init__(
        self,
        feature_dim: int,
        *,
        hidden: tuple[int, int] = (512, 32),
        dropout: float = 0.6,
        l2_normalize: bool = True,
    ) -> None:
        super().__init__()
        self.l2_normalize = l2_normalize
        self.layers = nn.Sequential(
            nn.Linear(feature_dim, hidden[0]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden[0], hidden[1]),
            nn.Dropout(dropout),
            nn.Linear(hidden[1], 1),
        )
        for module in self.layers:
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)  # Keras' glorot_normal
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., D) segment or snippet features -> (...) scores in [0, 1]."""
        if self.l2_normalize:
            x = F.normalize(x, dim=-1)
        # The sigmoid runs in float32: under bf16 autocast it would round scores above ~0.996 to 1.
        return self.layers(x).squeeze(-1).float().sigmoid()

