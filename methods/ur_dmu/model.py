"""The UR-DMU network: temporal embedding, global/local transformer, dual memory units, VAE head, classifier.

Zhou, Yu, Yang: "Dual Memory Units with Uncertainty Regulation for Weakly Supervised Video Anomaly
Detection", AAAI 2023 (arXiv 2302.05160). Structure as in the public code (henrryzh1/UR-DMU at 40cfdf5:
model.py, translayer.py, memory.py); written for vadbench, with the input width taken from the data. The
transformer layer (translayer.py), which BN-WVAD reuses, is `vadbench.methods._shared.transformer`.

Shapes: sequences (N, T, D) of snippet features, one crop per sequence. The network has two forward
branches, as the public code's ``flag``:

- `URDMUNet.forward` (the test branch): scores (N, T) in [0, 1]; no sampling, no batch coupling.
- `URDMUNet.train_forward` (the training branch): needs a balanced batch, normal sequences first (the
  batch is split in half), samples the VAE noise with ``torch.randn_like`` and returns every tensor the
  loss needs (`TrainOutputs`).

Dropout follows ``nn.Module.train()``/``eval()`` in both branches, independently of the branch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from vadbench.methods._shared.transformer import TransformerLayer


def snippet_k(length: int) -> int:
    """Snippets selected per video by every top-k over time: T // 16 + 1 (13 at T = 200)."""
    return length // 16 + 1


class TemporalEmbedding(nn.Module):
    """Conv1d(D -> width, kernel 3, padding 1) over time, then ReLU: (N, T, D) -> (N, T, width)."""

    def __init__(self, feature_dim: int, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(feature_dim, width, kernel_size=3, padding=1)

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(sequences.transpose(1, 2))).transpose(1, 2)


