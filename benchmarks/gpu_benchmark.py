"""Full-size RTFM speed on one GPU: every figure of issue 5 from one command (about 9 minutes on an H200).

    python benchmarks/gpu_benchmark.py --out DIR               # the GPU run
    python benchmarks/gpu_benchmark.py --quick --out DIR       # a shorter GPU run (2,000-step schedule)
    python benchmarks/gpu_benchmark.py --tiny --out DIR        # every section at toy sizes, on a CPU

vadbench must be installed (its plugins are entry points); on a machine without network access:
``python3 -m pip install --no-deps --no-build-isolation --no-index .`` from the repository root.

Sections, most important first. Each one's figures are written to DIR/gpu_benchmark.json as soon as
it ends, so a run stopped at its time limit keeps what it measured; a section that fails records its
error and the others go on; a section that would overrun --budget-s is skipped and says so.

1. step: median ms per full-size RTFM training step (batch 32 + 32, C = 10, T = 32, D = 2048) for
   eager fp32, eager bf16, the fast path (bf16 + torch.compile + CUDA graph), and the parts of it
   alone; time of the first steps (compilation, capture); peak GPU memory.
2. profile: torch.profiler tables of the compiled bf16 step (kernels visible) and the eager bf16 step.
3. full run: `Runner.run` of RTFM on `synthetic-shanghaitech` at D = 2048 (238 training videos, 63
   abnormal; 199 test videos, 44 abnormal; T from 13 to 80, mean about 46 like the real set), the
   fast path, --steps steps: wall time including data preparation and the final evaluation; AUC.
4. test pass: one scoring pass over the 199 test videos (batches on the device), fp32, bf16, and bf16
   with torch.compile.
5. agreement: AUC of an eager fp32 run against the fast path, same seed, --compare-steps steps.
6. reference: the public code's data path (reference_loop.py), ms per step over 50 steps.
7. grid: the Table-5 grid (8 variants x 3 seeds): estimated from each variant's measured ms per
   step, or run in full with --grid full.
8. stacked: 3 seeds trained as one stacked model (vadbench.engine.stacking) against one run (fp32 + CUDA graph).
9. extract (issue 18): `vadbench extract` with i3d-r50 at its published width (random weights) on 28
   UCSD-Ped2-shaped clips (frame folders of 360x240 grey .tif frames, 120 to 180 frames each), at --batch 32
   and 64 with 4 decoding workers: the time for the 28 clips and snippets (and crop clips) per second, the
   second of two passes (the first warms the device). Needs Pillow on the machine (PyAV is not used).

Then DIR/summary.md puts the figures beside the issue's targets, and DIR/profile.txt holds the tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from reference_loop import ReferenceLoop, write_videos

import vadbench
from vadbench.api.method import TrainingInput
from vadbench.api.types import RunSpec, TrainSet
from vadbench.engine.acceleration import Acceleration
from vadbench.engine.runner import Runner, seed_everything
from vadbench.engine.sampling import Sampler
from vadbench.engine.scoring import VideoScorer
from vadbench.engine.stacking import stacked_step
from vadbench.engine.training import TrainingLog, TrainingStep, train
from vadbench.methods.rtfm import ABLATIONS
from vadbench.plugins.manager import get_plugins

#: The issue's targets on one H200.
TARGETS = {"step_ms": 6.0, "full_run_s": 100.0, "test_pass_ms": 30.0, "grid_min": 30.0, "auc_points": 0.5}

#: Training-step variants: name -> execution options (the fast path is `--precision bf16 --compile`).
STEP_MODES = {
    "eager_fp32": Acceleration("fp32"),
    "eager_bf16": Acceleration("bf16"),
    "fast": Acceleration("bf16", compile=True),
    "graph_bf16": Acceleration("bf16", cuda_graph=True),
    "compile_bf16": Acceleration("bf16", compile=True, cuda_graph=False),
    "graph_fp32": Acceleration("fp32", cuda_graph=True),
}


@dataclass(frozen=True)
class Sizes:
    """Problem sizes and repetition counts of one benchmark run."""

    crops: int = 10
    dim: int = 2048
    batch: int = 32
    train_abnormal: int = 63
    train_normal: int = 175
    steps: int = 15000
    compare_steps: int = 2000
    warmup_steps: int = 10
    timed_steps: int = 100
    reference_steps: int = 50
    test_passes: int = 10
    grid_timed_steps: int = 50
    dataset_options: dict[str, Any] = field(default_factory=lambda: {"feature_dim": 2048})


QUICK = Sizes(steps=2000, compare_steps=500, timed_steps=50, reference_steps=20, test_passes=5, grid_timed_steps=30)
TINY = Sizes(
    crops=2, dim=32, batch=4, train_abnormal=8, train_normal=8, steps=40, compare_steps=20, warmup_steps=4,
    timed_steps=5, reference_steps=3, test_passes=2, grid_timed_steps=3,
    dataset_options={"feature_dim": 32, "crops": 2, "train_abnormal": 8, "train_normal": 8,
                     "test_abnormal": 4, "test_normal": 6},
)


class Budget:
    """Seconds left before --budget-s runs out."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


