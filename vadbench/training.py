"""The training loop shared by every method: balanced batches drawn on the device, no DataLoader.

The pooled training set is moved to the device once; each step draws `batch` normal and `batch`
abnormal videos with a seeded device generator, so the step itself never waits on the host. Loss
terms are read back only every `log_every` steps, which is also where a non-finite loss is caught.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from vadbench.method import Method
from vadbench.types import TrainSet


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step."""


@dataclass
class TrainingLog:
    """Loss terms read back every `log_every` steps: one dict per logged step."""

    steps: list[int] = field(default_factory=list)
    terms: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class BalancedSampler:
    """Draws equal numbers of normal and abnormal training videos per step, on the device.

    The per-class batch is the method's batch size, clamped to the smaller class (a weak UCSD split
    has 6 abnormal training clips), so every batch is still balanced.
    """

    normal: torch.Tensor
    abnormal: torch.Tensor
    batch: int
    generator: torch.Generator

    @classmethod
    def create(cls, train: TrainSet, features: torch.Tensor, batch: int, seed: int) -> BalancedSampler:
        labels = torch.as_tensor(train.labels, device=features.device)
        normal = features[labels == 0]
        abnormal = features[labels == 1]
        if len(normal) == 0 or len(abnormal) == 0:
            raise ValueError("training needs at least one normal and one abnormal video")
        generator = torch.Generator(device=features.device)
        generator.manual_seed(seed)
        return cls(normal, abnormal, min(batch, len(normal), len(abnormal)), generator)

    def draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(normal, abnormal) batches of shape (batch, C, S, D), drawn without replacement."""
        return self._pick(self.normal), self._pick(self.abnormal)

    def _pick(self, videos: torch.Tensor) -> torch.Tensor:
        order = torch.randperm(len(videos), generator=self.generator, device=videos.device)
        return videos[order[: self.batch]]


def train(
    method: Method,
    model: nn.Module,
    sampler: BalancedSampler,
    steps: int,
    *,
    log_every: int = 50,
    progress: bool = True,
    description: str = "training",
    on_step: Callable[[int], None] | None = None,
) -> TrainingLog:
    """Run `steps` optimisation steps of `method` on `model`; returns the logged loss terms.

    `on_step(step)` is called after each step (1-based): model-selection protocols hook in there.
    """
    optimizer = method.optimizer(model.parameters())
    log = TrainingLog()
    model.train()
    with tqdm(total=steps, desc=description, disable=not progress, leave=False, unit="step") as bar:
        for step in range(1, steps + 1):
            normal, abnormal = sampler.draw()
            terms = method.loss(model, normal, abnormal)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimizer.step()
            if step % log_every == 0 or step == steps:
                values = {name: float(value.detach()) for name, value in terms.items()}
                if not all(map(_finite, values.values())):
                    raise TrainingDiverged(f"loss is not finite at step {step}: {values}")
                log.steps.append(step)
                log.terms.append(values)
                bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)
            bar.update(1)
            if on_step is not None:
                on_step(step)
    return log


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")
