"""The data of each figure of `vadbench plot`, collected from the run store: plain arrays and labels that
`vadbench.report.plots` draws, so that what a figure shows can be tested without drawing it, and this
module needs no matplotlib (nor torch, a plugin or a data root).

Everything comes from the run store: the rows of `vadbench.report.aggregate` (the runs' frame grouped by
configuration: the means, stds and per-seed values of a figure are computed from it, as the tables compute
theirs), the stored scores, magnitudes and training curves, the test ground truth stored once per
benchmark (`vadbench.report.store.TestTruth`) and what each result records of its plugins (options counted
in training segments) and its benchmark (the anomaly length). Result figures show honest runs only (never
``oracle-test`` ones); the training curves show any protocol, since they are about training, not results.

One function per figure takes the finished runs of a grid (`vadbench.plan.grid.stored_runs`) and returns
that figure's data: `sweep`, `per_class`, `methods`, `video`, `separability`, `curves`; the ``collect_*``
functions they call work on rows or arrays, for tests and notebooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.types import TRAIN_SEGMENTS, RunResult
from vadbench.data.pooling import pool_segments
from vadbench.plan.grid import Grid
from vadbench.plan.protocols import parse_protocol
from vadbench.report.aggregate import SEGMENT_OPTIONS, Row, rows
from vadbench.report.metrics import METRICS
from vadbench.report.stats import topk_separability
from vadbench.report.store import RunStore, TestTruth
from vadbench.report.tables import grid_rows

#: What the dotted vertical lines of the k figures mark, as their labels write it (`anomaly_marker`).
MARKER_MEANING = "anomaly length in segments (μ: in snippets)"


@dataclass(frozen=True)
class Curve:
    """One line of a figure: y (and its spread) against x; `runs`: the seeds behind each point."""

    label: str
    x: np.ndarray
    y: np.ndarray
    spread: np.ndarray | None = None
    runs: np.ndarray | None = None


@dataclass(frozen=True)
class Reference:
    """A method without the swept option: one mean (and std) over seeds, drawn across the sweep."""

    label: str
    y: float
    spread: float
    runs: int


@dataclass(frozen=True)
class Sweep:
    """A metric against the swept option `x`: lines, references, anomaly-length markers, the x label."""

    x: str
    curves: list[Curve]
    references: list[Reference]
    markers: dict[str, float]
    xlabel: str | None


@dataclass(frozen=True)
class PerClass:
    """Per anomaly class, each row's (method's) mean and std over seeds of the class's AUC, in percent."""

    classes: list[str]
    bars: dict[str, tuple[np.ndarray, np.ndarray]]
    seeds: int


@dataclass(frozen=True)
class Panel:
    """One panel of the methods figure: `metric` on `dataset`, each method's per-seed values in percent."""

    dataset: str
    metric: str
    values: dict[str, np.ndarray]

    @property
    def title(self) -> str:
        """What the panel shows: ``AUC on synthetic``."""
        return f"{metric_title(self.metric)} on {self.dataset}"


@dataclass(frozen=True)
class Video:
    """One test video of one run: its snippet scores, magnitudes (None: the method has none) and truth."""

    video_id: str
    scores: np.ndarray
    magnitudes: np.ndarray | None
    truth: np.ndarray
    run: str


@dataclass(frozen=True)
class Separability:
    """Video AUC and standardized gap of the top-k mean magnitude against k, and the anomaly length."""

    aucs: list[Curve]
    gaps: list[Curve]
    markers: dict[str, float]


@dataclass(frozen=True)
class TrainingCurves:
    """The stored training curves (`RunStore.curves`) of the seeds of one configuration."""

    label: str
    seeds: tuple[int, ...]
    curves: tuple[dict[str, Any], ...]

    @property
    def unscored(self) -> bool:
        """True when the configuration selects a checkpoint but none of its runs scored one (it kept its
        final weights: `oracle-test` on a schedule shorter than its first check)."""
        selections = [c["selection"] for c in self.curves if "selection" in c]
        return bool(selections) and not any(s["steps"] for s in selections)


def metric_title(metric: str) -> str:
    """A metric as tables title it (``AUC``), an unregistered one by its key."""
    return METRICS[metric].title if metric in METRICS else metric


# --- per figure, from a grid's runs ----------------------------------------------------------------------


