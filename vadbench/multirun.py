"""Several runs that differ only in their seed, trained together in one process as one stacked model.

Such runs have identical shapes, so their parameters can be stacked along a new leading dimension
(`torch.func.stack_module_state`) and each step computed for all of them at once (`torch.func.vmap`
over the method's own loss). Small models then make better use of the device, and a grid's seeds
share one copy of the training set and one prepared test set.

How the stacked runs relate to the same runs done one by one:

- the same initial weights: each model is built right after seeding with its run's seed, as the
  runner does;
- the same batches: each run keeps its own `BalancedSampler`, seeded with its seed;
- the same optimiser arithmetic: the optimiser updates the stacked tensors, and Adam, Adagrad and SGD
  act elementwise, so each slice is updated as it would be alone (an optimiser that couples elements,
  such as one that clips the global gradient norm, would couple the runs: do not stack it);
- NOT the same randomness inside the step: dropout masks are drawn for all runs at once from the
  global generator (vmap ``randomness="different"``), so each run's dropout stream differs from
  the one it gets alone. The runs are equally valid samples, not the same samples.

With dropout off, stacked runs equal separate runs up to float rounding (tests/unit/test_multirun.py).
Only protocol ``last`` is stacked (checkpoint selection would need per-run weights mid-training), and
only in fp32: vmap's convolution rule does not follow bf16 autocast (checked with torch 2.13).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from tqdm.auto import tqdm

from vadbench.acceleration import Acceleration, device_flags
from vadbench.cudagraph import StepOutputs
from vadbench.errors import UsageError
from vadbench.evaluation import TestScorer
from vadbench.method import Method
from vadbench.runner import (
    Runner,
    build_model,
    record_evaluation,
    run_timings,
    seed_everything,
)
from vadbench.training import BalancedSampler, TrainingLog, TrainingStep
from vadbench.types import RunResult, RunSpec


class _MethodLoss(nn.Module):
    """`method.loss` on a model, as a module, so that `functional_call` can swap in one run's weights."""

    def __init__(self, method: Method, model: nn.Module) -> None:
        super().__init__()
        self.method, self.model = method, model

    def forward(self, normal: torch.Tensor, abnormal: torch.Tensor) -> StepOutputs:
        return self.method.loss(self.model, normal, abnormal)


def train_stacked(
    method: Method,
    models: Sequence[nn.Module],
    samplers: Sequence[BalancedSampler],
    steps: int,
    *,
    acceleration: Acceleration | None = None,
    log_every: int = 50,
    progress: bool = True,
    description: str = "stacked training",
) -> tuple[list[TrainingLog], list[str | None]]:
    """Train `models[i]` on batches from `samplers[i]` for `steps` steps, all at once.

    Returns one log per run and one error per run (None for a run whose loss stayed finite). A run
    whose loss becomes non-finite does not disturb the others (the runs share no arithmetic); its
    error names the first logged step where it was seen. The trained weights are written back into
    `models`.
    """
    if len(models) != len(samplers) or not models:
        raise ValueError("train_stacked needs one sampler per model and at least one model")
    acceleration = acceleration or Acceleration()
    if acceleration.precision != "fp32":
        # torch.func.vmap's convolution rule does not follow autocast (bf16 input, fp32 bias: an error).
        raise ValueError("stacked runs train in fp32 only: bf16 autocast does not combine with vmap")
    params, buffers = stack_module_state(list(models))
    loss_module = _MethodLoss(method, copy.deepcopy(models[0]).to("meta")).train()

    def one_run(
        params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], normal: torch.Tensor, abnormal: torch.Tensor
    ) -> StepOutputs:
        weights = {f"model.{name}": value for name, value in (params | buffers).items()}
        return functional_call(loss_module, weights, (normal, abnormal))

    all_runs = vmap(one_run, randomness="different")
    optimizer = method.optimizer(params.values())
    normal, abnormal = (torch.stack(pair) for pair in zip(*(s.empty_batch() for s in samplers), strict=True))

    def draw(normal: torch.Tensor, abnormal: torch.Tensor) -> None:
        for run, sampler in enumerate(samplers):
            sampler.draw_into(normal[run], abnormal[run])

    step = TrainingStep(
        lambda normal, abnormal: all_runs(params, buffers, normal, abnormal),
        optimizer, (normal, abnormal), draw, acceleration,
    )
    logs = [TrainingLog() for _ in models]
    errors: list[str | None] = [None] * len(models)
    with device_flags(normal.device), tqdm(total=steps, desc=description, disable=not progress, leave=False) as bar:
        for index in range(1, steps + 1):
            terms = step()
            if index % log_every == 0 or index == steps:
                _log(terms, index, logs, errors)
            bar.update(1)
    for log in logs:
        log.engine = f"{step.engine}+stacked{len(models)}"
    _unstack(params | buffers, models)
    return logs, errors


