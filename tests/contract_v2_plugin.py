"""A method plugin written against the full method contract, for the contract tests.

It declares everything the simple path lacks, as the methods published after RTFM need: 200 mean-pooled
segments with every crop an independent sample in mixed batches, a cosine learning-rate schedule,
gradient clipping, side inputs (class indices and prompts), test-time smoothing, and a model that is NOT safe on
padded test batches (its global context is the mean over all time steps, padding included). Loaded
through ``VADBENCH_PLUGINS=contract_v2_plugin``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vadbench import hookimpl
from vadbench.api.method import Declarations, Method, TrainBatch, TrainingInput
from vadbench.api.reduction import Reduction

#: What the tests read back: every batch the loss saw (shapes, labels, classes) and the learning rates.
SEEN: dict[str, list] = {"batches": [], "lr": [], "prompts": []}


@dataclass(frozen=True)
class GlobalContextConfig:
    batch_size: int = 6
    steps: int = 100
    lr: float = 1e-2
    hidden: int = 8
    clip: float = 0.5
    segments: int = 200


class GlobalContextNet(nn.Module):
    def __init__(self, feature_dim: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Linear(feature_dim, hidden)
        self.head = nn.Linear(2 * hidden, 1)

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T) scores; the context is the mean over all T rows (padding included)."""
        embedded = torch.relu(self.embed(sequences))
        context = embedded.mean(dim=1, keepdim=True).expand_as(embedded)
        return torch.sigmoid(self.head(torch.cat([embedded, context], dim=-1))).squeeze(-1)


class GlobalContext(Method):
    """Contract-test method: independent crops, 200 segments, cosine schedule, clipping, unsafe padding."""

    Config = GlobalContextConfig
    config: GlobalContextConfig
    def declarations(self) -> Declarations:
        return Declarations(
            training_input=TrainingInput(Reduction("mean", self.config.segments), crops="independent", batch="mixed"),
            padded_scoring="alone",
            stackable=False,
            side_inputs=frozenset({"classes", "prompts"}),
            grad_clip=self.config.clip,
            postprocess=self.postprocess,
        )

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        return GlobalContextNet(feature_dim, self.config.hidden)

    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        SEEN["batches"].append((tuple(batch.features.shape), batch.labels.tolist(), batch.classes.tolist(),
                                batch.lengths.tolist()))
        SEEN["prompts"].append(batch.prompts.clone())
        scores = model(batch.features)
        video = scores.topk(3, dim=1).values.mean(dim=1)
        bce = nn.functional.binary_cross_entropy(video, batch.labels)
        return {"loss": bce, "bce": bce.detach()}

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, crops, steps, dim = features.shape
        per_crop = model(features.reshape(batch * crops, steps, dim))
        return per_crop.reshape(batch, crops, steps).mean(dim=1)

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=self.config.lr)

    def scheduler(self, optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        return _RecordingCosine(optimizer, T_max=steps)

    def postprocess(self, scores: np.ndarray) -> np.ndarray:
        """A 3-snippet moving average (edges padded with their own value)."""
        padded = np.pad(scores, 1, mode="edge")
        return (padded[:-2] + padded[1:-1] + padded[2:]) / 3


class _RecordingCosine(torch.optim.lr_scheduler.CosineAnnealingLR):
    def step(self, epoch: int | None = None) -> None:
        SEEN["lr"].append(self.optimizer.param_groups[0]["lr"])
        super().step(epoch)


@hookimpl
def vadbench_register_methods(register: Callable[..., None]) -> None:
    register("global-context", GlobalContext)