def sweep(grid: Grid, results: Sequence[RunResult], x: str | None) -> Sweep:
    """AUC against `x` (default: the grid's first swept option) of the grid's honest rows."""
    if not grid.sweep_options:
        raise UsageError(f"{grid.path}: sweep: the grid sweeps no option, so there is nothing to plot against")
    x = x or grid.sweep_options[0]
    if x not in grid.sweep_options:
        raise UsageError(f"--x {x}: not swept by {grid.path}; swept: {', '.join(grid.sweep_options)}")
    # An option counted in training segments (RTFM's k): say so, and mark where the anomalies end.
    counts = next((r.config[SEGMENT_OPTIONS][x] for r in results if x in r.config.get(SEGMENT_OPTIONS, {})), None)
    markers: dict[str, float] = {}
    if counts is not None:
        for result in results:
            markers.update(anomaly_marker(result.config))
    curves, references = collect_sweep(honest_rows(grid, results), x)
    if not curves:
        raise UsageError(f"--x {x}: no honest finished run has option {x} to plot against")
    xlabel = f"{x} ({counts} of {TRAIN_SEGMENTS} pooled segments per video)" if counts else None
    return Sweep(x, curves, references, markers, xlabel)


def per_class(grid: Grid, results: Sequence[RunResult]) -> PerClass:
    """The per-class AUC of the grid's honest rows."""
    return collect_per_class(honest_rows(grid, results))


def methods(grid: Grid, results: Sequence[RunResult]) -> list[Panel]:
    """AUC and AP of the grid's honest rows, a panel per dataset and metric."""
    return collect_methods(honest_rows(grid, results))


def video(grid: Grid, results: Sequence[RunResult], store: RunStore, *, method: str | None, seed: int | None,
          video_id: str | None) -> Video:
    """One test video (default: the first abnormal one) of one run (default: the first seed) of `method`."""
    runs = of_method(grid, results, method)
    run = next((r for r in runs if seed is None or r.spec.seed == seed), None)
    if run is None:
        raise UsageError(f"--seed {seed}: no run of {runs[0].spec.method} with that seed")
    truth = store.test_truth(run.spec)
    ids = list(truth.video_ids)
    if video_id is None:
        video_id = ids[int(np.flatnonzero(np.asarray(truth.labels) == 1)[0])]
    if video_id not in ids:
        raise UsageError(f"--video {video_id}: not a test video of {run.spec.dataset}; e.g. {', '.join(ids[:3])}")
    return Video(video_id, store.scores(run.spec)[video_id], store.magnitudes(run.spec).get(video_id),
                 truth.snippet_truth(ids.index(video_id)), f"{run.spec.method}, seed {run.spec.seed}")


def separability(grid: Grid, results: Sequence[RunResult], store: RunStore, *, method: str | None,
                 max_k: int) -> Separability:
    """The top-k separability of `method`'s learned magnitudes (per seed) and of the input features."""
    if max_k < 1:
        raise UsageError(f"--max-k must be at least 1, got {max_k}")
    runs = of_method(grid, results, method)
    truth: TestTruth = store.test_truth(runs[0].spec)
    ids = list(truth.video_ids)
    learned = [store.magnitudes(r.spec) for r in runs]
    if not all(learned):
        raise UsageError(f"{runs[0].spec.method} stores no feature magnitudes (its method has none)")
    magnitudes = {f"{runs[0].spec.method} (learned)": [[pooled(m[v]) for v in ids] for m in learned],
                  "input features": [list(truth.input_magnitudes)]}
    aucs, gaps = collect_separability(magnitudes, truth.labels, list(range(1, max_k + 1)))
    return Separability(aucs, gaps, anomaly_marker(runs[0].config))


def curves(results: Sequence[RunResult], store: RunStore, method: str | None) -> list[TrainingCurves]:
    """The stored training curves of the runs (of `method`, when given), by configuration (`collect_curves`)."""
    if method is None:
        return collect_curves(results, store)
    chosen = [r for r in results if r.spec.method == method]
    if not chosen:
        names = ", ".join(dict.fromkeys(r.spec.method for r in results))
        raise UsageError(f"--method {method}: no run of it to plot; methods: {names}")
    return collect_curves(chosen, store)


def honest_rows(grid: Grid, results: Sequence[RunResult]) -> list[Row]:
    """The grid's rows (`grid_rows`) of runs not selected on the test set."""
    return [row for row in grid_rows(grid, results) if row.honest]