class MemoryUnit(nn.Module):
    """A learnable bank of `slots` items M (slots, width), initialised U(-1/sqrt(width), 1/sqrt(width)).

    For X (N, T, width): S = sigmoid(X M^T / sqrt(width)) (N, T, slots); returns the temporal score
    (mean of the slots // 16 + 1 largest entries of S per snippet, (N, T)) and the read-out S M (N, T, width).
    """

    def __init__(self, slots: int, width: int) -> None:
        super().__init__()
        self.items = nn.Parameter(torch.empty(slots, width))
        bound = 1.0 / math.sqrt(width)
        nn.init.uniform_(self.items, -bound, bound)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        slots, width = self.items.shape
        attention = torch.sigmoid(torch.matmul(x, self.items.t()) / width**0.5)
        score = attention.topk(slots // 16 + 1, dim=-1).values.mean(dim=-1)
        return score, torch.matmul(attention, self.items)


class TrainOutputs(NamedTuple):
    """What the training branch gives the loss (B = half the batch, T snippets, W = width).

    scores (2B, T): snippet scores; abnormal_att (B, T): abnormal memory on abnormal videos (A_att);
    normal_att (B, T): normal memory on normal videos (N_att); normal_on_abnormal (B, T): normal memory
    on abnormal videos (N_Aatt); abnormal_on_normal (B, T): abnormal memory on normal videos (A_Natt);
    anchor, positive, negative (B, W): top-k means of the transformer output (triplet inputs, not yet
    normalised); mu, logvar (B, T, W): the VAE encoding of the normal memory's read-out of normal videos;
    anchor_sample, negative_mu (B, W): top-k means of the sampled normal and the mu-encoded abnormal read-outs.
    """

    scores: torch.Tensor
    abnormal_att: torch.Tensor
    normal_att: torch.Tensor
    normal_on_abnormal: torch.Tensor
    abnormal_on_normal: torch.Tensor
    anchor: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    anchor_sample: torch.Tensor
    negative_mu: torch.Tensor


def top_k_mean(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Mean of x (N, T, W) over the time indices `index` (N, k): (N, W)."""
    return x.gather(1, index[:, :, None].expand(-1, -1, x.shape[-1])).mean(dim=1)


class URDMUNet(nn.Module):
    """UR-DMU for sequences of `feature_dim`-d snippet features (the public code: feature_dim 1024)."""

    def __init__(
        self,
        feature_dim: int,
        *,
        width: int = 512,
        depth: int = 2,
        heads: int = 4,
        head_dim: int = 128,
        mlp_dim: int = 512,
        dropout: float = 0.5,
        slots: int = 60,
        head_hidden: int = 128,
    ) -> None:
        super().__init__()
        self.embedding = TemporalEmbedding(feature_dim, width)
        self.transformer = nn.ModuleList(
            TransformerLayer(width, heads, head_dim, mlp_dim, dropout) for _ in range(depth)
        )
        self.abnormal_memory = MemoryUnit(slots, width)
        self.normal_memory = MemoryUnit(slots, width)
        self.encoder_mu = nn.Linear(width, width)
        self.encoder_var = nn.Linear(width, width)
        self.classifier = nn.Sequential(nn.Linear(2 * width, head_hidden), nn.ReLU(), nn.Linear(head_hidden, 1))

    def encode(self, sequences: torch.Tensor) -> torch.Tensor:
        """Embedding and transformer: (N, T, D) -> (N, T, width)."""
        x = self.embedding(sequences)
        for layer in self.transformer:
            x = layer(x)
        return x

    def classify(self, x: torch.Tensor, augment: torch.Tensor) -> torch.Tensor:
        """Scores sigmoid(MLP([x || augment])) (N, T)."""
        return torch.sigmoid(self.classifier(torch.cat([x, augment], dim=-1))).squeeze(-1)

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """Test branch: scores (N, T) from [X || enc_mu(read-out A) + enc_mu(read-out N)]."""
        x = self.encode(sequences)
        _, abnormal_readout = self.abnormal_memory(x)
        _, normal_readout = self.normal_memory(x)
        return self.classify(x, self.encoder_mu(abnormal_readout) + self.encoder_mu(normal_readout))

    def train_forward(self, sequences: torch.Tensor) -> TrainOutputs:
        """Training branch on a balanced batch (2B, T, D), normal first (see `TrainOutputs`)."""
        x = self.encode(sequences)
        half = len(x) // 2
        normal, abnormal = x[:half], x[half:]
        abnormal_att, abnormal_readout = self.abnormal_memory(abnormal)
        normal_on_abnormal, normal_readout_of_abnormal = self.normal_memory(abnormal)
        abnormal_on_normal, abnormal_readout_of_normal = self.abnormal_memory(normal)
        normal_att, normal_readout = self.normal_memory(normal)

        k = snippet_k(x.shape[1])
        abnormal_index = abnormal_att.topk(k, dim=-1).indices
        normal_index = normal_att.topk(k, dim=-1).indices
        positive_index = normal_on_abnormal.topk(k, dim=-1).indices

        mu = self.encoder_mu(normal_readout)
        logvar = self.encoder_var(normal_readout)
        std = torch.exp(logvar).sqrt()
        sample = mu + torch.randn_like(std) * std
        abnormal_mu = self.encoder_mu(abnormal_readout)

        augment = torch.cat([
            sample + self.encoder_mu(abnormal_readout_of_normal),
            abnormal_mu + self.encoder_mu(normal_readout_of_abnormal),
        ])
        return TrainOutputs(
            scores=self.classify(x, augment),
            abnormal_att=abnormal_att,
            normal_att=normal_att,
            normal_on_abnormal=normal_on_abnormal,
            abnormal_on_normal=abnormal_on_normal,
            anchor=top_k_mean(normal, normal_index),
            positive=top_k_mean(abnormal, positive_index),
            negative=top_k_mean(abnormal, abnormal_index),
            mu=mu,
            logvar=logvar,
            anchor_sample=top_k_mean(sample, normal_index),
            negative_mu=top_k_mean(abnormal_mu, abnormal_index),
        )
