"""The one training loop, for one model or several stacked ones: batches drawn on the device, no DataLoader.

Each step a `vadbench.engine.sampling.Sampler` draws the batch the method declared
(`vadbench.api.method.TrainingInput`: balanced or mixed, crops joint or independent, drawn afresh or
by epoch-based loaders as the public code draws them) into preallocated buffers on the device, before
the step's body runs. Loss terms are read back only every `log_every` steps, which is also where a
non-finite loss is caught. `Acceleration` adds bf16 autocast, torch.compile and (on CUDA) replay of the
whole step as one CUDA graph; the default (fp32, eager) runs the plain step. A method's declared
gradient clip, learning-rate schedule (stepped every step or every epoch) and step of its own are
applied here, so no method re-implements the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vadbench.api.method import Method, TrainBatch
from vadbench.engine.acceleration import Acceleration, FallBack, compile_function, device_flags
from vadbench.engine.cudagraph import CapturedStep, StepOutputs
from vadbench.engine.progress import StepProgress
from vadbench.engine.sampling import Drawn, Sampler


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


class TrainingStep:
    """One optimisation step per call: draw a batch into static buffers, then loss, backward, update.

    `loss(batch)` returns the loss terms; ``terms["loss"]`` is a scalar, or one loss per run when
    several runs are stacked (`vadbench.engine.stacking`), and their sum is minimised. `draw(buffers)`
    fills the buffers and returns the batch to train on (the buffers, or their first rows when a pass of
    a loader ends in a smaller batch: `fixed_size` False says it may) and whether it ends an epoch.
    `clip` is the declared maximum gradient norm; `scheduler` is stepped after each update, or with
    ``per_epoch`` after the update of each epoch's last batch. The body reads only the current batch, so
    the same body runs eagerly, compiled, or captured in a CUDA graph (only on fixed-size batches, and not
    with a scheduler, whose learning rate a graph would freeze). `own_step` replaces the body with a
    method's own step (eager).
    """

    def __init__(
        self,
        loss: Callable[[TrainBatch], StepOutputs],
        optimizer: torch.optim.Optimizer,
        buffers: TrainBatch,
        draw: Callable[[TrainBatch], Drawn],
        acceleration: Acceleration,
        *,
        clip: float | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        per_epoch: bool = False,
        fixed_size: bool = True,
        own_step: Callable[[TrainBatch], StepOutputs] | None = None,
    ) -> None:
        self.buffers, self.batch, self.draw, self.acceleration = buffers, buffers, draw, acceleration
        self.scheduler, self.per_epoch = scheduler, per_epoch
        device = buffers.features.device
        loss = acceleration.autocast(loss, device)
        eager = self._body(loss, optimizer, clip) if own_step is None else self._own(own_step)
        self.compiled: FallBack[StepOutputs] | None = None
        body: Callable[[], StepOutputs] = eager
        if acceleration.compile and own_step is None:
            self.compiled = FallBack(
                self._body(compile_function(loss), optimizer, clip), eager, "torch.compile of the training step",
                before_retry=lambda: optimizer.zero_grad(set_to_none=True),
            )
            body = self.compiled
        graphs = acceleration.graphs(device) and scheduler is None and own_step is None and fixed_size
        self.graphed = CapturedStep(body, optimizer) if graphs else None
        self._run = self.graphed or body

    @classmethod
    def for_method(
        cls, method: Method, model: nn.Module, optimizer: torch.optim.Optimizer, sampler: Sampler,
        acceleration: Acceleration, scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> TrainingStep:
        """The step of one run: `method`'s loss (or its own step) on `model`, batches from `sampler`."""
        declared = method.declarations()
        own = declared.train_step
        return cls(
            lambda batch: method.loss(model, batch), optimizer, sampler.empty_batch(), sampler.draw_into,
            acceleration, clip=declared.grad_clip, scheduler=scheduler, per_epoch=per_epoch(method, [sampler]),
            fixed_size=sampler.fixed_size,
            own_step=None if own is None else (lambda batch: own(model, optimizer, batch)),
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

    def _own(self, own_step: Callable[[TrainBatch], StepOutputs]) -> Callable[[], StepOutputs]:
        return lambda: own_step(self.batch)

    def __call__(self) -> StepOutputs:
        self.batch, ends_epoch = self.draw(self.buffers)
        terms = self._run()
        if self.scheduler is not None and (ends_epoch or not self.per_epoch):
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


def per_epoch(method: Method, samplers: Sequence[Sampler]) -> bool:
    """Whether `method`'s scheduler steps once per epoch (`Declarations.scheduler_interval`); a ValueError
    when it does but its declared sampling has no epochs."""
    interval = method.declarations().scheduler_interval
    if interval == "epoch" and not all(sampler.epochs for sampler in samplers):
        raise ValueError(f"{type(method).__name__} steps its scheduler once per epoch, but its sampling has no "
                         "epochs: declare Sampling('epochs') with one mixed loader or zipped loaders")
    return interval == "epoch"


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
    called after each (1-based) step: model-selection protocols hook in there. With `progress`, a bar on
    a terminal, lines in a log, and a notice first when the run will take long (`StepProgress`).
    """
    device = step.buffers.features.device
    with device_flags(device), StepProgress(steps, description, device, enabled=progress) as bar:
        for index in range(1, steps + 1):
            terms = step()
            if index % log_every == 0 or index == steps:
                # One transfer per term for all runs.
                values = {name: value.detach().float().reshape(-1).cpu().tolist() for name, value in terms.items()}
                for run, log in enumerate(logs):
                    log.record(index, {name: float(per_run[run]) for name, per_run in values.items()})
                if all(log.error is not None for log in logs):
                    break
            bar.step(index, logs[0].terms[-1]["loss"] if logs[0].terms else None)
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
