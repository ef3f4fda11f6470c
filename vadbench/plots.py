"""Figures of the RTFM paper's experiments, drawn from a grid's stored runs (matplotlib, PNG or PDF).

- `sweep_figure`: AUC against a swept option (k, margin, number of abnormal training videos), one
  line per method, mean +- std over seeds;
- `per_class_figure`: per-class AUC of several methods side by side;
- `video_figure`: anomaly score and feature magnitude over one test video, ground truth shaded;
- `separability_figure`: how well the mean of the top-k feature magnitudes tells abnormal from
  normal videos as k grows (the paper's Theorem 1: it rises up to about the anomaly length). k is
  counted in the 32 pooled segments per video, where RTFM's training applies it, so every test video
  is pooled to 32 segments first (its snippet magnitudes are mean-pooled with the same boundaries).

The `collect_*` functions turn stored runs into the plain arrays the figures take, so the figures
can be tested on tiny data; `draw` does both for `vadbench plot`. Everything comes from the run store:
the rows of `vadbench.aggregate`, the stored scores and magnitudes, the test ground truth stored once
per benchmark (`vadbench.results.TestTruth`) and what each result records of its plugins (options
counted in training segments) and its benchmark (the anomaly length), so no plugin, torch or data
root is needed. Only matplotlib's object API is used (no pyplot, no global backend). Figures show
honest runs only (never ``oracle-test`` ones).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from vadbench.aggregate import SEGMENT_OPTIONS, Row
from vadbench.errors import UsageError
from vadbench.grid import Grid
from vadbench.pooling import pool_segments
from vadbench.protocols import parse_protocol
from vadbench.results import RunStore, TestTruth
from vadbench.stats import mean_std, topk_separability
from vadbench.tables import grid_rows
from vadbench.types import SNIPPET_FRAMES, TRAIN_SEGMENTS, RunResult

_SIZE = (6.0, 3.8)


@dataclass(frozen=True)
class Curve:
    """One line of a figure: y (and its spread) against x."""

    label: str
    x: np.ndarray
    y: np.ndarray
    spread: np.ndarray | None = None


# --- data ---------------------------------------------------------------------------------------------


def collect_sweep(rows: Sequence[Row], x: str, metric: str = "auc") -> list[Curve]:
    """One curve per row family (same method, protocol and other sweep values), `metric` in percent."""
    families: dict[str, list[tuple[float, float, float]]] = {}
    for row in rows:
        value, stat = row.sweep.get(x), row.stat(metric)
        if not isinstance(value, (int, float)) or stat.mean != stat.mean:  # not swept, or no run recorded it
            continue
        others = [f"{k}={v}" for k, v in row.sweep.items() if k != x]
        protocol = [] if row.spec.protocol == "last" else [row.spec.protocol]
        label = " ".join([row.spec.method, *protocol, *others])
        families.setdefault(label, []).append((float(value), stat.mean, stat.std))
    curves = []
    for label, points in families.items():
        points.sort()
        xs, ys, spreads = (np.array(column) for column in zip(*points, strict=True))
        curves.append(Curve(label, xs, ys, spreads))
    return curves


def collect_per_class(rows: Sequence[Row]) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Anomaly classes and, per row (method), the mean and std over seeds of each class's AUC (percent)."""
    classes = sorted({c for row in rows for r in row.ok for c in r.metrics.get("per_class_auc", {})})
    bars = {}
    for row in rows:
        stats = [mean_std([100 * r.metrics["per_class_auc"][c] for r in row.ok
                           if c in r.metrics.get("per_class_auc", {})]) for c in classes]
        label = row.spec.method if row.spec.protocol == "last" else f"{row.spec.method} ({row.spec.protocol})"
        bars[label] = (np.array([s[0] for s in stats]), np.array([s[1] for s in stats]))
    return classes, bars


