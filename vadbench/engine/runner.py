"""RunSpec -> RunResult: build the components, place data once, train, select, evaluate, time it all.

Model selection is honest by default (protocol ``last``): the weights after the fixed schedule are
evaluated, and the test labels are read only by that final evaluation. The other protocols
(`vadbench.plan.protocols`) watch training through a selector (`vadbench.engine.selection`) and hand back the
weights to evaluate.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import platform
import random
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from vadbench import __version__
from vadbench.api.errors import UsageError
from vadbench.api.method import Method
from vadbench.api.reduction import DEFAULT_REDUCTION, Reduction
from vadbench.api.types import Benchmark, RunResult, RunSpec, TestSet
from vadbench.engine.acceleration import Acceleration
from vadbench.engine.given_weights import checkpoint_model
from vadbench.engine.placement import training_rows
from vadbench.engine.sampling import Sampler
from vadbench.engine.scoring import Scored, VideoScorer
from vadbench.engine.selection import create_selector
from vadbench.engine.side_inputs import with_side_inputs
from vadbench.engine.stacking import check_stackable, stacked_step
from vadbench.engine.training import TrainingLog, train, train_method
from vadbench.plan.specs import schedule, validate
from vadbench.plugins.manager import Plugins, get_plugins
from vadbench.report.metrics import evaluate


class Prepared(NamedTuple):
    """A run set up for training: its data, method, device, schedule and the result to fill."""

    benchmark: Benchmark
    load_seconds: float
    method: Method
    device: torch.device
    steps: int
    result: RunResult


class Runner:
    """Runs specs one after another, loading each benchmark once for all the runs that share it."""

    def __init__(self, plugins: Plugins | None = None, *, progress: bool = True) -> None:
        self.plugins = plugins or get_plugins()
        self.progress = progress
        self._benchmarks: dict[str, Benchmark] = {}
        self._versions = versions(self.plugins)

    def validate(self, spec: RunSpec) -> None:
        """Raise UsageError for anything wrong in `spec` before any work starts: what the plan checks
        (`vadbench.plan.specs.validate`) and its device, on this machine."""
        validate(self.plugins, spec)
        resolve_device(spec.device)

    def benchmark(self, spec: RunSpec, reduction: Reduction = DEFAULT_REDUCTION) -> tuple[Benchmark, float]:
        """The benchmark of `spec` reduced for its method, and the seconds it took to load (0 when already loaded)."""
        options = spec.full_dataset_options()
        key = repr((spec.dataset, sorted(options.items()), reduction.key))
        seconds = 0.0
        if key not in self._benchmarks:
            start = time.perf_counter()
            self._benchmarks[key] = self.plugins.datasets.create(spec.dataset, options).load(reduction)
            seconds = time.perf_counter() - start
        check_data(spec, self._benchmarks[key])
        return self._benchmarks[key], seconds

    def prepare(self, spec: RunSpec) -> Prepared:
        """Everything a run needs before training, and its result with the provenance filled in."""
        self.validate(spec)
        method = self.plugins.methods.create(spec.method, spec.method_options)
        benchmark, load_seconds = self.benchmark(spec, method.declarations().training_input.reduction)
        benchmark = with_side_inputs(spec.method, method, benchmark)
        device = resolve_device(spec.device)
        steps = schedule(self.plugins, spec)
        dataset_config = self.plugins.datasets.config(spec.dataset, spec.full_dataset_options())
        config = run_config(spec, method, dataset_config, benchmark, steps)
        result = RunResult(spec, status="ok", config=config, device=describe(device), versions=self._versions)
        return Prepared(benchmark, load_seconds, method, device, steps, result)

    def run(self, spec: RunSpec) -> RunResult:
        """Train and evaluate one spec; a diverging loss gives a failed result, not an exception."""
        return self.run_together([spec])[0]

    def run_together(self, specs: Sequence[RunSpec]) -> list[RunResult]:
        """`_run_together` with the torch threads the specs name (`RunSpec.threads`), restored after."""
        previous = torch.get_num_threads()
        if specs[0].threads is not None:
            torch.set_num_threads(specs[0].threads)
        try:
            return self._run_together(specs)
        finally:
            torch.set_num_threads(previous)

    def _run_together(self, specs: Sequence[RunSpec]) -> list[RunResult]:
        """Train and evaluate runs that differ only in their seed: one alone, several as one stacked model.

        The one run path: a run alone and a stacked run share every step but the training step itself
        (`vadbench.engine.stacking` builds the stacked one). A diverging loss gives a failed result, not an
        exception; in a stacked group the other runs are unaffected.
        """
        started = time.perf_counter()
        if len(specs) > 1:  # their numbers depend on the group: their specs name it, in training order
            specs = [dataclasses.replace(spec, stacked=tuple(s.seed for s in specs)) for spec in specs]
        prepared = [self.prepare(spec) for spec in specs]
        benchmark, load_seconds, method, device, steps, _ = prepared[0]
        first = specs[0]
        if len(specs) > 1:
            check_stackable(specs, method)
        # One test scorer for the run, built when first asked for (by `oracle-test` during training, else for
        # the final evaluation): after the training set took its place on the device. Not compiled: a few
        # passes only, compiling would cost more than it saves.
        test_scorer = functools.cache(functools.partial(
            VideoScorer, method, benchmark.test, device, acceleration=Acceleration(first.precision)))
        selector = create_selector(first.protocol, method, benchmark, device, steps=steps, seed=first.seed,
                                   test_scorer=test_scorer)
        # The training set stays in the cache's memory map (or goes to the device when it fits there): one for
        # all runs, never copied whole into this process's memory.
        features = training_rows(selector.train.features, device)
        models, samplers = [], []
        training_input = method.declarations().training_input
        for spec, run in zip(specs, prepared, strict=True):
            seed_everything(spec.seed)
            models.append(build_model(spec.method, method, benchmark).to(device))
            run.result.config["parameters"] = sum(p.numel() for p in models[-1].parameters() if p.requires_grad)
            samplers.append(Sampler.create(
                selector.train, features, training_input, method.batch_size, spec.seed, benchmark.prompts
            ))
            run.result.config["batch_size"] = samplers[-1].batch
        acceleration = Acceleration(first.precision, first.compile)
        description = f"{first.method} on {first.dataset} (seed{'s' if len(specs) > 1 else ''} "
        description += ", ".join(str(spec.seed) for spec in specs) + ")"
        train_start = time.perf_counter()
        if len(models) == 1:
            model = models[0]
            log, step = train_method(method, model, samplers[0], steps, acceleration=acceleration,
                                     progress=self.progress, description=description,
                                     on_step=lambda index: selector.on_step(model, index))
            logs = [log]
        else:
            step, finish = stacked_step(method, models, samplers, acceleration, steps)
            logs = [TrainingLog() for _ in specs]
            train(step, steps, logs, progress=self.progress, description=description)
            finish()
        scheduler = "none" if step.scheduler is None else type(step.scheduler).__name__
        for run in prepared:
            run.result.config["method.scheduler"] = scheduler
        train_seconds = time.perf_counter() - train_start
        scorer = test_scorer()
        results = []
        for run, model, log in zip(prepared, models, logs, strict=True):
            result = run.result
            result.config["engine"] = log.engine + (f"+stacked{len(specs)}" if len(specs) > 1 else "")
            result.curves = {**log.curves(), **selector.curve()}
            if log.error is not None:
                result.status, result.error = "failed", log.error
                result.timings = {"load": load_seconds, "train": train_seconds}
            else:
                selection = selector.finish(model)
                eval_start = time.perf_counter()
                record_evaluation(result, method, benchmark.test, scorer(model, magnitudes=True), log.terms[-1]["loss"])
                result.metrics.update(selection)
                if result.spec.save_model:  # the evaluated weights (`vadbench.engine.saved_models`)
                    result.weights = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
                result.timings = run_timings(load_seconds, train_seconds, eval_start, started, steps)
            results.append(result)
        return results


    def evaluate_given(self, spec: RunSpec, path: Path) -> RunResult:
        """Score the test set of `spec` (protocol ``given``) with the weights of checkpoint `path`, through the same
        scoring path and metrics as a trained run; nothing is trained. The result records the file and its format."""
        self.validate(spec)
        method = self.plugins.methods.create(spec.method, spec.method_options)
        benchmark, load_seconds = self.benchmark(spec, method.declarations().training_input.reduction)
        device = resolve_device(spec.device)
        started = time.perf_counter()
        given = checkpoint_model(self.plugins, spec.method, spec.method_options, path, benchmark.train.crops,
                                 benchmark.train.feature_dim)
        dataset_config = self.plugins.datasets.config(spec.dataset, spec.full_dataset_options())
        config = run_config(spec, method, dataset_config, benchmark, 0)
        config.update({key: given.record[key] for key in ("checkpoint", "checkpoint_sha256", "checkpoint_format")})
        config["parameters"] = sum(p.numel() for p in given.model.parameters())
        result = RunResult(spec, status="ok", config=config, device=describe(device), versions=self._versions)
        scored = VideoScorer(method, benchmark.test, device, acceleration=Acceleration(spec.precision))(
            given.model.to(device), magnitudes=True)
        record_evaluation(result, method, benchmark.test, scored, None)
        now = time.perf_counter()
        result.timings = {"load": load_seconds, "train": 0.0, "evaluate": now - started, "total": now - started}
        return result


def check_data(spec: RunSpec, benchmark: Benchmark) -> None:
    """Refuse data whose fingerprint (known when it came from the preparation cache) is not the one the run
    is keyed on: a file edited since the driver keyed the runs, or a worker that sees other files at the
    same path. Its numbers would be stored under the wrong data."""
    found = benchmark.meta.get("fingerprint")
    if spec.data is not None and found is not None and found != spec.data:
        raise UsageError(f"dataset {spec.dataset!r}: the data read here has fingerprint {found}, but the run is "
                         f"keyed on {spec.data} (files changed since the runs were set up?); start it again")


def record_evaluation(
    result: RunResult, method: Method, test: TestSet, scored: Scored, final_loss: float | None
) -> None:
    """Metrics, per-video scores and (where the method has them) feature magnitudes of one test pass, into
    `result` (`final_loss` None: weights that were not trained here)."""
    result.metrics = evaluate(np.concatenate(scored.scores), test)
    if not method.declarations().probability_scores:
        result.metrics["far"] = None  # a threshold of 0.5 means nothing on unbounded scores: absent, not 0
    result.metrics["final_loss"] = final_loss
    result.scores = dict(zip(test.video_ids, scored.scores, strict=True))
    if scored.magnitudes is not None:
        result.magnitudes = dict(zip(test.video_ids, scored.magnitudes, strict=True))


def run_timings(load: float, train: float, eval_start: float, started: float, steps: int) -> dict[str, float]:
    """Seconds spent loading, training and evaluating; total includes the load when it happened in this run."""
    now = time.perf_counter()
    return {"load": load, "train": train, "evaluate": now - eval_start, "total": now - started,
            "ms_per_step": 1000 * train / steps}


def build_model(name: str, method: Method, benchmark: Benchmark) -> torch.nn.Module:
    """The method's model for this benchmark's crops and D; a mismatch (e.g. D not divisible) is a usage error."""
    crops, dim = benchmark.train.crops, benchmark.train.feature_dim
    try:
        return method.build(crops, dim)
    except ValueError as error:
        raise UsageError(
            f"method {name!r} cannot run on {benchmark.name} features (C={crops}, D={dim}): {error}"
        ) from None


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; a device this machine lacks is a usage error.

    Checked before any run starts (specs are validated first): torch accepts the name of any device
    it knows (``mps``, ``cuda:3``), and a run on one that is absent would fail only when it starts.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device: unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    available = available_devices()
    if device.type != "cpu" and str(device) not in available:
        raise UsageError(f"--device {name}: this machine has no such device (available: auto, {', '.join(available)})")
    return device


def available_devices() -> list[str]:
    """The devices a run can use here: ``cpu``, then the accelerator (``cuda``) and each of its devices."""
    accelerator = torch.accelerator.current_accelerator(check_available=True)
    if accelerator is None:
        return ["cpu"]
    count = torch.accelerator.device_count()
    return ["cpu", accelerator.type, *(f"{accelerator.type}:{index}" for index in range(count))]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def flat_config(spec: RunSpec, method: Method, dataset_config: Any) -> dict[str, Any]:
    """The full provenance of a run as one flat mapping (``method.k``, ``method.input.segments``,
    ``dataset.mu``, ...): every option and everything the method declares."""
    flat: dict[str, Any] = {"method": spec.method, "dataset": spec.dataset, "seed": spec.seed}
    flat.update({f"method.{k}": v for k, v in dataclasses.asdict(method.config).items()})
    flat.update({f"method.{k}": v for k, v in method.declarations().record().items()})
    flat.update({f"dataset.{k}": v for k, v in dataclasses.asdict(dataset_config).items()})
    flat["protocol"] = spec.protocol
    return flat


def run_config(
    spec: RunSpec, method: Method, dataset_config: Any, benchmark: Benchmark, steps: int
) -> dict[str, Any]:
    """A run's recorded config: the flat options and declarations, its schedule and what the adapter
    reported (``benchmark.*``). The one place a run's config is built."""
    config = flat_config(spec, method, dataset_config)
    config["steps"] = steps
    config.update({f"benchmark.{key}": value for key, value in benchmark.meta.items()})
    return config