class Report:
    """The results dictionary, saved after every section (written to a temporary file, then renamed)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.data: dict[str, Any] = {}

    def save(self) -> None:
        path = self.out / "gpu_benchmark.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=2, default=str))
        temporary.replace(path)


class Bench:
    """Shared state of the sections: device, sizes, plugins, the runner and what earlier sections found."""

    def __init__(self, args: argparse.Namespace, sizes: Sizes, device: torch.device, report: Report) -> None:
        self.args, self.sizes, self.device, self.report = args, sizes, device, report
        self.budget = Budget(args.budget_s)
        self.plugins = get_plugins()
        self.runner = Runner(self.plugins, progress=False)
        self.data_seconds = 0.0
        self.train = self.random_train_set()
        self.train_features = torch.as_tensor(self.train.features, device=device)
        self.profiled_steps: dict[str, TrainingStep] = {}

    # ---- helpers -------------------------------------------------------------------------------------

    def section(self, name: str, expected_s: float, function: Callable[[], dict[str, Any]]) -> None:
        """Run one section if it fits the budget; record its figures, its error or why it was skipped."""
        left = self.budget.left()
        if expected_s > left:
            self.report.data[name] = {"skipped": f"needs about {expected_s:.0f} s, {left:.0f} s left"}
            print(f"[{name}] skipped: needs about {expected_s:.0f} s, {left:.0f} s left", flush=True)
            self.report.save()
            return
        print(f"[{name}] starting (expected about {expected_s:.0f} s, {left:.0f} s left)", flush=True)
        start = time.perf_counter()
        try:
            figures = function()
        except Exception as error:  # a failed section is a finding; the others still run
            figures = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc(limit=8)}
            print(f"[{name}] FAILED: {type(error).__name__}: {error}", flush=True)
        figures["section_s"] = round(time.perf_counter() - start, 2)
        self.report.data[name] = figures
        self.report.save()
        print(f"[{name}] done in {figures['section_s']:.1f} s", flush=True)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_memory(self) -> None:
        if self.device.type == "cuda":
            self.sync()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gb(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return round(torch.cuda.max_memory_allocated(self.device) / 2**30, 3)

    def random_train_set(self) -> TrainSet:
        """Pooled training features of the benchmark's shape (values do not matter for speed)."""
        s = self.sizes
        count = s.train_abnormal + s.train_normal
        rng = np.random.default_rng(0)
        features = rng.random((count, s.crops, 32, s.dim), dtype=np.float32)
        labels = np.array([1] * s.train_abnormal + [0] * s.train_normal, dtype=np.int8)
        return TrainSet(features, labels, tuple(map(str, range(count))))

    def step_for(self, method_name: str, acceleration: Acceleration, seed: int = 0) -> TrainingStep:
        """A training step of `method_name` on the random training set, on the device."""
        method = self.plugins.methods.create(method_name, {"batch_size": self.sizes.batch})
        seed_everything(seed)
        model = method.build(self.sizes.crops, self.sizes.dim).to(self.device).train()
        sampler = Sampler.create(self.train, self.train_features, TrainingInput(), method.batch_size, seed)
        return TrainingStep.for_method(method, model, method.optimizer(model.parameters()), sampler, acceleration)

    def time_steps(self, step: Callable[[], Any], warmup: int, count: int) -> dict[str, Any]:
        """First-steps time, median per-step time (CUDA events; host clock on a CPU), wall per step."""
        start = time.perf_counter()
        for _ in range(warmup):
            step()
        self.sync()
        first = time.perf_counter() - start
        per_step: list[float] = []
        wall_start = time.perf_counter()
        if self.device.type == "cuda":
            events = [tuple(torch.cuda.Event(enable_timing=True) for _ in "ab") for _ in range(count)]
            for begin, end in events:
                begin.record()
                step()
                end.record()
            self.sync()
            per_step = [begin.elapsed_time(end) for begin, end in events]
        else:
            for _ in range(count):
                t = time.perf_counter()
                step()
                per_step.append(1000 * (time.perf_counter() - t))
        wall = time.perf_counter() - wall_start
        return {
            "median_ms": round(statistics.median(per_step), 3),
            "min_ms": round(min(per_step), 3),
            "wall_ms_per_step": round(1000 * wall / count, 3),
            "first_steps_s": round(first, 2),
            "warmup_steps": warmup,
            "timed_steps": count,
        }

    def benchmark_spec(self, **changes: Any) -> RunSpec:
        s = self.sizes
        spec = RunSpec("rtfm", dataset="synthetic-shanghaitech", dataset_options=dict(s.dataset_options),
                       method_options={"batch_size": s.batch}, seed=0, steps=s.steps, device=str(self.device))
        return replace(spec, **changes)

    def fast_ms(self) -> float | None:
        return self.report.data.get("step", {}).get("fast", {}).get("median_ms")

    # ---- sections ------------------------------------------------------------------------------------

    def environment(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "date_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "device": str(self.device),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "vadbench": vadbench.__version__,
            "revision": self.args.revision or git_revision(),
            "cpu_count": os.cpu_count(),
            "sizes": asdict(self.sizes),
            "tiny": self.args.tiny,
        }
        try:
            import triton

            found["triton"] = triton.__version__
        except ImportError:
            found["triton"] = None
        if self.device.type == "cuda":
            properties = torch.cuda.get_device_properties(self.device)
            found.update(gpu=properties.name, gpu_memory_gb=round(properties.total_memory / 2**30, 1),
                         capability=f"{properties.major}.{properties.minor}",
                         multiprocessors=properties.multi_processor_count, driver=nvidia_driver())
        return found

    def steps_section(self) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        for name, acceleration in STEP_MODES.items():
            if name != "fast" and self.budget.left() < 60:  # keep time for the sections that follow
                figures[name] = {"skipped": "budget"}
                continue
            self.reset_memory()
            try:
                step = self.step_for("rtfm", acceleration)
                measured = self.time_steps(step, self.sizes.warmup_steps, self.sizes.timed_steps)
                measured.update(engine=step.engine, peak_memory_gb=self.peak_gb())
                if name in ("fast", "compile_bf16", "eager_bf16"):
                    self.profiled_steps[name] = step
            except Exception as error:  # one mode failing must not hide the others
                measured = {"error": f"{type(error).__name__}: {error}"}
            figures[name] = measured
            print(f"  step {name}: {measured}", flush=True)
        return figures

    def profile_section(self) -> dict[str, Any]:
        from torch.profiler import ProfilerActivity, profile

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
        sort = "self_cuda_time_total" if self.device.type == "cuda" else "self_cpu_time_total"
        tables, figures = [], {}
        for name in ("compile_bf16", "eager_bf16", "fast"):
            step = self.profiled_steps.get(name)
            if step is None:
                continue
            with profile(activities=activities) as prof:
                for _ in range(10):
                    step()
                self.sync()
            averages = prof.key_averages()
            tables.append(f"==== {name} ({step.engine}), 10 steps, sorted by {sort} ====\n"
                          + averages.table(sort_by=sort, row_limit=25))
            figures[name] = top_kernels(averages, self.device)
        (self.report.out / "profile.txt").write_text("\n\n".join(tables))
        self.profiled_steps.clear()  # their graphs hold device memory
        return figures

    def load_data(self) -> None:
        """Generate the ShanghaiTech-shaped set once (the runner keeps it for every later run)."""
        _, self.data_seconds = self.runner.benchmark(self.benchmark_spec())

    def full_run_section(self) -> dict[str, Any]:
        self.reset_memory()
        start = time.perf_counter()
        self.load_data()
        result = self.runner.run(self.benchmark_spec(precision="bf16", compile=True))
        wall = time.perf_counter() - start
        self.full_run = result
        return {
            "status": result.status,
            "error": result.error,
            "engine": result.config.get("engine"),
            "steps": result.config.get("steps"),
            "wall_s": round(wall, 2),
            "data_preparation_s": round(self.data_seconds, 2),
            "train_s": round(result.timings.get("train", float("nan")), 2),
            "evaluate_s": round(result.timings.get("evaluate", float("nan")), 2),
            "ms_per_step_in_run": round(result.timings.get("ms_per_step", float("nan")), 3),
            "auc": result.metrics.get("auc"),
            "ap": result.metrics.get("ap"),
            "peak_memory_gb": self.peak_gb(),
        }

    def test_pass_section(self) -> dict[str, Any]:
        benchmark, _ = self.runner.benchmark(self.benchmark_spec())
        test = benchmark.test
        method = self.plugins.methods.create("rtfm")
        seed_everything(0)
        model = method.build(test.features.shape[1], test.features.shape[2]).to(self.device)
        figures: dict[str, Any] = {"videos": len(test), "snippets": int(test.lengths.sum())}
        for name, acceleration in (("fp32", Acceleration("fp32")), ("bf16", Acceleration("bf16")),
                                   ("compile_bf16", Acceleration("bf16", compile=True))):
            if acceleration.compile and self.budget.left() < 120:
                figures[name] = {"skipped": "budget"}
                continue
            start = time.perf_counter()
            scorer = VideoScorer(method, test, self.device, acceleration=acceleration)
            self.sync()
            prepare = time.perf_counter() - start
            start = time.perf_counter()
            scorer(model)
            first = time.perf_counter() - start
            passes = []
            for _ in range(self.sizes.test_passes):
                start = time.perf_counter()
                scorer(model)  # ends with the scores on the host
                passes.append(1000 * (time.perf_counter() - start))
            figures[name] = {"median_ms": round(statistics.median(passes), 2), "min_ms": round(min(passes), 2),
                             "first_pass_s": round(first, 2), "prepare_s": round(prepare, 2),
                             "batches": len(scorer.batches), "engine": scorer.engine}
            print(f"  test pass {name}: {figures[name]}", flush=True)
        return figures

    def agreement_section(self) -> dict[str, Any]:
        steps = self.sizes.compare_steps
        eager = self.runner.run(self.benchmark_spec(steps=steps))
        if steps == self.sizes.steps and hasattr(self, "full_run"):
            fast = self.full_run
        else:
            fast = self.runner.run(self.benchmark_spec(steps=steps, precision="bf16", compile=True))
        points = 100 * abs(fast.metrics["auc"] - eager.metrics["auc"])
        # Determinism on the GPU: the same fast spec and seed once more (docs/reliability.md).
        again = self.runner.run(self.benchmark_spec(steps=steps, precision="bf16", compile=True))
        gaps = [float(np.max(np.abs(again.scores[v] - fast.scores[v]))) for v in fast.scores]
        return {
            "rerun": {"auc_difference_points": round(100 * abs(again.metrics["auc"] - fast.metrics["auc"]), 4),
                      "max_score_difference": max(gaps),
                      "bit_identical": all(np.array_equal(again.scores[v], fast.scores[v]) for v in fast.scores)},
            "steps": steps, "seed": 0,
            **{name: {"auc": r.metrics["auc"], "engine": r.config["engine"], "train_s": round(r.timings["train"], 2)}
               for name, r in (("eager_fp32", eager), ("fast", fast))},
            "auc_difference_points": round(points, 3),
            "note": "same seed, data and batches; dropout masks come from different random streams "
                    "(compiled code draws its own), so the gap includes that as well as bf16 rounding",
        }

    def reference_section(self) -> dict[str, Any]:
        s = self.sizes
        rng = np.random.default_rng(1)
        lengths = rng.integers(13, 81, size=s.train_abnormal + s.train_normal)  # the preset's T range
        folder = Path(tempfile.mkdtemp(prefix="vadbench-reference-"))
        try:
            start = time.perf_counter()
            paths = write_videos(folder, (rng.random((int(n), s.crops, s.dim), dtype=np.float32) for n in lengths))
            write_s = time.perf_counter() - start
            method = self.plugins.methods.create("rtfm", {"batch_size": s.batch})
            seed_everything(0)
            model = method.build(s.crops, s.dim).to(self.device)
            abnormal, normal = paths[: s.train_abnormal], paths[s.train_abnormal :]
            loop = ReferenceLoop(method, model, normal, abnormal, s.batch, self.device)
            for _ in range(2):
                loop.step()
            loop.data_seconds = 0.0
            per_step = []
            for _ in range(s.reference_steps):
                start = time.perf_counter()
                loop.step()
                per_step.append(1000 * (time.perf_counter() - start))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        figures = {
            "median_ms": round(statistics.median(per_step), 1),
            "mean_ms": round(statistics.fmean(per_step), 1),
            "data_ms_per_step": round(1000 * loop.data_seconds / s.reference_steps, 1),
            "steps": s.reference_steps,
            "files_written_s": round(write_s, 1),
        }
        if self.fast_ms():
            figures["speedup_of_fast_step"] = round(figures["median_ms"] / self.fast_ms(), 1)
        return figures

    def grid_section(self) -> dict[str, Any]:
        variants = ["rtfm", *ABLATIONS]
        if self.args.grid == "full":
            return self.full_grid(variants)
        per_variant = {}
        for name in variants:
            step = self.step_for(name, Acceleration("bf16", cuda_graph=True))
            per_variant[name] = self.time_steps(step, 5, self.sizes.grid_timed_steps)["median_ms"]
        figures: dict[str, Any] = {"graph_bf16_ms_per_step": per_variant, "seeds": 3, "steps": self.sizes.steps}
        run = self.report.data.get("full_run", {})
        if "wall_s" in run and self.fast_ms():
            # Per-run cost beyond the steps (placement, compile, capture, evaluation), from the full run.
            fixed = run["wall_s"] - run["data_preparation_s"] - self.sizes.steps * run["ms_per_step_in_run"] / 1000
            graph_ms = self.report.data["step"].get("graph_bf16", {}).get("median_ms")
            scale = self.fast_ms() / graph_ms if graph_ms else 1.0
            total = run["data_preparation_s"] + sum(
                3 * (self.sizes.steps * ms * scale / 1000 + fixed) for ms in per_variant.values()
            )
            figures.update(per_run_fixed_s=round(fixed, 1), fast_over_graph_bf16=round(scale, 3),
                           estimated_grid_min=round(total / 60, 1),
                           method="estimate: 3 seeds x (steps x variant ms/step x (fast / graph_bf16 on full RTFM) "
                                  "+ per-run fixed cost of the full run) + one data preparation")
        return figures

    def full_grid(self, variants: list[str]) -> dict[str, Any]:
        start = time.perf_counter()
        runs = {}
        for name in variants:
            for seed in range(3):
                result = self.runner.run(self.benchmark_spec(method=name, seed=seed, precision="bf16", compile=True))
                runs[f"{name}/seed{seed}"] = {"auc": result.metrics.get("auc"), "status": result.status,
                                              "total_s": round(result.timings.get("total", float("nan")), 1)}
        return {"runs": runs, "grid_min": round((time.perf_counter() - start + self.data_seconds) / 60, 2)}

    def extract_section(self) -> dict[str, Any]:
        from PIL import Image

        from vadbench.cli import main as vadbench

        tiny = self.args.tiny
        options = {"width": 4, "crops": "center"} if tiny else {}
        lengths = [20, 24] if tiny else np.random.default_rng(0).integers(120, 181, 28).tolist()
        figures: dict[str, Any] = {"clips": len(lengths), "frames": int(sum(lengths))}
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            torch.manual_seed(0)
            weights = root / "i3d_r50.pt"
            torch.save(self.plugins.extractors.create("i3d-r50", options).build().state_dict(), weights)
            rng = np.random.default_rng(1)
            for index, frames in enumerate(lengths):
                clip = root / "ped2" / f"Clip{index:03d}"
                clip.mkdir(parents=True)
                for frame in range(frames):
                    pixels = rng.integers(0, 256, (240, 360), dtype=np.uint8)
                    Image.fromarray(pixels, mode="L").save(clip / f"{frame + 1:03d}.tif")
            settings = [f"--set={key}={value}" for key, value in options.items()]
            for batch in (2,) if tiny else (32, 64):
                for attempt in ("warm-up", "timed"):
                    out = root / f"features-{batch}-{attempt}"
                    start = time.perf_counter()
                    code = vadbench(["extract", "--extractor", "i3d-r50", "--weights", str(weights), *settings,
                                     "--device", str(self.device), "--batch", str(batch), "--workers", "4",
                                     "--out", str(out), str(root / "ped2")])
                    self.sync()
                    seconds = time.perf_counter() - start
                    if code != 0:
                        raise RuntimeError(f"vadbench extract exited with {code}")
                record = json.loads((out / "vadbench-extract.json").read_text())
                snippets = sum(video["snippets"] for video in record["videos"].values())
                crops = 1 if tiny else 10
                figures[f"batch_{batch}"] = {"clips_s": round(seconds, 2), "snippets": snippets,
                                             "snippets_per_s": round(snippets / seconds, 1),
                                             "crop_clips_per_s": round(snippets * crops / seconds, 1)}
        return figures

    def stacked_section(self) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        acceleration = Acceleration("fp32", cuda_graph=True)  # stacking is fp32 only (vadbench.engine.stacking)
        for count in (1, 3):
            method = self.plugins.methods.create("rtfm", {"batch_size": self.sizes.batch})
            models, samplers = [], []
            for seed in range(count):
                seed_everything(seed)
                models.append(method.build(self.sizes.crops, self.sizes.dim).to(self.device))
                samplers.append(
                    Sampler.create(self.train, self.train_features, TrainingInput(), method.batch_size, seed)
                )
            steps = self.sizes.warmup_steps + self.sizes.timed_steps // 2
            self.reset_memory()
            start = time.perf_counter()
            step, _ = stacked_step(method, models, samplers, acceleration, steps)
            logs = [TrainingLog() for _ in models]
            train(step, steps, logs, progress=False)
            self.sync()
            wall = time.perf_counter() - start
            figures[f"runs_{count}"] = {"ms_per_run_step": round(1000 * wall / steps / count, 3),
                                        "engine": logs[0].engine, "peak_memory_gb": self.peak_gb(),
                                        "note": "wall time including the first (capture) steps"}
        return figures