def of_method(grid: Grid, results: Sequence[RunResult], method: str | None) -> list[RunResult]:
    """The honest runs of `method` (default: the grid's first), which must be one configuration."""
    method = method or grid.methods[0]
    chosen = [r for r in results if r.spec.method == method and parse_protocol(r.spec.protocol).honest]
    if not chosen:
        raise UsageError(f"--method {method}: no honest run of it in {grid.path}; methods: {', '.join(grid.methods)}")
    configurations = rows(chosen)
    if len(configurations) > 1:
        raise UsageError(f"--method {method}: {grid.path} runs it in {len(configurations)} configurations (a sweep); "
                         "pick one with --where OPTION=VALUE")
    return chosen


# --- from rows and arrays ---------------------------------------------------------------------------------


def collect_sweep(rows: Sequence[Row], x: str, metric: str = "auc") -> tuple[list[Curve], list[Reference]]:
    """One curve per row family (same method, protocol and other sweep values), `metric` in percent, and
    one reference per family whose method lacks option `x`. Each point is its row's mean ± std (`Row.stat`)
    over the runs that recorded the metric."""
    families: dict[str, list[tuple[float, float, float, int]]] = {}
    references = []
    for row in rows:
        value, stat = row.sweep.get(x), row.stat(metric)
        if stat.mean != stat.mean:  # no run recorded the metric
            continue
        others = [f"{k}={v}" for k, v in row.sweep.items() if k != x and v != "-"]
        protocol = [] if row.spec.protocol == "last" else [row.spec.protocol]
        label = " ".join([row.spec.method, *protocol, *others])
        count = len(row.recorded(metric))  # the runs behind `stat`
        if value == "-":
            references.append(Reference(f"{label} (no {x})", stat.mean, stat.std, count))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"--x {x}: the sweep plot needs numbers, got {value!r} (the table shows every value)")
        families.setdefault(label, []).append((float(value), stat.mean, stat.std, count))
    found = []
    for label, points in families.items():
        points.sort()
        xs, ys, spreads, runs = (np.array(column) for column in zip(*points, strict=True))
        found.append(Curve(label, xs, ys, spreads, runs.astype(int)))
    return found, references


def collect_per_class(rows: Sequence[Row]) -> PerClass:
    """Anomaly classes, per row the mean and std (`Row.stat`) of each class's AUC column
    (``per_class_auc.<class>`` of the runs' frame), and the fewest seeds of a row."""
    prefix = "per_class_auc."
    columns = sorted({c for row in rows for c in row.runs.columns if c.startswith(prefix)})
    bars = {}
    for row in rows:
        stats = [row.stat(column) for column in columns]
        label = row.spec.method if row.spec.protocol == "last" else f"{row.spec.method} ({row.spec.protocol})"
        bars[label] = (np.array([s.mean for s in stats]), np.array([s.std for s in stats]))
    return PerClass([c.removeprefix(prefix) for c in columns], bars, min((len(row.ok) for row in rows), default=0))


def collect_methods(rows: Sequence[Row], metrics: Sequence[str] = ("auc", "ap")) -> list[Panel]:
    """One panel per dataset and metric (metrics in the given order, datasets in row order), each method's
    per-seed values in percent, in row order."""
    datasets = list(dict.fromkeys(row.spec.dataset for row in rows))
    return [Panel(dataset, metric, {row.spec.method: 100 * row.recorded(metric)
                                    for row in rows if row.spec.dataset == dataset})
            for metric in metrics for dataset in datasets]


def pooled(magnitudes: np.ndarray) -> np.ndarray:
    """(T,) snippet magnitudes mean-pooled to the 32 training segments."""
    return pool_segments(np.asarray(magnitudes, dtype=np.float32)[:, None, None])[0, :, 0]


def collect_separability(
    magnitudes: Mapping[str, Sequence[list[np.ndarray]]], video_labels: np.ndarray, ks: Sequence[int]
) -> tuple[list[Curve], list[Curve]]:
    """(AUC curves, standardized-gap curves) over k; `magnitudes[label]` holds one list per run (seed).

    k is counted in the 32 pooled segments per video, where RTFM's training applies it, so magnitudes are
    pooled first (`pooled`)."""
    aucs, gaps = [], []
    for label, runs in magnitudes.items():
        per_run = [topk_separability(m, video_labels, ks) for m in runs]
        auc = np.array([100 * p[0] for p in per_run])
        gap = np.array([p[1] for p in per_run])
        if len(runs) == 1:  # one computation (the input features): nothing to spread over
            aucs.append(Curve(label, np.asarray(ks), auc[0]))
            gaps.append(Curve(label, np.asarray(ks), gap[0]))
            continue
        count = np.full(len(ks), len(runs))
        aucs.append(Curve(label, np.asarray(ks), auc.mean(0), auc.std(0), count))
        gaps.append(Curve(label, np.asarray(ks), gap.mean(0), gap.std(0), count))
    return aucs, gaps


