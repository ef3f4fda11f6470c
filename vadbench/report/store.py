"""The run store: one folder per run key under ``<out>/runs/``, written atomically, read back for tables.

Each run folder holds ``scores.npz`` (per-video snippet scores), ``magnitudes.npz`` (per-video feature
magnitudes, for methods that have them), ``curves.json`` (training curves, `RunStore.curves`) and
``result.json``; the JSON is
written last, by rename, so a folder without it is an unfinished run and is simply redone. Two
processes finishing the same run write identical files, and rename keeps either one whole.

What the report path needs of a benchmark's test set (`TestTruth`: ground truth, video ids, labels and
classes, input feature magnitudes) is stored once per benchmark under ``<out>/benchmarks/<id>/``
(``test.npz``, then ``benchmark.json`` by rename), so that tables and figures need no data root.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vadbench.api.errors import UsageError
from vadbench.api.mapped import release
from vadbench.api.types import RunResult, RunSpec, TestSet
from vadbench.data.atomic import atomic_write
from vadbench.data.pooling import pool_segments
from vadbench.plan.specs import canonical
from vadbench.report.aggregate import has_report_metadata, recorded
from vadbench.report.frame import run_frame
from vadbench.report.metrics import METRICS

if TYPE_CHECKING:
    from vadbench.plugins.manager import Plugins

RESULT_FILE = "result.json"
SCORES_FILE = "scores.npz"
MAGNITUDES_FILE = "magnitudes.npz"
BENCHMARK_FILE = "benchmark.json"
TEST_FILE = "test.npz"
CURVES_FILE = "curves.json"


@dataclass(frozen=True, eq=False)
class TestTruth:
    """What tables and figures need of a benchmark's test set, without its features: the videos (ids,
    labels, classes), the frame ground truth with each video's snippet offsets, and the magnitudes of the
    input features pooled to the training segments (`input_magnitudes`)."""

    __test__ = False  # not a pytest test class, despite the name

    video_ids: tuple[str, ...]
    labels: np.ndarray
    classes: tuple[str, ...]
    offsets: np.ndarray
    frame_labels: np.ndarray
    snippet_frames: int
    input_magnitudes: np.ndarray  # (V, TRAIN_SEGMENTS)

    @classmethod
    def of(cls, test: TestSet) -> TestTruth:
        return cls(tuple(test.video_ids), np.asarray(test.labels), tuple(test.classes), np.asarray(test.offsets),
                   np.asarray(test.frame_labels), test.snippet_frames, input_magnitudes(test))

    def __len__(self) -> int:
        return len(self.video_ids)

    def frames(self, video: int) -> np.ndarray:
        """The frame ground truth of test video `video` (its index)."""
        f = self.snippet_frames
        return self.frame_labels[f * self.offsets[video] : f * self.offsets[video + 1]]

    def snippet_truth(self, video: int) -> np.ndarray:
        """Share of abnormal frames of each snippet of test video `video` (0 or 1 for aligned annotations)."""
        return np.asarray(self.frames(video), dtype=float).reshape(-1, self.snippet_frames).mean(axis=1)


def input_magnitudes(test: TestSet) -> np.ndarray:
    """(V, TRAIN_SEGMENTS): per test video, the L2 norms of its features pooled to the training segments as
    in training, averaged over crops: the magnitudes before any learning (a separability figure's baseline).
    Video by video, the pages of a memory-mapped test set released after each (`vadbench.api.mapped`)."""
    magnitudes = []
    for video in range(len(test)):
        magnitudes.append(np.linalg.norm(pool_segments(test.video(video)), axis=2).mean(axis=0))
        release(test.features)
    return np.stack(magnitudes)


def benchmark_id(spec: RunSpec) -> str:
    """The name of the benchmark (dataset, the options that define its data, its fingerprint) a run used."""
    blob = json.dumps({"dataset": spec.dataset, "dataset_options": spec.dataset_options, "data": spec.data},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class RunStore:
    """Results of finished runs, keyed by `RunSpec.key`, and the test ground truth of their benchmarks."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"
        self.benchmarks = self.root / "benchmarks"

    def ensure_writable(self) -> None:
        """Create the store, or say which folder cannot be written."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.runs, prefix=".probe-"):
                pass
        except OSError as error:
            raise UsageError(f"--out {self.root}: cannot write results there ({error.strerror})") from None

    def folder(self, spec: RunSpec) -> Path:
        return self.runs / spec.key

    def is_finished(self, spec: RunSpec) -> bool:
        """True when a successful result of `spec` is stored (failed runs are tried again)."""
        path = self.folder(spec) / RESULT_FILE
        if not path.is_file():
            return False
        try:
            return json.loads(path.read_text()).get("status") == "ok"
        except (OSError, ValueError):
            return False

    def write(self, result: RunResult) -> Path:
        """Store `result`: per-video arrays first, then the JSON record that marks the run as finished.

        A write that fails (a full disk, a folder made read-only mid-grid) is a usage error naming the
        folder; the run stays unfinished and is redone next time.
        """
        folder = self.folder(result.spec)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, key, per_video in (
                (SCORES_FILE, "scores", result.scores),
                (MAGNITUDES_FILE, "magnitudes", result.magnitudes),
            ):
                if per_video:
                    _write_per_video(folder / name, key, per_video)
            if result.curves:
                curves = json.dumps(result.curves).encode()
                atomic_write(folder / CURVES_FILE, lambda f: f.write(curves))
            record = json.dumps(result.to_dict(), indent=2, sort_keys=True, default=_json_default)
            atomic_write(folder / RESULT_FILE, lambda f: f.write(record.encode()))
        except OSError as error:
            raise UsageError(f"--out {self.root}: cannot store run {result.spec.key} in {folder} "
                             f"({error.strerror or error})") from None
        return folder

    def result(self, spec: RunSpec) -> RunResult:
        """The stored result of `spec`."""
        return _read_result(self.folder(spec) / RESULT_FILE)

    def scores(self, spec: RunSpec) -> dict[str, np.ndarray]:
        """Per-video snippet scores of a stored run."""
        return _read_per_video(self.folder(spec) / SCORES_FILE, "scores")

    def magnitudes(self, spec: RunSpec) -> dict[str, np.ndarray]:
        """Per-video snippet feature magnitudes of a stored run (empty when its method has none)."""
        path = self.folder(spec) / MAGNITUDES_FILE
        return _read_per_video(path, "magnitudes") if path.is_file() else {}

    def curves(self, spec: RunSpec) -> dict[str, Any]:
        """The training curves of a stored run; empty for runs stored before vadbench kept them.

        ``steps`` and ``terms`` (name -> values): the loss terms as training logged them (every 50
        steps and the last); for a selecting protocol, ``selection``: its ``metric`` (a name), the
        ``steps`` it checked and the ``values`` there (None where not finite), and ``selected_step``.
        """
        path = self.folder(spec) / CURVES_FILE
        if not path.is_file():
            return {}
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            raise UsageError(f"{path}: not a vadbench curves file ({error})") from None

    def has_test_truth(self, spec: RunSpec) -> bool:
        return (self.benchmarks / benchmark_id(spec) / BENCHMARK_FILE).is_file()

    def write_test_truth(self, spec: RunSpec, truth: TestTruth) -> None:
        """Store the test ground truth of `spec`'s benchmark: arrays first, then the JSON that marks them whole."""
        folder = self.benchmarks / benchmark_id(spec)
        arrays: dict[str, Any] = {"video_ids": np.array(truth.video_ids, dtype=str), "labels": truth.labels,
                  "classes": np.array(truth.classes, dtype=str), "offsets": truth.offsets,
                  "frame_labels": truth.frame_labels, "input_magnitudes": truth.input_magnitudes}
        record = json.dumps({"dataset": spec.dataset, "dataset_options": spec.dataset_options, "data": spec.data,
                             "snippet_frames": truth.snippet_frames}, indent=2, sort_keys=True, default=_json_default)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / TEST_FILE, lambda f: np.savez_compressed(f, **arrays))
            atomic_write(folder / BENCHMARK_FILE, lambda f: f.write(record.encode()))
        except OSError as error:
            raise UsageError(f"--out {self.root}: cannot store the test set of {spec.dataset} in {folder} "
                             f"({error.strerror or error})") from None

    def test_truth(self, spec: RunSpec) -> TestTruth:
        """The stored test ground truth of `spec`'s benchmark; a usage error saying how to store it when absent."""
        folder = self.benchmarks / benchmark_id(spec)
        path = folder / BENCHMARK_FILE
        if not path.is_file():
            raise UsageError(f"{self.root}: no test set stored for the {spec.dataset} runs (expected {path}; runs "
                             "stored by an older vadbench lack it): repeat the `vadbench run` or `vadbench grid` "
                             "command that made them, which skips the finished runs and stores it")
        try:
            snippet_frames = int(json.loads(path.read_text())["snippet_frames"])
            with np.load(folder / TEST_FILE, allow_pickle=False) as data:
                return TestTruth(tuple(map(str, data["video_ids"])), data["labels"], tuple(map(str, data["classes"])),
                                 data["offsets"], data["frame_labels"], snippet_frames, data["input_magnitudes"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UsageError(f"{folder}: not a stored vadbench test set ({error})") from None


def load_results(root: str | Path, upgrade: Callable[[RunResult], RunResult] | None = None) -> list[RunResult]:
    """One result per run stored under `root`, in key order; a folder without any is a usage error.

    `upgrade` maps a result stored by an older version (without `vadbench.report.aggregate.report_metadata`) to
    the form this version stores (`upgrade_stored`: its canonical spec, for one, as an
    older version may have stored a run under a key that named default values); it is called only for
    such results, so a store written by this version is read without any plugin. Several results
    of one run (one key) count once: the newest, by the modification time of its ``result.json``,
    which is written last, when the run finished (ties: the last folder in name order). Where they
    differ in their numbers (copied from another machine, or made by a version that keyed less), a
    `ConflictingResults` warning names them all: one key, two numbers, never chosen silently.
    """
    store = RunStore(root)
    if not store.runs.is_dir():
        raise UsageError(f"{root}: no vadbench results here (expected a runs/ folder written by `vadbench run`)")
    stored: dict[str, list[tuple[float, Path, RunResult]]] = {}
    for path in sorted(store.runs.glob(f"*/{RESULT_FILE}")):
        result = _read_result(path)
        if upgrade is not None and not has_report_metadata(result):
            result = upgrade(result)
        stored.setdefault(result.spec.key, []).append((path.stat().st_mtime, path.parent, result))
    chosen = []
    for key in sorted(stored):
        copies = sorted(stored[key], key=lambda copy: copy[0])  # stable: ties keep the folder-name order
        if len({_numbers(result) for _, _, result in copies}) > 1:
            warnings.warn(ConflictingResults(key, [(folder, result) for _, folder, result in copies]), stacklevel=2)
        chosen.append(copies[-1][2])
    return chosen


def upgrade_stored(plugins: Plugins, result: RunResult) -> RunResult:
    """A result stored by an older version, as this version stores it: the options that only locate the
    data moved out of its key, its spec canonical (an older version may have stored a run under a key that
    named default values) and its plugins' report metadata in its config. A result whose method, dataset
    or options this installation does not know stays as it was stored."""
    spec = result.spec
    try:
        plugins.methods.config(spec.method, spec.method_options)
        plugins.datasets.config(spec.dataset, spec.full_dataset_options())
    except UsageError:
        return result
    access = plugins.datasets.get(spec.dataset).cls.access_options
    located = replace(spec, dataset_options={k: v for k, v in spec.dataset_options.items() if k not in access},
                      dataset_access={**spec.dataset_access,
                                      **{k: v for k, v in spec.dataset_options.items() if k in access}})
    # The revision it was made with stays: a run of an older revision of the method is another run.
    upgraded = replace(canonical(plugins, located), method_revision=spec.method_revision)
    return replace(result, spec=upgraded, config={**result.config, **recorded(plugins, spec)})


def results(store: str | Path) -> pd.DataFrame:
    """Every run stored under `store` (a folder written by ``vadbench run --out``), one row per run, in key order.

    Columns, in this order:

    - ``key``: the run's key, the name of its folder under ``runs/``;
    - what the run was: ``method``, ``method_revision``, ``dataset``, ``features`` (the feature set, crops x
      dimension: ``wu 5x1024``), ``protocol`` (model selection), ``seed``, ``steps`` (the steps it trained),
      ``precision``, ``compile``, ``stacked`` (the seeds trained with it as one stacked model, ``"0,1,2"``;
      ``""`` when it trained alone), ``threads`` (torch CPU threads; missing for a GPU run);
    - ``status`` (``ok`` or why not) and ``error``;
    - one column per registered metric (`vadbench.report.metrics.METRICS`: ``auc``, ``ap``, ``ap_trapz``,
      ``auc_abnormal``, ``ap_abnormal``, ``far``), as fractions (tables show percent), NaN where a run did
      not record it; then every other number the run recorded with them, under its name (``final_loss``,
      and under a selecting protocol ``selected_step``, ``checkpoints_scored``, ``selection_score``);
    - ``per_class_auc.<class>``: the AUC of each anomaly class (its videos and every normal video);
    - provenance: ``parameters`` (trainable parameters), ``data`` (the fingerprint of the data read; missing
      for generated data), ``device`` (as recorded: CPU model, vector instructions, threads, or the GPU);
    - ``timings.<name>`` (seconds; ``timings.ms_per_step`` in milliseconds) and ``versions.<name>``
      (vadbench, torch, numpy, python, git, plugins);
    - ``method.<option>`` and ``dataset.<option>``: every option as the run resolved it, defaults included.

    Results of one run stored twice count once, as in the tables (`load_results`). A result stored by a
    vadbench older than the report metadata is read as stored (``vadbench leaderboard`` brings it up to date
    with the installed plugins first). Never imports torch.
    """
    return run_frame(load_results(store))


class ConflictingResults(UserWarning):
    """Results of one run key with different numbers: the tables use the newest, and this says so."""

    def __init__(self, key: str, copies: list[tuple[Path, RunResult]]) -> None:
        spec = copies[-1][1].spec
        found = "; ".join(f"{_describe_numbers(result)} in {folder.name} ({result.device or 'device unknown'})"
                          for folder, result in copies)
        super().__init__(f"run {key} ({spec.method} on {spec.dataset}, seed {spec.seed}) is stored "
                         f"{len(copies)} times with different numbers: {found}; the tables use the newest, "
                         f"{copies[-1][0].name}")


def _numbers(result: RunResult) -> tuple[Any, ...]:
    """What must agree between two results of one key: status and the required metrics."""
    return (result.status, *(result.metrics.get(name) for name in required_metrics()))


def _describe_numbers(result: RunResult) -> str:
    if result.status != "ok":
        return result.status
    return f"AUC {100 * result.metrics['auc']:.2f} AP {100 * result.metrics['ap']:.2f}"


def _write_per_video(path: Path, key: str, per_video: dict[str, np.ndarray]) -> None:
    """One array per video, stored concatenated (under `key`) with offsets, atomically."""
    ids = list(per_video)
    arrays = [np.asarray(per_video[i], dtype=np.float32) for i in ids]
    columns: dict[str, Any] = {
        "video_ids": np.array(ids, dtype=str),
        "offsets": np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64),
        key: np.concatenate(arrays),
    }
    atomic_write(path, lambda f: np.savez_compressed(f, **columns))


def _read_per_video(path: Path, key: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        ids, offsets, values = data["video_ids"], data["offsets"], data[key]
    return {str(v): values[offsets[i] : offsets[i + 1]] for i, v in enumerate(ids)}


def _read_result(path: Path) -> RunResult:
    """The result stored at `path`; one that cannot be read completely (a successful run without all of
    `required_metrics`) is a usage error naming the file, never a run that tables count but cannot average."""
    try:
        result = RunResult.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{path}: not a vadbench result ({error})") from None
    if result.status == "ok":
        metrics = result.metrics if isinstance(result.metrics, dict) else {}
        for name in required_metrics():
            if not _is_number(metrics.get(name)):
                raise UsageError(f"{path}: incomplete vadbench result (status ok, but metrics.{name} is "
                                 f"{'missing' if name not in metrics else repr(metrics[name])}; expected a number)")
    return result


def required_metrics() -> list[str]:
    """The metrics every successful result holds (`vadbench.report.metrics.Metric.required`)."""
    return [key for key, metric in METRICS.items() if metric.required]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)
