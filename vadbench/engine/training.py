"""The one training loop, for one model or several stacked ones: batches drawn on the device, no DataLoader.

The reduced training set is moved to the device once; each step a `Sampler` draws the batch the
method declared (`vadbench.api.method.TrainingInput`: balanced or mixed, crops joint or independent)
with a seeded device generator into preallocated buffers, so the step itself never waits on the
host. Loss terms are read back only every `log_every` steps, which is also where a non-finite loss
is caught. `Acceleration` adds bf16 autocast, torch.compile and (on CUDA) replay of the whole step as
one CUDA graph; the default (fp32, eager) runs the plain step. A method's declared gradient clip,
learning-rate schedule and step of its own are applied here, so no method re-implements the loop.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from vadbench.api.method import Method, TrainBatch, TrainingInput
from vadbench.api.types import TrainSet
from vadbench.engine.acceleration import Acceleration, FallBack, compile_function, device_flags
from vadbench.engine.cudagraph import CapturedStep, StepOutputs


@dataclass
class TrainingLog:
    """Loss terms read back every `log_every` steps: one dict per logged step.

    engine: how the steps actually ran (precision, plus compile / cudagraph / stacked where they ran).
    error: why the run stopped (a non-finite loss), None while it trains.
    """

    steps: list[int] = field(default_factory=list)
    terms: list[dict[str, float]] = field(default_factory=list)
    engine: str = ""
    error: str | None = None

    def record(self, step: int, values: dict[str, float]) -> None:
        """Keep the terms of `step`; a non-finite one ends the run (`error`), keeping what came before."""
        if self.error is not None:
            return
        if not all(map(math.isfinite, values.values())):
            self.error = f"loss is not finite at step {step}: {values}"
            return
        self.steps.append(step)
        self.terms.append(values)

    def curves(self) -> dict[str, Any]:
        """The logged steps and one list of values per loss term, as the run store keeps them."""
        names = self.terms[0] if self.terms else {}
        return {"steps": list(self.steps), "terms": {name: [t[name] for t in self.terms] for name in names}}


@dataclass(frozen=True)
class Sampler:
    """Draws the batches a method declared (`TrainingInput`), on the device, with a seeded generator.

    samples: (M, C, S, D) with joint crops, (M, S, D) with independent crops (M = videos x crops);
    per sample: labels, true lengths, class indices and class sets. ``balanced``: `batch` normal samples then
    `batch` abnormal ones, each class drawn without replacement within the step (the per-class
    batch is clamped to the smaller class: a weak UCSD split has 6 abnormal training clips);
    ``mixed``: `batch` samples drawn from all of them.
    """

    samples: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor
    classes: torch.Tensor
    class_sets: torch.Tensor
    prompts: torch.Tensor
    normal: torch.Tensor
    abnormal: torch.Tensor
    batch: int
    mixed: bool
    generator: torch.Generator

    @classmethod
    def create(
        cls, train: TrainSet, features: torch.Tensor, declared: TrainingInput, batch: int, seed: int,
        prompts: np.ndarray | None = None,
    ) -> Sampler:
        """A sampler over `train` whose features are `features` (its (N, C, S, D) array on the device;
        one copy may serve several samplers); `prompts`: the benchmark's class prompts, if any."""
        device = features.device
        independent = declared.crops == "independent"
        crops = features.shape[1] if independent else 1
        samples = features.reshape(-1, *features.shape[2:]) if independent else features

        def per_sample(values: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.repeat(np.asarray(values), crops, axis=0), device=device)

        labels = per_sample(train.labels)
        classes = per_sample(train.classes) if train.classes is not None else torch.full_like(labels, -1)
        class_sets = per_sample(train.class_sets) if train.class_sets is not None else classes[:, None]
        prompts = prompts if prompts is not None else np.zeros((0, 0), np.float32)
        normal = torch.nonzero(labels == 0).reshape(-1)
        abnormal = torch.nonzero(labels == 1).reshape(-1)
        if len(normal) == 0 or len(abnormal) == 0:
            raise ValueError("training needs at least one normal and one abnormal video")
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        mixed = declared.batch == "mixed"
        return cls(
            samples, labels.float(), per_sample(train.segment_lengths).long(), classes.long(), class_sets.long(),
            torch.as_tensor(np.asarray(prompts, np.float32), device=device), normal, abnormal,
            min(batch, len(labels)) if mixed else min(batch, len(normal), len(abnormal)), mixed, generator,
        )

    @property
    def device(self) -> torch.device:
        return self.samples.device

    @property
    def size(self) -> int:
        """Samples per batch."""
        return self.batch if self.mixed else 2 * self.batch

    def empty_batch(self) -> TrainBatch:
        """Buffers of one batch for `draw_into` (features uninitialised; balanced labels already set)."""
        labels = torch.cat([torch.zeros(self.batch), torch.ones(self.batch)]) if not self.mixed else torch.empty(
            self.batch)
        return TrainBatch(
            self.samples.new_empty((self.size, *self.samples.shape[1:])),
            labels.to(self.device),
            self.lengths.new_empty(self.size),
            self.classes.new_empty(self.size),
            self.prompts,
            self.class_sets.new_empty((self.size, self.class_sets.shape[1])),
        )

    def draw_into(self, batch: TrainBatch) -> None:
        """Draw the next batch into `batch`'s buffers."""
        if self.mixed:
            index = torch.randperm(len(self.labels), generator=self.generator, device=self.device)[: self.batch]
            torch.index_select(self.labels, 0, index, out=batch.labels)
        else:
            normal = self.normal[self._order(len(self.normal))]
            abnormal = self.abnormal[self._order(len(self.abnormal))]
            index = torch.cat([normal, abnormal])
        torch.index_select(self.samples, 0, index, out=batch.features)
        torch.index_select(self.lengths, 0, index, out=batch.lengths)
        torch.index_select(self.classes, 0, index, out=batch.classes)
        torch.index_select(self.class_sets, 0, index, out=batch.class_sets)

    def _order(self, count: int) -> torch.Tensor:
        return torch.randperm(count, generator=self.generator, device=self.device)[: self.batch]


