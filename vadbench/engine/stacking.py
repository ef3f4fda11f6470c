"""Several runs that differ only in their seed, trained together in one process as one stacked model.

Such runs have identical shapes, so their parameters can be stacked along a new leading dimension
(`torch.func.stack_module_state`) and each step computed for all of them at once (`torch.func.vmap`
over the method's own loss). Small models then make better use of the device, and a grid's seeds
share one copy of the training set and one prepared test set.

How the stacked runs relate to the same runs done one by one:

- the same initial weights: each model is built right after seeding with its run's seed, as the
  runner does;
- the same batches: each run keeps its own `Sampler`, seeded with its seed (runs of one group have the
  same training set, so their loaders end their passes, and give a smaller last batch, at the same steps);
- the same optimiser arithmetic: the optimiser updates the stacked tensors, and Adam, Adagrad and SGD
  act elementwise, so each slice is updated as it would be alone (an optimiser that couples elements,
  such as one that clips the global gradient norm, would couple the runs: do not stack it);
- NOT the same randomness inside the step: dropout masks are drawn for all runs at once from the
  global generator (vmap ``randomness="different"``), so each run's dropout stream differs from
  the one it gets alone and depends on the seeds trained with it, and in which order (RTFM, seed 0,
  50 steps: AUC 72.88 alone, 84.05 stacked with seed 1, 76.86 with seeds 1 and 2). The runs are
  equally valid samples, not the same samples, so a stacked run carries the seeds of its group
  (`RunSpec.stacked`, part of its key): it is stored and tabled apart from the same seed alone.

With dropout off, stacked runs equal separate runs up to float rounding (tests/unit/test_stacking.py).
Only protocol ``last`` is stacked (checkpoint selection would need per-run weights mid-training), and
only in fp32: vmap's convolution rule does not follow bf16 autocast (checked with torch 2.13). A method
that declares a step of its own, a gradient clip (global over all runs' gradients) or
``stackable=False`` (`Declarations`) is never stacked. Everything else about a stacked run (data, evaluation, the
recorded result) is `vadbench.engine.runner.Runner.run_together`'s, the one run path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from vadbench.api.errors import UsageError
from vadbench.api.method import Method, TrainBatch
from vadbench.api.types import RunSpec
from vadbench.engine.acceleration import Acceleration
from vadbench.engine.cudagraph import StepOutputs
from vadbench.engine.sampling import Drawn, Sampler, rows
from vadbench.engine.training import TrainingStep, per_epoch


class _MethodLoss(nn.Module):
    """`method.loss` on a model, as a module, so that `functional_call` can swap in one run's weights."""

    def __init__(self, method: Method, model: nn.Module) -> None:
        super().__init__()
        self.method, self.model = method, model

    def forward(self, batch: TrainBatch) -> StepOutputs:
        return self.method.loss(self.model, batch)


def stacked_step(
    method: Method, models: Sequence[nn.Module], samplers: Sequence[Sampler], acceleration: Acceleration, steps: int,
) -> tuple[TrainingStep, Callable[[], None]]:
    """The training step of `models[i]` on batches from `samplers[i]`, all at once (its scheduler is
    the method's, on the stacked optimiser), and a function that writes the trained weights back into
    `models` (call it after training)."""
    if acceleration.precision != "fp32":
        # torch.func.vmap's convolution rule does not follow autocast (bf16 input, fp32 bias: an error).
        raise ValueError("stacked runs train in fp32 only: bf16 autocast does not combine with vmap")
    params, buffers = stack_module_state(list(models))
    loss_module = _MethodLoss(method, copy.deepcopy(models[0]).to("meta")).train()

    def one_run(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], batch: TrainBatch) -> StepOutputs:
        weights = {f"model.{name}": value for name, value in (params | buffers).items()}
        return functional_call(loss_module, weights, (batch,))

    all_runs = vmap(one_run, randomness="different")
    optimizer = method.optimizer(params.values())
    scheduler = method.scheduler(optimizer, steps)
    batch = TrainBatch(*(torch.stack(field) for field in zip(*(s.empty_batch() for s in samplers), strict=True)))

    def draw(batch: TrainBatch) -> Drawn:
        drawn = [sampler.draw_into(TrainBatch(*(f[run] for f in batch))) for run, sampler in enumerate(samplers)]
        size = len(drawn[0].batch.features)
        if any(len(d.batch.features) != size or d.ends_epoch != drawn[0].ends_epoch for d in drawn):
            raise ValueError("stacked runs drew batches of different sizes or epochs")
        return Drawn(batch if size == len(batch.features[0]) else rows(batch, size, dim=1), drawn[0].ends_epoch)

    step = TrainingStep(
        lambda batch: all_runs(params, buffers, batch), optimizer, batch, draw, acceleration, scheduler=scheduler,
        per_epoch=per_epoch(method, samplers), fixed_size=all(s.fixed_size for s in samplers),
    )
    return step, lambda: _unstack(params | buffers, models)


@torch.no_grad()
def _unstack(stacked: dict[str, torch.Tensor], models: Sequence[nn.Module]) -> None:
    """Copy slice i of every stacked parameter and buffer into `models[i]`."""
    for run, model in enumerate(models):
        for name, tensor in (*model.named_parameters(), *model.named_buffers()):
            tensor.copy_(stacked[name][run])


def stack_groups(specs: Sequence[RunSpec]) -> list[list[RunSpec]]:
    """Specs grouped by everything but the seed (in first-appearance order); stacked runs need ``last``."""
    groups: dict[str, list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault(replace(spec, seed=0).key + spec.device, []).append(spec)
    return list(groups.values())


def check_stackable(specs: Sequence[RunSpec], method: Method) -> None:
    """A UsageError saying why `specs` cannot train as one stacked model, if they cannot."""
    first = specs[0]
    seeds = [spec.seed for spec in specs]
    if len(specs) < 2 or len(set(seeds)) != len(seeds):
        raise UsageError(f"stacked runs must have several distinct seeds, got {', '.join(map(str, seeds))}")
    if len(stack_groups(specs)) != 1:
        raise UsageError("stacked runs must differ only in their seed")
    if first.protocol != "last":
        raise UsageError(f"only protocol 'last' can be stacked, got {first.protocol!r}")
    if first.precision != "fp32":
        raise UsageError(f"only fp32 runs can be stacked (bf16 autocast does not combine with vmap), "
                         f"got {first.precision}")
    refusal = stack_refusal(method)
    if refusal is not None:
        raise UsageError(f"method {first.method!r} cannot be stacked: {refusal}")


def stack_refusal(method: Method) -> str | None:
    """Why `method`'s runs cannot train as one stacked model (by what it declares), or None."""
    declared = method.declarations()
    if not declared.stackable:
        return f"{type(method).__name__} declares stackable = False"
    if declared.grad_clip is not None:
        return f"{type(method).__name__} clips the gradient norm, which would couple the stacked runs"
    if declared.train_step is not None:
        return f"{type(method).__name__} has a training step of its own"
    return None
