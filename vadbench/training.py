"""The training loop shared by every method: balanced batches drawn on the device, no DataLoader.

The pooled training set is moved to the device once; each step draws `batch` normal and `batch`
abnormal videos with a seeded device generator into two preallocated buffers, so the step itself
never waits on the host. Loss terms are read back only every `log_every` steps, which is also where a
non-finite loss is caught. `Acceleration` adds bf16 autocast, torch.compile and (on CUDA) replay of the
whole step as one CUDA graph; the default (fp32, eager) runs the plain step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from vadbench.acceleration import Acceleration, FallBack, compile_function, device_flags
from vadbench.cudagraph import CapturedStep, StepOutputs
from vadbench.method import Method
from vadbench.types import TrainSet


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step."""


@dataclass
class TrainingLog:
    """Loss terms read back every `log_every` steps: one dict per logged step.

    engine: how the steps actually ran (`Acceleration.label`, less whatever fell back to eager).
    """

    steps: list[int] = field(default_factory=list)
    terms: list[dict[str, float]] = field(default_factory=list)
    engine: str = ""

    def curves(self) -> dict[str, Any]:
        """The logged steps and one list of values per loss term, as the run store keeps them."""
        names = self.terms[0] if self.terms else {}
        return {"steps": list(self.steps), "terms": {name: [t[name] for t in self.terms] for name in names}}


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
        labels = torch.tensor(train.labels, device=features.device)  # a copy: cached labels are read-only
        normal = features[labels == 0]
        abnormal = features[labels == 1]
        if len(normal) == 0 or len(abnormal) == 0:
            raise ValueError("training needs at least one normal and one abnormal video")
        generator = torch.Generator(device=features.device)
        generator.manual_seed(seed)
        return cls(normal, abnormal, min(batch, len(normal), len(abnormal)), generator)

    @property
    def device(self) -> torch.device:
        return self.normal.device

    def empty_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Uninitialised (normal, abnormal) buffers of shape (batch, C, S, D) for `draw_into`."""
        shape = (self.batch, *self.normal.shape[1:])
        return self.normal.new_empty(shape), self.abnormal.new_empty(shape)

    def draw_into(self, normal: torch.Tensor, abnormal: torch.Tensor) -> None:
        """Draw the next batches (without replacement within a class) into the given buffers."""
        torch.index_select(self.normal, 0, self._order(len(self.normal)), out=normal)
        torch.index_select(self.abnormal, 0, self._order(len(self.abnormal)), out=abnormal)

    def _order(self, count: int) -> torch.Tensor:
        return torch.randperm(count, generator=self.generator, device=self.device)[: self.batch]


class TrainingStep:
    """One optimisation step per call: draw a batch into static buffers, then loss, backward, update.

    `loss(normal, abnormal)` returns the loss terms; ``terms["loss"]`` is a scalar, or one loss per
    run when several runs are stacked (`vadbench.multirun`), and their sum is minimised. The body
    reads only the buffers, so the same body runs eagerly, compiled, or captured in a CUDA graph.
    """

    def __init__(
        self,
        loss: Callable[[torch.Tensor, torch.Tensor], StepOutputs],
        optimizer: torch.optim.Optimizer,
        buffers: tuple[torch.Tensor, torch.Tensor],
        draw: Callable[[torch.Tensor, torch.Tensor], None],
        acceleration: Acceleration,
    ) -> None:
        self.normal, self.abnormal = buffers
        self.draw, self.acceleration = draw, acceleration
        device = self.normal.device
        loss = acceleration.autocast(loss, device)
        eager = self._body(loss, optimizer)
        self.compiled: FallBack[StepOutputs] | None = None
        body: Callable[[], StepOutputs] = eager
        if acceleration.compile:
            self.compiled = FallBack(
                self._body(compile_function(loss), optimizer), eager, "torch.compile of the training step",
                before_retry=lambda: optimizer.zero_grad(set_to_none=True),
            )
            body = self.compiled
        self.graphed = CapturedStep(body, optimizer) if acceleration.graphs(device) else None
        self._run = self.graphed or body

    @classmethod
    def for_method(
        cls, method: Method, model: nn.Module, optimizer: torch.optim.Optimizer, sampler: BalancedSampler,
        acceleration: Acceleration,
    ) -> TrainingStep:
        """The step of one run: `method`'s loss on `model`, batches from `sampler`."""
        return cls(
            lambda normal, abnormal: method.loss(model, normal, abnormal),
            optimizer, sampler.empty_batch(), sampler.draw_into, acceleration,
        )

    def _body(self, loss: Callable[..., StepOutputs], optimizer: torch.optim.Optimizer) -> Callable[[], StepOutputs]:
        def body() -> StepOutputs:
            terms = loss(self.normal, self.abnormal)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].sum().backward()
            optimizer.step()
            return terms

        return body

    def __call__(self) -> StepOutputs:
        self.draw(self.normal, self.abnormal)
        return self._run()

    @property
    def engine(self) -> str:
        """What ran: precision, plus compile and cudagraph where they did not fall back."""
        parts = [self.acceleration.precision]
        if self.compiled is not None and not self.compiled.failed:
            parts.append("compile")
        if self.graphed is not None and self.graphed.captured:
            parts.append("cudagraph")
        return "+".join(parts)


def train(
    method: Method,
    model: nn.Module,
    sampler: BalancedSampler,
    steps: int,
    *,
    acceleration: Acceleration | None = None,
    log_every: int = 50,
    progress: bool = True,
    description: str = "training",
    on_step: Callable[[int], None] | None = None,
) -> TrainingLog:
    """Run `steps` optimisation steps of `method` on `model`; returns the logged loss terms.

    `on_step(step)` is called after each step (1-based): model-selection protocols hook in there.
    """
    optimizer = method.optimizer(model.parameters())
    step = TrainingStep.for_method(method, model, optimizer, sampler, acceleration or Acceleration())
    log = TrainingLog()
    model.train()
    with (
        device_flags(sampler.device),
        tqdm(total=steps, desc=description, disable=not progress, leave=False, unit="step") as bar,
    ):
        for index in range(1, steps + 1):
            terms = step()
            if index % log_every == 0 or index == steps:
                values = {name: float(value.detach()) for name, value in terms.items()}
                if not all(map(math.isfinite, values.values())):
                    raise TrainingDiverged(f"loss is not finite at step {index}: {values}")
                log.steps.append(index)
                log.terms.append(values)
                bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)
            bar.update(1)
            if on_step is not None:
                on_step(index)
    log.engine = step.engine
    return log