def runs_on_cpu(spec: RunSpec) -> bool:
    """Whether `spec` trains on the CPU of this machine (its threads then move its numbers: `RunSpec.threads`)."""
    return resolve_device(spec.device).type == "cpu"


def describe(device: torch.device) -> str:
    """The device a run used, as its result records it: the GPU's name, or the CPU's model, the vector
    instructions torch's kernels use on it and the torch threads (each moves the numbers of a CPU run)."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    kernels = torch.backends.cpu.get_cpu_capability()
    return f"cpu ({cpu_model()}, {kernels}, {threads} thread{'s' if threads > 1 else ''})"


def cpu_model() -> str:
    """This machine's CPU model (Linux: /proc/cpuinfo's model name), else what `platform` knows of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name" and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(plugins: Plugins) -> dict[str, str]:
    """vadbench, torch, numpy, python, every plugin distribution, and the git revision if any."""
    found = {"vadbench": __version__, "torch": torch.__version__, "numpy": np.__version__,
             "python": platform.python_version()}
    for dist in sorted(set(plugins.distributions.values()) - {"vadbench"}):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "unknown"
    revision = _git_revision()
    if revision:
        found["git"] = revision
    return found


def _git_revision() -> str | None:
    """The revision of the vadbench checkout this code runs from (None for an installed wheel)."""
    source = Path(__file__).resolve().parent.parent
    try:
        output = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "--short", "HEAD"], cwd=source,
            capture_output=True, text=True, timeout=5, check=False,
        )
    except OSError:
        return None
    lines = output.stdout.split()
    if output.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != source:
        return None
    return lines[1]