def pooled(magnitudes: np.ndarray) -> np.ndarray:
    """(T,) snippet magnitudes mean-pooled to the 32 training segments."""
    return pool_segments(np.asarray(magnitudes, dtype=np.float32)[:, None, None])[0, :, 0]


def collect_separability(
    magnitudes: Mapping[str, Sequence[list[np.ndarray]]], video_labels: np.ndarray, ks: Sequence[int]
) -> tuple[list[Curve], list[Curve]]:
    """(AUC curves, standardized-gap curves) over k; `magnitudes[label]` holds one list per run (seed)."""
    aucs, gaps = [], []
    for label, runs in magnitudes.items():
        per_run = [topk_separability(m, video_labels, ks) for m in runs]
        auc = np.array([100 * p[0] for p in per_run])
        gap = np.array([p[1] for p in per_run])
        aucs.append(Curve(label, np.asarray(ks), auc.mean(0), auc.std(0)))
        gaps.append(Curve(label, np.asarray(ks), gap.mean(0), gap.std(0)))
    return aucs, gaps


def anomaly_marker(config: dict[str, Any]) -> dict[str, float]:
    """A labelled position for the anomaly length in pooled training segments, where the run's benchmark
    recorded it (``anomaly_segments`` in `Benchmark.meta`; the synthetic benchmark does), else nothing."""
    segments = config.get("benchmark.anomaly_segments")
    if not isinstance(segments, (int, float)):
        return {}
    return {f"anomaly of {config.get('benchmark.anomaly_snippets', '?')} snippets (~{segments:.1f} segments)":
            float(segments)}


# --- figures ------------------------------------------------------------------------------------------