def top_kernels(averages: Any, device: torch.device, count: int = 12) -> list[dict[str, Any]]:
    """The operations that took the most device (or CPU) time, in ms per step over the 10 profiled steps."""
    cuda = device.type == "cuda"

    def own_time(event: Any) -> float:
        if not cuda:
            return float(event.self_cpu_time_total)
        return float(getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0))

    rows = sorted(averages, key=own_time, reverse=True)[:count]
    return [{"name": row.key[:80], "ms_per_step": round(own_time(row) / 1000 / 10, 3), "calls": row.count // 10}
            for row in rows]


def nvidia_driver() -> str | None:
    try:
        output = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20, check=False)
    except OSError:
        return None
    return output.stdout.strip() or None


def git_revision() -> str | None:
    try:
        output = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    return output.stdout.strip() or None


def summary_markdown(data: dict[str, Any]) -> str:
    """The figures beside the issue's targets, then the rest, as markdown."""
    env = data.get("environment", {})
    step, run, test = data.get("step", {}), data.get("full_run", {}), data.get("test_pass", {})
    agreement, grid, reference = data.get("agreement", {}), data.get("grid", {}), data.get("reference", {})
    lines = [
        "# vadbench GPU benchmark (issue 5)",
        "",
        f"{env.get('date_utc')} · {env.get('gpu', env.get('device'))} · driver {env.get('driver')} · "
        f"torch {env.get('torch')} (CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}, Triton {env.get('triton')}) · "
        f"vadbench {env.get('vadbench')} @ {env.get('revision')}" + (" · **tiny sizes**" if env.get("tiny") else ""),
        "",
        "| target | goal | measured | met |",
        "|---|---|---|---|",
        target_row("full-size training step, fast path (median)", "<= 6 ms", get(step, "fast", "median_ms"), "ms",
                   TARGETS["step_ms"]),
        target_row(f"full run ({run.get('steps')} steps) incl. data preparation and evaluation", "<= 100 s",
                   run.get("wall_s"), "s", TARGETS["full_run_s"]),
        target_row("one test pass over 199 videos (bf16, batches on the device)", "<= 30 ms",
                   get(test, "bf16", "median_ms"), "ms", TARGETS["test_pass_ms"]),
        target_row("Table-5 grid, 8 variants x 3 seeds" + (" (estimate)" if "estimated_grid_min" in grid else ""),
                   "<= 30 min", grid.get("estimated_grid_min", grid.get("grid_min")), "min", TARGETS["grid_min"]),
        target_row(f"AUC gap, fast vs eager fp32, same seed ({agreement.get('steps')} steps)", "<= 0.5 points",
                   agreement.get("auc_difference_points"), "points", TARGETS["auc_points"]),
        target_row("AUC gap, the fast run repeated (same spec and seed)", "<= 0.5 points",
                   get(agreement, "rerun", "auc_difference_points"), "points", TARGETS["auc_points"]),
        "",
        f"The full run follows the step section in the same process, so it reuses the compile caches: the fast "
        f"step's first {get(step, 'fast', 'warmup_steps')} steps there (cold compile and capture) took "
        f"{get(step, 'fast', 'first_steps_s')} s. The full run's wall time splits into data preparation "
        f"{run.get('data_preparation_s')} s, training {run.get('train_s')} s and final evaluation "
        f"{run.get('evaluate_s')} s.",
        "",
        "## Training step (batch 32 + 32, C = 10, T = 32, D = 2048)",
        "",
        "| mode | engine | median ms | wall ms/step | first steps s | peak GB |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in step.items():
        if isinstance(figures, dict):
            median = figures.get("median_ms", figures.get("error", figures.get("skipped")))
            cells = [figures.get(k, "") for k in ("wall_ms_per_step", "first_steps_s", "peak_memory_gb")]
            lines.append(f"| {name} | {figures.get('engine', '')} | {median} | " + " | ".join(map(str, cells)) + " |")
    others = {k: data.get(k) for k in ("full_run", "test_pass", "agreement", "reference", "grid", "stacked",
                                       "extract")}
    lines += ["", "## Other figures", "", "```json", json.dumps(others, indent=1, default=str), "```", ""]
    if "error" in reference or "error" in run:
        lines.append("Some sections failed: see gpu_benchmark.json.")
    profile = data.get("profile", {}).get("compile_bf16")
    if profile:
        lines += ["## Where the time goes (compiled bf16 step, top kernels)", "", "| kernel | ms/step | calls |",
                  "|---|---|---|"]
        lines += [f"| `{row['name']}` | {row['ms_per_step']} | {row['calls']} |" for row in profile]
    return "\n".join(lines) + "\n"


def get(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    return data if data != {} else None


def target_row(what: str, goal: str, value: Any, unit: str, limit: float) -> str:
    if not isinstance(value, int | float):
        return f"| {what} | {goal} | not measured | - |"
    return f"| {what} | {goal} | {value} {unit} | {'yes' if value <= limit else 'NO'} |"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu-benchmark"), help="output folder (default: $OUT)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cuda, cpu")
    parser.add_argument("--tiny", action="store_true", help="toy sizes: checks every section on a CPU in minutes")
    parser.add_argument("--quick", action="store_true", help="shorter GPU run: 2,000-step schedule, fewer repeats")
    parser.add_argument("--steps", type=int, help="steps of the full run (default 15000)")
    parser.add_argument("--compare-steps", type=int, help="steps of the fast/eager AUC comparison (default 2000)")
    parser.add_argument("--grid", choices=["off", "estimate", "full"], default="estimate",
                        help="Table-5 grid: estimate from measured steps (default), run it in full, or skip")
    parser.add_argument("--budget-s", type=float, default=540.0,
                        help="seconds this script may take; sections that would overrun are skipped (default 540)")
    parser.add_argument("--compile-backend", default=None,
                        help="torch.compile backend (default: inductor; --tiny on a CPU uses aot_eager)")
    parser.add_argument("--revision", help="vadbench revision to record (default: git rev-parse, if a checkout)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    sizes = TINY if args.tiny else QUICK if args.quick else Sizes()
    sizes = replace(sizes, steps=args.steps or sizes.steps, compare_steps=args.compare_steps or sizes.compare_steps)
    backend = args.compile_backend or ("aot_eager" if args.tiny and device.type == "cpu" else None)
    if backend:
        # Only for checking this script on a CPU: inductor takes minutes per graph there.
        torch.compile = functools.partial(torch.compile, backend=backend)  # type: ignore[assignment]
    torch.backends.cudnn.benchmark = True  # as vadbench.engine.training sets it around every CUDA run
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out)
    bench = Bench(args, sizes, device, report)
    report.data["environment"] = bench.environment()
    report.data["environment"]["compile_backend"] = backend or "inductor"
    report.save()
    print(json.dumps(report.data["environment"], default=str), flush=True)

    bench.section("step", 240, bench.steps_section)
    bench.section("profile", 15, bench.profile_section)
    fast_s = (bench.fast_ms() or 10.0) * sizes.steps / 1000
    bench.section("full_run", fast_s + 60, bench.full_run_section)
    bench.section("test_pass", 30, bench.test_pass_section)
    eager_ms = get(report.data, "step", "eager_fp32", "median_ms") or 30.0
    bench.section("agreement", sizes.compare_steps * (eager_ms + 2 * (bench.fast_ms() or 10.0)) / 1000 + 40,
                  bench.agreement_section)
    bench.section("reference", sizes.reference_steps * 0.8 + 20, bench.reference_section)
    if args.grid != "off":
        grid_s = 9 * 10 if args.grid == "estimate" else 24 * (fast_s + 30)
        bench.section("grid", grid_s, bench.grid_section)
    bench.section("stacked", 30, bench.stacked_section)
    bench.section("extract", 150, bench.extract_section)
    (out / "summary.md").write_text(summary_markdown(report.data))
    print((out / "summary.md").read_text(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