def _log(terms: StepOutputs, step: int, logs: list[TrainingLog], errors: list[str | None]) -> None:
    """Record each run's terms at `step` (one transfer per term, for all runs); note runs that diverged."""
    values = {name: value.detach().float().cpu().tolist() for name, value in terms.items()}
    for run, log in enumerate(logs):
        if errors[run] is not None:
            continue
        mine = {name: float(per_run[run]) for name, per_run in values.items()}
        if not all(map(math.isfinite, mine.values())):
            errors[run] = f"loss is not finite at step {step}: {mine}"
            continue
        log.steps.append(step)
        log.terms.append(mine)


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
        groups.setdefault(replace(spec, seed=0).key + spec.device + str(spec.compile), []).append(spec)
    return list(groups.values())


def can_stack(specs: Sequence[RunSpec]) -> bool:
    """True for several runs that differ only in their seed, with protocol ``last``, in fp32."""
    return (
        len(specs) > 1 and len(stack_groups(specs)) == 1
        and specs[0].protocol == "last" and specs[0].precision == "fp32"
    )


def run_stacked(runner: Runner, specs: Sequence[RunSpec]) -> list[RunResult]:
    """Train and evaluate runs that differ only in their seed, as `Runner.run` would one by one.

    Results carry the same metrics, config and timings as `Runner.run` gives; ``timings["train"]``
    is the stacked training's wall time (shared by all its runs) and ``config["engine"]`` ends in
    ``+stackedN``. A run whose loss diverges is a failed result; the others are unaffected.
    """
    if len(stack_groups(specs)) != 1:
        raise UsageError("stacked runs must differ only in their seed")
    first = specs[0]
    if first.protocol != "last":
        raise UsageError(f"only protocol 'last' can be stacked, got {first.protocol!r}")
    if first.precision != "fp32":
        raise UsageError(f"only fp32 runs can be stacked (bf16 autocast does not combine with vmap), "
                         f"got {first.precision}")
    started = time.perf_counter()
    prepared = [runner.prepare(spec) for spec in specs]
    benchmark, load_seconds, method, device, steps, _ = prepared[0]
    # One writable copy for all runs (a prepared cache is memory-mapped read-only).
    features = torch.as_tensor(np.require(benchmark.train.features, np.float32, ["C", "W"]), device=device)
    results, models, samplers = [], [], []
    for spec, run in zip(specs, prepared, strict=True):
        seed_everything(spec.seed)
        models.append(build_model(spec.method, method, benchmark).to(device))
        samplers.append(BalancedSampler.create(benchmark.train, features, method.batch_size, spec.seed))
        run.result.config["batch_size"] = samplers[-1].batch
        results.append(run.result)

    acceleration = Acceleration(first.precision, first.compile)
    train_start = time.perf_counter()
    logs, errors = train_stacked(
        method, models, samplers, steps, acceleration=acceleration, progress=runner.progress,
        description=f"{first.method} on {first.dataset} ({len(specs)} seeds stacked)",
    )
    train_seconds = time.perf_counter() - train_start
    # A few passes only: compiling the scorer would cost more than it saves.
    scorer = TestScorer(method, benchmark.test, device, acceleration=Acceleration(first.precision))
    for result, model, log, error in zip(results, models, logs, errors, strict=True):
        result.config["engine"] = log.engine
        result.curves = log.curves()
        if error is not None:
            result.status, result.error = "failed", error
            result.timings = {"load": load_seconds, "train": train_seconds}
            continue
        eval_start = time.perf_counter()
        record_evaluation(result, method, model, benchmark.test, device, scorer(model), log.terms[-1]["loss"])
        result.timings = run_timings(load_seconds, train_seconds, eval_start, started, steps)
    return results
