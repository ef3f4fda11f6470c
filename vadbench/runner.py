"""RunSpec -> RunResult: build the components, place data once, train, select, evaluate, time it all.

Model selection is honest by default (protocol ``last``): the weights after the fixed schedule are
evaluated, and the test labels are read only by that final evaluation. The other protocols
(`vadbench.protocols`) watch training through a selector (`vadbench.selection`) and hand back the
weights to evaluate.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import platform
import random
import subprocess
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from vadbench import __version__
from vadbench.acceleration import Acceleration
from vadbench.errors import UsageError
from vadbench.evaluation import score_videos
from vadbench.magnitudes import magnitude_videos
from vadbench.method import Method
from vadbench.metrics import evaluate
from vadbench.plugins import Plugins, get_plugins
from vadbench.protocols import parse_protocol
from vadbench.selection import create_selector
from vadbench.training import BalancedSampler, TrainingDiverged, train
from vadbench.types import PRECISIONS, Benchmark, RunResult, RunSpec, TestSet


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
        self._benchmarks: dict[str, tuple[Benchmark, float]] = {}
        self._versions = versions(self.plugins)

    def validate(self, spec: RunSpec) -> None:
        """Raise UsageError for anything wrong in `spec` before any work starts."""
        self.plugins.methods.config(spec.method, spec.method_options)
        self.plugins.datasets.config(spec.dataset, spec.dataset_options)
        parse_protocol(spec.protocol)
        if spec.steps is not None and spec.steps < 1:
            raise UsageError(f"steps must be at least 1, got {spec.steps}")
        resolve_device(spec.device)
        if spec.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {spec.precision!r}")

    def benchmark(self, spec: RunSpec) -> tuple[Benchmark, float]:
        """The benchmark of `spec` and the seconds it took to load (0 when already loaded)."""
        key = repr((spec.dataset, sorted(spec.dataset_options.items())))
        if key in self._benchmarks:
            return self._benchmarks[key][0], 0.0
        start = time.perf_counter()
        benchmark = self.plugins.datasets.create(spec.dataset, spec.dataset_options).load()
        self._benchmarks[key] = (benchmark, time.perf_counter() - start)
        return self._benchmarks[key]

    def prepare(self, spec: RunSpec) -> Prepared:
        """Everything a run needs before training, and its result with the provenance filled in."""
        self.validate(spec)
        benchmark, load_seconds = self.benchmark(spec)
        method = self.plugins.methods.create(spec.method, spec.method_options)
        device = resolve_device(spec.device)
        steps = spec.steps or benchmark.default_steps or method.steps
        dataset_config = self.plugins.datasets.config(spec.dataset, spec.dataset_options)
        config = run_config(spec, method.config, dataset_config, benchmark, steps)
        result = RunResult(spec, status="ok", config=config, device=describe(device), versions=self._versions)
        return Prepared(benchmark, load_seconds, method, device, steps, result)

    def run(self, spec: RunSpec) -> RunResult:
        """Train and evaluate one spec; a diverging loss gives a failed result, not an exception."""
        started = time.perf_counter()
        benchmark, load_seconds, method, device, steps, result = self.prepare(spec)
        config = result.config
        seed_everything(spec.seed)

        selector = create_selector(spec.protocol, method, benchmark, device, steps=steps, seed=spec.seed)
        model = build_model(spec.method, method, benchmark).to(device)
        # A prepared cache is memory-mapped read-only; torch needs its own writable copy.
        features = torch.as_tensor(np.require(selector.train.features, np.float32, ["C", "W"]), device=device)
        sampler = BalancedSampler.create(selector.train, features, method.batch_size, spec.seed)
        config["batch_size"] = sampler.batch
        acceleration = Acceleration(spec.precision, spec.compile)
        train_start = time.perf_counter()
        try:
            log = train(
                method, model, sampler, steps,
                acceleration=acceleration, progress=self.progress,
                description=f"{spec.method} on {spec.dataset} (seed {spec.seed})",
                on_step=lambda step: selector.on_step(model, step),
            )
        except TrainingDiverged as error:
            result.status, result.error = "failed", str(error)
            result.timings = {"load": load_seconds, "train": time.perf_counter() - train_start}
            return result
        selection = selector.finish(model)
        result.curves = {**log.curves(), **selector.curve()}
        train_seconds = time.perf_counter() - train_start

        eval_start = time.perf_counter()
        config["engine"] = log.engine
        # One pass: compiling the scorer would cost more than it saves (a TestScorer kept for many passes pays).
        scores = score_videos(method, model, benchmark.test, device, acceleration=Acceleration(spec.precision))
        record_evaluation(result, method, model, benchmark.test, device, scores, log.terms[-1]["loss"])
        result.metrics.update(selection)
        result.timings = run_timings(load_seconds, train_seconds, eval_start, started, steps)
        return result


def record_evaluation(
    result: RunResult, method: Method, model: torch.nn.Module, test: TestSet, device: torch.device,
    scores: list[np.ndarray], final_loss: float,
) -> None:
    """Metrics, per-video scores and (where the method has them) feature magnitudes, into `result`."""
    result.metrics = evaluate(np.concatenate(scores), test)
    result.metrics["final_loss"] = final_loss
    result.scores = dict(zip(test.video_ids, scores, strict=True))
    magnitudes = magnitude_videos(method, model, test, device)
    if magnitudes is not None:
        result.magnitudes = dict(zip(test.video_ids, magnitudes, strict=True))


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
    """``auto`` picks CUDA when available; an unavailable device is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device: unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def flat_config(spec: RunSpec, method_config: Any, dataset_config: Any) -> dict[str, Any]:
    """The full provenance of a run as one flat mapping (``method.k``, ``dataset.mu``, ...)."""
    flat: dict[str, Any] = {"method": spec.method, "dataset": spec.dataset, "seed": spec.seed}
    flat.update({f"method.{k}": v for k, v in dataclasses.asdict(method_config).items()})
    flat.update({f"dataset.{k}": v for k, v in dataclasses.asdict(dataset_config).items()})
    flat["protocol"] = spec.protocol
    return flat


def run_config(
    spec: RunSpec, method_config: Any, dataset_config: Any, benchmark: Benchmark, steps: int
) -> dict[str, Any]:
    """A run's recorded config: the flat options, its schedule and what the adapter reported (``benchmark.*``)."""
    config = flat_config(spec, method_config, dataset_config)
    config["steps"] = steps
    config.update({f"benchmark.{key}": value for key, value in benchmark.meta.items()})
    return config


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


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