class TrainingStep:
    """One optimisation step per call: draw a batch into static buffers, then loss, backward, update.

    `loss(batch)` returns the loss terms; ``terms["loss"]`` is a scalar, or one loss per run when
    several runs are stacked (`vadbench.engine.stacking`), and their sum is minimised. `clip` is the declared
    maximum gradient norm; `scheduler` is stepped after each update. The body reads only the buffers,
    so the same body runs eagerly, compiled, or captured in a CUDA graph (not with a scheduler, whose
    learning rate a graph would freeze). `own_step` replaces the body with a method's own step (eager).
    """

    def __init__(
        self,
        loss: Callable[[TrainBatch], StepOutputs],
        optimizer: torch.optim.Optimizer,
        batch: TrainBatch,
        draw: Callable[[TrainBatch], None],
        acceleration: Acceleration,
        *,
        clip: float | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        own_step: Callable[[TrainBatch], StepOutputs] | None = None,
    ) -> None:
        self.batch, self.draw, self.acceleration = batch, draw, acceleration
        self.scheduler = scheduler
        device = batch.features.device
        loss = acceleration.autocast(loss, device)
        eager: Callable[[], StepOutputs] = self._body(loss, optimizer, clip)
        if own_step is not None:
            eager = functools.partial(own_step, self.batch)
        self.compiled: FallBack[StepOutputs] | None = None
        body: Callable[[], StepOutputs] = eager
        if acceleration.compile and own_step is None:
            self.compiled = FallBack(
                self._body(compile_function(loss), optimizer, clip), eager, "torch.compile of the training step",
                before_retry=lambda: optimizer.zero_grad(set_to_none=True),
            )
            body = self.compiled
        graphs = acceleration.graphs(device) and scheduler is None and own_step is None
        self.graphed = CapturedStep(body, optimizer) if graphs else None
        self._run = self.graphed or body

    @classmethod
    def for_method(
        cls, method: Method, model: nn.Module, optimizer: torch.optim.Optimizer, sampler: Sampler,
        acceleration: Acceleration, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> TrainingStep:
        """The step of one run: `method`'s loss (or its own step) on `model`, batches from `sampler`."""
        own = type(method).train_step is not Method.train_step
        return cls(
            lambda batch: method.loss(model, batch), optimizer, sampler.empty_batch(), sampler.draw_into,
            acceleration, clip=method.grad_clip(), scheduler=scheduler,
            own_step=(lambda batch: method.train_step(model, optimizer, batch)) if own else None,
        )

    def _body(
        self, loss: Callable[[TrainBatch], StepOutputs], optimizer: torch.optim.Optimizer, clip: float | None
    ) -> Callable[[], StepOutputs]:
        parameters = [p for group in optimizer.param_groups for p in group["params"]]

        def body() -> StepOutputs:
            terms = loss(self.batch)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].sum().backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(parameters, clip)
            optimizer.step()
            return terms

        return body

    def __call__(self) -> StepOutputs:
        self.draw(self.batch)
        terms = self._run()
        if self.scheduler is not None:
            self.scheduler.step()
        return terms

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
    step: TrainingStep,
    steps: int,
    logs: Sequence[TrainingLog],
    *,
    log_every: int = 50,
    progress: bool = True,
    description: str = "training",
    on_step: Callable[[int], None] | None = None,
) -> None:
    """Run `steps` calls of `step`, reading the terms back every `log_every` steps into `logs`.

    One log per run: with several stacked runs every term holds one value per run, and a run whose
    loss becomes non-finite gets its `TrainingLog.error` while the others go on. `on_step(step)` is
    called after each (1-based) step: model-selection protocols hook in there.
    """
    with (
        device_flags(step.batch.features.device),
        tqdm(total=steps, desc=description, disable=not progress, leave=False, unit="step") as bar,
    ):
        for index in range(1, steps + 1):
            terms = step()
            if index % log_every == 0 or index == steps:
                # One transfer per term for all runs.
                values = {name: value.detach().float().reshape(-1).cpu().tolist() for name, value in terms.items()}
                for run, log in enumerate(logs):
                    log.record(index, {name: float(per_run[run]) for name, per_run in values.items()})
                if all(log.error is not None for log in logs):
                    break
                bar.set_postfix(loss=f"{logs[0].terms[-1]['loss']:.4f}" if logs[0].terms else "-", refresh=False)
            bar.update(1)
            if on_step is not None:
                on_step(index)
    for log in logs:
        log.engine = step.engine


def train_method(
    method: Method,
    model: nn.Module,
    sampler: Sampler,
    steps: int,
    *,
    acceleration: Acceleration | None = None,
    log_every: int = 50,
    progress: bool = True,
    description: str = "training",
    on_step: Callable[[int], None] | None = None,
) -> tuple[TrainingLog, TrainingStep]:
    """Train one `model` of `method` for `steps` steps with its optimiser and declared schedule; returns
    the log and the step (which holds the scheduler it stepped)."""
    optimizer = method.optimizer(model.parameters())
    step = TrainingStep.for_method(
        method, model, optimizer, sampler, acceleration or Acceleration(), method.scheduler(optimizer, steps)
    )
    log = TrainingLog()
    model.train()
    train(step, steps, [log], log_every=log_every, progress=progress, description=description, on_step=on_step)
    return log, step