def anomaly_marker(config: dict[str, Any]) -> dict[str, float]:
    """A labelled position for the anomaly length in pooled training segments, where the run's benchmark
    recorded it (``anomaly_segments`` in `Benchmark.meta`; the synthetic benchmark does), else nothing.

    The axis the marker stands on counts segments, so the label gives the length in segments, and after
    it, where recorded, the length μ in snippets that it is (``8.8 (μ=16)``), never a snippet count alone
    at a segment position; `MARKER_MEANING` says so in the legend.
    """
    segments = config.get("benchmark.anomaly_segments")
    if not _recorded(segments):
        return {}
    snippets = config.get("benchmark.anomaly_snippets")
    return {f"{segments:.1f}" + (f" (μ={snippets:g})" if _recorded(snippets) else ""): float(segments)}


def _recorded(value: Any) -> TypeGuard[float]:
    """A recorded number (NaN excluded: not computed; booleans excluded), as `aggregate.Row.stat` counts."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def collect_curves(results: Sequence[RunResult], store: RunStore) -> list[TrainingCurves]:
    """The stored curves of `results`, grouped by configuration as the tables group runs
    (`vadbench.report.aggregate.rows`), in the given order.

    Labels name the method, a protocol other than ``last`` and the options that differ between the
    configurations of the same method. Runs stored without curves (by an older vadbench) are a usage
    error that says so.
    """
    missing = [r.spec.key for r in results if not store.curves(r.spec)]
    if missing:
        raise UsageError(f"{len(missing)} of the {len(results)} runs have no stored training curves (stored "
                         f"before vadbench kept them, e.g. {store.folder(results[0].spec).parent / missing[0]}); "
                         "delete those run folders and run them again to plot their curves")
    groups = [row.results for row in rows(results)]
    firsts = [runs[0] for runs in groups]
    return [TrainingCurves(_configuration_label(runs[0], firsts), tuple(r.spec.seed for r in runs),
                           tuple(store.curves(r.spec) for r in runs)) for runs in groups]


def _configuration_label(result: RunResult, others: Sequence[RunResult]) -> str:
    """The method, the protocol unless ``last``, and the options whose values differ among the runs of
    the same method in `others`."""
    same_method = [o.config for o in others if o.spec.method == result.spec.method]
    options = [key for key in result.config if key.startswith(("method.", "dataset.")) or key == "steps"]
    differing = [key for key in options if len({repr(c.get(key)) for c in same_method}) > 1]
    protocol = [] if result.spec.protocol == "last" else [result.spec.protocol]
    return " ".join([result.spec.method, *protocol,
                     *(f"{key.rpartition('.')[2]}={result.config[key]}" for key in differing)])


# --- choosing runs --------------------------------------------------------------------------------------


def where(results: Sequence[RunResult], conditions: Sequence[str]) -> list[RunResult]:
    """The results whose recorded config matches every ``KEY=VALUE`` of `conditions`.

    KEY is a recorded config key (``protocol``, ``seed``, ``method.k``, ``dataset.mu``) or an option
    name without its kind (``k``); VALUE is compared as the number, boolean or text it spells.
    """
    for condition in conditions:
        key, sep, value = condition.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--where {condition!r}: expected KEY=VALUE, e.g. --where k=4")
        key, value = key.strip(), value.strip()
        if not any(_config_value(r.config, key) is not _MISSING for r in results):
            raise UsageError(f"--where {condition}: no run has option {key!r}")
        results = [r for r in results if _matches(_config_value(r.config, key), value)]
        if not results:
            raise UsageError(f"--where {condition}: no run left to plot")
    return list(results)


_MISSING = object()


def _config_value(config: dict[str, Any], key: str) -> Any:
    """config[key], else the method's or dataset's option `key`, else `_MISSING`."""
    for candidate in (key, f"method.{key}", f"dataset.{key}"):
        if candidate in config:
            return config[candidate]
    return _MISSING


def _matches(recorded: Any, text: str) -> bool:
    if recorded is _MISSING:
        return False
    if isinstance(recorded, bool):
        return str(recorded).lower() == text.lower()
    if isinstance(recorded, (int, float)):
        try:
            return float(recorded) == float(text)
        except ValueError:
            return False
    if isinstance(recorded, list):
        return ",".join(map(str, recorded)) == text.replace(" ", "")
    return str(recorded) == text
