"""An example third-party vadbench method: rank videos by their top-k embedding magnitudes.

A two-layer MLP embeds each snippet; the embedding norm is the anomaly evidence. Training asks
the mean of the k largest norms of an abnormal video to exceed that of a normal video by a margin
(a hinge), and keeps normal norms small. It is deliberately small: a template for your own method.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from vadbench import hookimpl
from vadbench.api.method import Declarations, Method, TrainBatch, valid_mask


@dataclass(frozen=True)
class MagnitudeMLPConfig:
    """All hyper-parameters in one frozen dataclass: vadbench records it with every result."""

    hidden: int = 64
    k: int = 3
    margin: float = 1.0
    normal_weight: float = 0.1
    lr: float = 1e-3
    batch_size: int = 16
    steps: int = 500

    def __post_init__(self) -> None:
        if self.k < 1 or self.hidden < 1 or self.batch_size < 1 or self.steps < 1:
            raise ValueError("k, hidden, batch_size and steps must be at least 1")
        if self.lr <= 0 or self.margin <= 0:
            raise ValueError("lr and margin must be positive")


class MagnitudeMLP(Method):
    """Example plugin: MLP snippet embeddings, hinge on top-k mean embedding magnitudes."""

    Config = MagnitudeMLPConfig
    config: MagnitudeMLPConfig

    def declarations(self) -> Declarations:
        """Everything but one declaration keeps its default (RTFM's 32 mean-pooled segments with crops kept
        together, balanced batches drawn afresh each step, padded scoring); the one hook stores each test
        snippet's embedding norm with its score, for vadbench's magnitude plots."""
        return Declarations(score_with_magnitudes=self.score_with_magnitudes)

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(feature_dim, self.config.hidden), nn.ReLU(), nn.Linear(self.config.hidden, self.config.hidden)
        )

    def embedding_norms(self, model: nn.Module, features: torch.Tensor) -> torch.Tensor:
        """Embedding norm per snippet, averaged over crops: (B, C, T, D) -> (B, T)."""
        return model(features).norm(dim=-1).mean(dim=1)

    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        # A balanced batch (the default TrainingInput): normal videos first, each (C, S, D), crops before time
        # as in the test videos that score gets.
        normal_norms = self.embedding_norms(model, batch.normal)
        abnormal_norms = self.embedding_norms(model, batch.abnormal)
        k = min(self.config.k, normal_norms.shape[1])
        top_normal = normal_norms.topk(k, dim=1).values.mean(dim=1)
        top_abnormal = abnormal_norms.topk(k, dim=1).values.mean(dim=1)
        ranking = torch.relu(self.config.margin - top_abnormal + top_normal).mean()
        quiet_normals = self.config.normal_weight * normal_norms.mean()
        return {"loss": ranking + quiet_normals, "ranking": ranking.detach(), "normal": quiet_normals.detach()}

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.score_with_magnitudes(model, features, lengths)[0]

    def score_with_magnitudes(
        self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and embedding norms (B, T) of zero-padded videos (B, C, T, D), zero at padding. Each snippet
        is scored alone, so padding cannot leak into real snippets."""
        real = valid_mask(lengths, features.shape[2])
        norms = self.embedding_norms(model, features)
        return (norms / (1 + norms)) * real, norms * real

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=self.config.lr)


@hookimpl
def vadbench_register_methods(register):
    register("magnitude-mlp", MagnitudeMLP)