def sweep_figure(curves: Sequence[Curve], x: str, *, ylabel: str = "frame-level AUC (%)",
                 markers: dict[str, float] | None = None, title: str | None = None,
                 xlabel: str | None = None) -> Figure:
    """Lines with std bands against `x`; `markers` draws labelled vertical lines (e.g. the anomaly length)."""
    figure = Figure(figsize=_SIZE, layout="constrained")
    axes = figure.subplots()
    for curve in curves:
        line = axes.plot(curve.x, curve.y, marker="o", label=curve.label)[0]
        if curve.spread is not None:
            axes.fill_between(curve.x, curve.y - curve.spread, curve.y + curve.spread, alpha=0.2,
                              color=line.get_color())
    for label, position in (markers or {}).items():
        _marker(axes, label, position)
    xs = np.concatenate([curve.x for curve in curves]) if curves else np.ones(1)
    if xs.min() > 0 and xs.max() / xs.min() >= 30:  # margins 10 ... 1200: spread them out
        axes.set_xscale("log")
    axes.set_xlabel(xlabel or x)
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(_wrap(title), fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def per_class_figure(classes: Sequence[str], bars: dict[str, tuple[np.ndarray, np.ndarray]],
                     *, title: str | None = None) -> Figure:
    """Grouped bars: per-class AUC (percent) of each method, std over seeds as error bars."""
    figure = Figure(figsize=(max(_SIZE[0], 0.6 * len(classes) * max(1, len(bars))), _SIZE[1]), layout="constrained")
    axes = figure.subplots()
    width = 0.8 / max(1, len(bars))
    positions = np.arange(len(classes))
    for i, (label, (means, stds)) in enumerate(bars.items()):
        axes.bar(positions + (i - (len(bars) - 1) / 2) * width, means, width, yerr=stds, capsize=2, label=label)
    axes.set_xticks(positions, classes, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("frame-level AUC (%)")
    low = min((float(np.nanmin(m - s)) for m, s in bars.values() if len(m)), default=0.0)
    axes.set_ylim(max(0.0, low - 5), 100)
    if title:
        axes.set_title(_wrap(title), fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def video_figure(video_id: str, scores: np.ndarray, magnitudes: np.ndarray | None, truth: np.ndarray,
                 *, title: str | None = None) -> Figure:
    """Anomaly score (left axis) and feature magnitude (right axis) per snippet; abnormal snippets shaded."""
    figure = Figure(figsize=_SIZE, layout="constrained")
    axes = figure.subplots()
    snippets = np.arange(len(scores))
    for start, stop in _runs(truth > 0):
        axes.axvspan(start - 0.5, stop - 0.5, color="tab:red", alpha=0.15, linewidth=0)
    axes.plot(snippets, scores, color="tab:blue", label="anomaly score")
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel(f"snippet ({SNIPPET_FRAMES} frames each)")
    axes.set_ylabel("anomaly score", color="tab:blue")
    handles = axes.get_lines()
    if magnitudes is not None:
        right = axes.twinx()
        handles += right.plot(snippets, magnitudes, color="tab:orange", label="feature magnitude")
        right.set_ylabel("feature magnitude ||x_t||", color="tab:orange")
    axes.legend(handles, [str(h.get_label()) for h in handles], fontsize=8, loc="upper left")
    axes.set_title(_wrap(title or f"{video_id} (ground truth shaded)"), fontsize=10)
    return figure


def separability_figure(aucs: Sequence[Curve], gaps: Sequence[Curve], *, markers: dict[str, float] | None = None,
                        title: str | None = None) -> Figure:
    """Two panels against k: video-level AUC and standardized gap of the top-k mean magnitudes."""
    figure = Figure(figsize=(2 * _SIZE[0] - 1, _SIZE[1]), layout="constrained")
    left, right = figure.subplots(1, 2)
    for axes, curves, ylabel in ((left, aucs, "video AUC of top-k mean magnitude (%)"),
                                 (right, gaps, "standardized gap (abnormal - normal)")):
        for curve in curves:
            line = axes.plot(curve.x, curve.y, marker="o", markersize=3, label=curve.label)[0]
            if curve.spread is not None:
                axes.fill_between(curve.x, curve.y - curve.spread, curve.y + curve.spread, alpha=0.2,
                                  color=line.get_color())
        for label, position in (markers or {}).items():
            _marker(axes, label, position)
        axes.set_xlabel("k (top-k of the 32 pooled segments per video)")
        axes.set_ylabel(ylabel, fontsize=9)
        axes.grid(alpha=0.3)
    left.legend(fontsize=8)
    if title:
        figure.suptitle(_wrap(title, 110), fontsize=10)
    return figure


def _marker(axes: Any, label: str, position: float) -> None:
    """A dashed vertical line at `position`, labelled along its foot."""
    axes.axvline(position, linestyle="--", color="grey", linewidth=1)
    axes.annotate(label, (position, 0), xycoords=("data", "axes fraction"), xytext=(3, 4),
                  textcoords="offset points", color="grey", fontsize=8, rotation=90, va="bottom")


def _wrap(title: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(title, width))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index ranges where `mask` is true."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


# --- from a grid's stored runs ------------------------------------------------------------------------


def draw(
    kind: str,
    grid: Grid,
    results: Sequence[RunResult],
    *,
    store: RunStore,
    x: str | None = None,
    method: str | None = None,
    seed: int | None = None,
    video: str | None = None,
    max_k: int = 24,
) -> Figure:
    """The figure `kind` (sweep, per-class, video, separability) of a grid's stored runs
    (`vadbench.grid.stored_runs`)."""
    if kind == "sweep":
        return _draw_sweep(grid, results, x)
    if kind == "per-class":
        classes, bars = collect_per_class([r for r in grid_rows(grid, results) if r.honest])
        return per_class_figure(classes, bars, title=f"{grid.title}: per-class AUC")
    chosen = _of_method(grid, results, method)
    truth = store.test_truth(chosen[0].spec)
    if kind == "video":
        return _draw_video(chosen, store, truth, seed, video)
    if kind == "separability":
        return _draw_separability(chosen, store, truth, max_k)
    raise UsageError(f"unknown plot {kind!r}; plots are: sweep, per-class, video, separability")


def _draw_sweep(grid: Grid, results: Sequence[RunResult], x: str | None) -> Figure:
    if not grid.sweep_options:
        raise UsageError(f"{grid.path}: sweep: the grid sweeps no option, so there is nothing to plot against")
    x = x or grid.sweep_options[0]
    if x not in grid.sweep_options:
        raise UsageError(f"--x {x}: not swept by {grid.path}; swept: {', '.join(grid.sweep_options)}")
    # An option counted in training segments (RTFM's k): say so, and mark where the anomalies end.
    counts = next((r.config[SEGMENT_OPTIONS][x] for r in results if x in r.config.get(SEGMENT_OPTIONS, {})), None)
    markers = {}
    if counts is not None:
        for result in results:
            markers.update(anomaly_marker(result.config))
    curves = collect_sweep([r for r in grid_rows(grid, results) if r.honest], x)
    xlabel = f"{x} ({counts} of the {TRAIN_SEGMENTS} pooled training segments per video)" if counts else None
    return sweep_figure(curves, x, markers=markers, title=grid.title, xlabel=xlabel)


def _of_method(grid: Grid, results: Sequence[RunResult], method: str | None) -> list[RunResult]:
    method = method or grid.methods[0]
    chosen = [r for r in results if r.spec.method == method and parse_protocol(r.spec.protocol).honest]
    if not chosen:
        raise UsageError(f"--method {method}: no honest run of it in {grid.path}; methods: {', '.join(grid.methods)}")
    variants = {(repr(sorted(r.spec.method_options.items())), repr(sorted(r.spec.dataset_options.items())),
                 r.spec.steps, r.spec.protocol) for r in chosen}
    if len(variants) > 1:
        raise UsageError(f"--method {method}: {grid.path} runs it in {len(variants)} configurations (a sweep); "
                         "plot from a grid that runs it in one, e.g. leaderboards/rtfm-vs-mil.toml")
    return chosen


def _draw_video(runs: list[RunResult], store: RunStore, truth: TestTruth, seed: int | None,
                video: str | None) -> Figure:
    run = next((r for r in runs if seed is None or r.spec.seed == seed), None)
    if run is None:
        raise UsageError(f"--seed {seed}: no run of {runs[0].spec.method} with that seed")
    ids = list(truth.video_ids)
    if video is None:
        video = ids[int(np.flatnonzero(np.asarray(truth.labels) == 1)[0])]
    if video not in ids:
        raise UsageError(f"--video {video}: not a test video of {run.spec.dataset}; e.g. {', '.join(ids[:3])}")
    magnitudes = store.magnitudes(run.spec).get(video)
    return video_figure(video, store.scores(run.spec)[video], magnitudes, truth.snippet_truth(ids.index(video)),
                        title=f"{run.spec.method} (seed {run.spec.seed}) on {video}; ground truth shaded")


def _draw_separability(runs: list[RunResult], store: RunStore, truth: TestTruth, max_k: int) -> Figure:
    if max_k < 1:
        raise UsageError(f"--max-k must be at least 1, got {max_k}")
    ks = list(range(1, max_k + 1))
    ids = list(truth.video_ids)
    learned = [store.magnitudes(r.spec) for r in runs]
    if not all(learned):
        raise UsageError(f"{runs[0].spec.method} stores no feature magnitudes (its method has none)")
    label = f"{runs[0].spec.method} (learned)"
    magnitudes = {label: [[pooled(m[v]) for v in ids] for m in learned],
                  "input features": [list(truth.input_magnitudes)]}
    aucs, gaps = collect_separability(magnitudes, truth.labels, ks)
    return separability_figure(aucs, gaps, markers=anomaly_marker(runs[0].config) or None,
                               title=f"Top-k magnitude separability of abnormal vs normal test videos "
                               f"({runs[0].spec.dataset})")
