"""Figures of a grid's stored runs, styled for a paper (matplotlib; vector PDF or SVG, 300-dpi PNG).

- `sweep_figure`: AUC against a swept option (k, margin, number of abnormal training videos), one
  line per method, mean and a band of +- std over seeds; a method without the swept option is a
  dashed horizontal reference line at its mean, labelled as such;
- `per_class_figure`: per-class AUC of several methods side by side. Bars start at chance (AUC 50,
  a random score), the marked reference line, so a bar's length is its gain over chance and a bar
  below the line is worse than chance; starting at 0 would show a chance-level score as a tall bar;
- `video_figure`: anomaly score and feature magnitude over one test video, ground truth shaded;
- `separability_figure`: how well the mean of the top-k feature magnitudes tells abnormal from
  normal videos as k grows (the paper's Theorem 1: it rises up to about the anomaly length). k is
  counted in the 32 pooled segments per video, where RTFM's training applies it, so every test video
  is pooled to 32 segments first (its snippet magnitudes are mean-pooled with the same boundaries);
- `methods_figure`: methods side by side, one panel per dataset and metric (AUC, AP): every seed's
  value as a dot and the mean ± std beside it, so a spread over seeds is seen, not only a mean;
- `curves_figure`: how runs trained: each logged loss term against the step, one line per seed,
  and the selection metric of a selecting protocol with the selected step marked.

Every figure is drawn in one style (`STYLE`, `styled`): sizes in inches that fit a paper column
(`SINGLE_COLUMN`, `DOUBLE_COLUMN`), 7-8 pt text, the colour-blind-safe palette of Okabe and Ito (with
a marker per line, for grey-scale print), no top and right spines, no titles (captions belong in
the paper). `save` writes the formats that the file suffixes name.

The `collect_*` functions turn stored runs into the plain arrays the figures take, so the figures
can be tested on tiny data; `draw` does both for `vadbench plot`. Everything comes from the run store:
the rows of `vadbench.report.aggregate`, the stored scores, magnitudes and training curves, the test ground
truth stored once per benchmark (`vadbench.report.store.TestTruth`) and what each result records of its
plugins (options counted in training segments) and its benchmark (the anomaly length), so no plugin,
torch or data root is needed. Only matplotlib's object API is used (no pyplot, no global backend).
Result figures show honest runs only (never ``oracle-test`` ones); `curves_figure` shows any
protocol, since it is about training, not results.
"""

from __future__ import annotations

import functools
import io
import math
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullLocator, ScalarFormatter

from vadbench.api.errors import UsageError
from vadbench.api.types import SNIPPET_FRAMES, TRAIN_SEGMENTS, RunResult
from vadbench.data.pooling import pool_segments
from vadbench.plan.grid import Grid
from vadbench.plan.protocols import parse_protocol
from vadbench.report.aggregate import SEGMENT_OPTIONS, Row
from vadbench.report.stats import mean_std, topk_separability
from vadbench.report.store import RunStore, TestTruth
from vadbench.report.tables import grid_rows

#: Widths in inches of a single and a double column of a two-column paper (CVPR, ICCV, IEEE).
SINGLE_COLUMN, DOUBLE_COLUMN = 3.4, 7.0
#: Okabe and Ito's colour-blind-safe palette (yellow left out: too pale on white), and a marker per colour.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: Ground truth and reference lines.
GREY = "#777777"
#: The rcParams of every figure (`styled`).
STYLE: dict[Any, Any] = {
    "font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "legend.title_fontsize": 7, "legend.frameon": False, "legend.handlelength": 1.8,
    "axes.linewidth": 0.6, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "axes.grid.axis": "y", "axes.axisbelow": True, "grid.linewidth": 0.4, "grid.color": "#dddddd",
    "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.major.size": 2.5, "ytick.major.size": 2.5,
    "lines.linewidth": 1.2, "lines.markersize": 3.5, "errorbar.capsize": 2,
    "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",  # text stays text, in TrueType
    "svg.hashsalt": "vadbench",  # the same figure gives the same SVG
}
#: Output formats by suffix, and the raster resolution.
FORMATS = (".pdf", ".png", ".svg")
DPI = 300

_F = TypeVar("_F", bound=Callable[..., Any])


def styled(function: _F) -> _F:
    """Run `function` (which draws or saves a figure) under `STYLE`: matplotlib reads rcParams when
    it creates an artist and, for fonts and formats, when it saves."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(STYLE):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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
class TrainingCurves:
    """The stored training curves (`RunStore.curves`) of the seeds of one configuration."""

    label: str
    seeds: tuple[int, ...]
    curves: tuple[dict[str, Any], ...]


# --- data ---------------------------------------------------------------------------------------------


def collect_sweep(rows: Sequence[Row], x: str, metric: str = "auc") -> tuple[list[Curve], list[Reference]]:
    """One curve per row family (same method, protocol and other sweep values), `metric` in percent,
    and one reference per family whose method lacks option `x`."""
    families: dict[str, list[tuple[float, float, float, int]]] = {}
    references = []
    for row in rows:
        value, stat = row.sweep.get(x), row.stat(metric)
        if stat.mean != stat.mean:  # no run recorded the metric
            continue
        others = [f"{k}={v}" for k, v in row.sweep.items() if k != x and v != "-"]
        protocol = [] if row.spec.protocol == "last" else [row.spec.protocol]
        label = " ".join([row.spec.method, *protocol, *others])
        count = sum(1 for r in row.ok if _recorded(r.metrics.get(metric)))  # the runs behind `stat`
        if value == "-":
            references.append(Reference(f"{label} (no {x})", stat.mean, stat.std, count))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"--x {x}: the sweep plot needs numbers, got {value!r} (the table shows every value)")
        families.setdefault(label, []).append((float(value), stat.mean, stat.std, count))
    curves = []
    for label, points in families.items():
        points.sort()
        xs, ys, spreads, runs = (np.array(column) for column in zip(*points, strict=True))
        curves.append(Curve(label, xs, ys, spreads, runs.astype(int)))
    return curves, references


def collect_per_class(rows: Sequence[Row]) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]], int]:
    """Anomaly classes, per row (method) the mean and std over seeds of each class's AUC (percent), and
    the number of seeds."""
    classes = sorted({c for row in rows for r in row.ok for c in r.metrics.get("per_class_auc", {})})
    bars = {}
    for row in rows:
        stats = [mean_std([100 * r.metrics["per_class_auc"][c] for r in row.ok
                           if c in r.metrics.get("per_class_auc", {})]) for c in classes]
        label = row.spec.method if row.spec.protocol == "last" else f"{row.spec.method} ({row.spec.protocol})"
        bars[label] = (np.array([s[0] for s in stats]), np.array([s[1] for s in stats]))
    return classes, bars, min((len(row.ok) for row in rows), default=0)


def collect_methods(rows: Sequence[Row], metrics: Sequence[str] = ("auc", "ap")) -> dict[str, dict[str, np.ndarray]]:
    """Per panel (``"<dataset> <metric>"``), each method's per-seed values in percent, in row order."""
    panels: dict[str, dict[str, np.ndarray]] = {}
    for metric in metrics:
        for row in rows:
            values = [100 * r.metrics[metric] for r in row.ok if _recorded(r.metrics.get(metric))]
            panels.setdefault(f"{row.spec.dataset} {metric.upper()}", {})[row.spec.method] = np.array(values)
    return panels


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

    The label is short, as it stands above the axes: the length in snippets (``μ=6``, the paper's μ),
    else in segments; the legend says what the line marks (`MARKER_MEANING`).
    """
    segments = config.get("benchmark.anomaly_segments")
    if not _recorded(segments):
        return {}
    snippets = config.get("benchmark.anomaly_snippets")
    return {f"μ={snippets:g}" if _recorded(snippets) else f"μ≈{segments:.1f} seg.": float(segments)}


def _recorded(value: Any) -> TypeGuard[float]:
    """A recorded number (NaN excluded: not computed; booleans excluded), as `aggregate.Row.stat` counts."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def collect_curves(results: Sequence[RunResult], store: RunStore) -> list[TrainingCurves]:
    """The stored curves of `results`, grouped by configuration (all but the seed), in the given order.

    Labels name the method, a protocol other than ``last`` and the options that differ between the
    configurations of the same method. Runs stored without curves (by an older vadbench) are a usage
    error that says so.
    """
    missing = [r.spec.key for r in results if not store.curves(r.spec)]
    if missing:
        raise UsageError(f"{len(missing)} of the {len(results)} runs have no stored training curves (stored "
                         f"before vadbench kept them, e.g. {store.folder(results[0].spec).parent / missing[0]}); "
                         "delete those run folders and run them again to plot their curves")
    groups: dict[str, list[RunResult]] = {}
    for result in results:
        spec = result.spec
        groups.setdefault(repr((spec.method, spec.dataset, spec.protocol, spec.steps, spec.precision,
                                sorted(spec.method_options.items()), sorted(spec.dataset_options.items()))),
                          []).append(result)
    firsts = [runs[0] for runs in groups.values()]
    return [TrainingCurves(_configuration_label(runs[0], firsts), tuple(r.spec.seed for r in runs),
                           tuple(store.curves(r.spec) for r in runs)) for runs in groups.values()]


def _configuration_label(result: RunResult, others: Sequence[RunResult]) -> str:
    """The method, the protocol unless ``last``, and the options whose values differ among the runs of
    the same method in `others`."""
    same_method = [o.config for o in others if o.spec.method == result.spec.method]
    options = [key for key in result.config if key.startswith(("method.", "dataset.")) or key == "steps"]
    differing = [key for key in options if len({repr(c.get(key)) for c in same_method}) > 1]
    protocol = [] if result.spec.protocol == "last" else [result.spec.protocol]
    return " ".join([result.spec.method, *protocol,
                     *(f"{key.rpartition('.')[2]}={result.config[key]}" for key in differing)])


# --- figures ------------------------------------------------------------------------------------------


@styled
def sweep_figure(curves: Sequence[Curve], x: str, *, references: Sequence[Reference] = (),
                 markers: dict[str, float] | None = None, ylabel: str = "frame-level AUC (%)",
                 xlabel: str | None = None) -> Figure:
    """Lines with std bands against `x`, references as dashed horizontal lines with their own band;
    `markers` draws labelled vertical lines (e.g. the anomaly length, `anomaly_marker`)."""
    figure = Figure(figsize=(SINGLE_COLUMN, 2.5), layout="constrained")
    axes = figure.subplots()
    handles = [_line_with_band(axes, curve, i) for i, curve in enumerate(curves)]
    xs = np.concatenate([curve.x for curve in curves]) if curves else np.zeros(0)
    for i, reference in enumerate(references, start=len(curves)):
        color = PALETTE[i % len(PALETTE)]
        line = axes.axhline(reference.y, color=color, linestyle="--", linewidth=1.0, label=reference.label)
        band = axes.axhspan(reference.y - reference.spread, reference.y + reference.spread, color=color,
                            alpha=0.12, linewidth=0)
        handles.append((band, line))
    handles += _markers(axes, markers or {})
    if len(xs) and xs.min() > 0 and xs.max() / xs.min() >= 30:  # margins 10 ... 1200: spread them out
        axes.set_xscale("log")
    _ticks_at(axes, np.unique(xs))
    axes.set_xlabel(xlabel or x)
    axes.set_ylabel(ylabel)
    runs = [*(c.runs for c in curves if c.runs is not None), *(np.array([r.runs]) for r in references)]
    _legend(figure, handles, f"mean ± std over {_seeds(runs)}")
    return figure


@styled
def per_class_figure(classes: Sequence[str], bars: dict[str, tuple[np.ndarray, np.ndarray]], *,
                     seeds: int | None = None, chance: float = 50.0,
                     ylabel: str = "frame-level AUC (%)") -> Figure:
    """Grouped bars from `chance` up (or down) to each method's per-class mean, std over seeds as error bars."""
    wide = len(classes) * max(1, len(bars)) > 12
    figure = Figure(figsize=(DOUBLE_COLUMN if wide else SINGLE_COLUMN, 2.5), layout="constrained")
    axes = figure.subplots()
    width = 0.8 / max(1, len(bars))
    positions = np.arange(len(classes))
    handles = []
    for i, (label, (means, stds)) in enumerate(bars.items()):
        handles.append(axes.bar(positions + (i - (len(bars) - 1) / 2) * width, means - chance, width,
                                bottom=chance, yerr=stds, color=PALETTE[i % len(PALETTE)], label=label,
                                error_kw={"elinewidth": 0.8, "capthick": 0.8}))
    axes.axhline(chance, color="black", linewidth=0.8)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"chance {v:g}" if v == chance else f"{v:g}"))
    rotate = len(classes) > (12 if wide else 4)
    axes.set_xticks(positions, classes, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    axes.tick_params(axis="x", length=0)
    axes.set_xlim(-0.5, len(classes) - 0.5)
    axes.set_ylabel(ylabel)
    low = min((float(np.nanmin(m - s)) for m, s in bars.values() if len(m)), default=chance)
    axes.set_ylim(min(chance, 10 * math.floor((low - 2) / 10)), 100)
    title = "bars from chance; error bars: ± std" + (f" over {_seeds([np.array([seeds])])}" if seeds else "")
    _legend(figure, handles, title)
    return figure


@styled
def methods_figure(panels: Mapping[str, Mapping[str, np.ndarray]]) -> Figure:
    """One panel per dataset and metric: each method's seeds as dots, its mean ± std as a bar beside them."""
    titles = list(panels)
    columns = len({title.rsplit(" ", 1)[0] for title in titles}) or 1
    rows = math.ceil(len(titles) / columns)
    figure = Figure(figsize=(DOUBLE_COLUMN, 1.9 * rows), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    order = sorted(titles, key=lambda t: (t.rsplit(" ", 1)[1] != "AUC", titles.index(t)))
    for axes, title in zip(grid.flat, order, strict=False):
        methods = list(panels[title])
        for i, method in enumerate(methods):
            values = panels[title][method]
            if not len(values):
                continue
            colour = PALETTE[i % len(PALETTE)]
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
            axes.scatter(i - 0.15 + jitter, values, s=6, color=colour, alpha=0.7, linewidths=0)
            mean, std = mean_std(values.tolist())
            axes.errorbar(i + 0.2, mean, yerr=std, fmt=MARKERS[i % len(MARKERS)], color=colour, markersize=4)
        axes.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
        axes.tick_params(axis="x", length=0)
        axes.set_xlim(-0.6, len(methods) - 0.4)
        axes.set_ylabel(f"{title.rsplit(' ', 1)[1]} (%)")
        axes.set_title(title.rsplit(" ", 1)[0])
    for axes in list(grid.flat)[len(order):]:
        axes.set_visible(False)
    seeds = [np.array([len(v)]) for panel in panels.values() for v in panel.values()]
    handles = [Line2D([], [], linestyle="", marker="o", color=GREY, markersize=2.5, label="one seed"),
               Line2D([], [], linestyle="", marker="o", color=GREY, markersize=4, label="mean ± std")]
    _legend(figure, handles, f"{_seeds(seeds)} per method")
    return figure


@styled
def video_figure(video_id: str, scores: np.ndarray, magnitudes: np.ndarray | None, truth: np.ndarray,
                 *, run: str = "") -> Figure:
    """Anomaly score (left axis) and feature magnitude (right axis) per snippet; abnormal snippets shaded.

    `run` (e.g. "rtfm, seed 0") heads the legend.
    """
    figure = Figure(figsize=(SINGLE_COLUMN, 2.3), layout="constrained")
    axes = figure.subplots()
    axes.grid(False)
    snippets = np.arange(len(scores))
    for start, stop in _runs(truth > 0):
        axes.axvspan(start - 0.5, stop - 0.5, color=GREY, alpha=0.25, linewidth=0)
    handles: list[Any] = [Patch(color=GREY, alpha=0.25, label="ground truth: abnormal")]
    handles += axes.plot(snippets, scores, color=PALETTE[0], label="anomaly score")
    # Probabilities on [0, 1]; a score that is not one (BN-WVAD's distance x sigmoid) sets its own top.
    axes.set_ylim(min(-0.02, float(np.min(scores, initial=0.0))), max(1.02, 1.02 * float(np.max(scores, initial=0.0))))
    axes.set_xlim(-0.5, len(scores) - 0.5)
    axes.set_xlabel(f"snippet of {video_id} ({SNIPPET_FRAMES} frames each)")
    axes.set_ylabel("anomaly score", color=PALETTE[0])
    if magnitudes is not None:
        right = axes.twinx()
        right.grid(False)
        right.spines["right"].set_visible(True)
        handles += right.plot(snippets, magnitudes, color=PALETTE[1], linestyle="--", label="feature magnitude")
        right.set_ylabel(r"feature magnitude $\|x_t\|_2$", color=PALETTE[1])
        right.set_ylim(bottom=0)
    _legend(figure, handles, run)
    return figure


@styled
def separability_figure(aucs: Sequence[Curve], gaps: Sequence[Curve], *,
                        markers: dict[str, float] | None = None) -> Figure:
    """Two panels against k: how the mean of each video's top-k feature magnitudes separates abnormal
    from normal videos, as a video-level AUC and as the standardized gap (abnormal - normal means over
    the pooled std)."""
    figure = Figure(figsize=(DOUBLE_COLUMN, 2.6), layout="constrained")
    left, right = figure.subplots(1, 2)
    for axes, curves, ylabel in ((left, aucs, "video AUC (%)"), (right, gaps, "standardized gap")):
        handles = [_line_with_band(axes, curve, i) for i, curve in enumerate(curves)]
        handles += _markers(axes, markers or {})
        axes.set_xlabel("k (top-k of the 32 pooled segments per video)")
        axes.set_ylabel(ylabel)
    runs = [c.runs for c in aucs if c.runs is not None]
    _legend(figure, handles, f"mean ± std over {_seeds(runs)}" if runs else "")
    return figure


@styled
def curves_figure(groups: Sequence[TrainingCurves]) -> Figure:
    """One panel per logged loss term and per selection metric, against the training step; one line per
    seed, one colour per configuration; the selected step of a selecting protocol marked on its line."""
    terms = _ordered(name for g in groups for c in g.curves for name in c["terms"])
    metrics = _ordered(c["selection"]["metric"] for g in groups for c in g.curves if "selection" in c)
    panels = len(terms) + len(metrics)
    panel_rows = math.ceil(panels / 4)
    columns = math.ceil(panels / panel_rows)
    figure = Figure(figsize=(DOUBLE_COLUMN, 0.5 + 1.5 * panel_rows), layout="constrained")
    axes_grid = figure.subplots(panel_rows, columns, sharex=True, squeeze=False).ravel()
    for extra in axes_grid[panels:]:
        extra.remove()
    term_axes = dict(zip(terms, axes_grid[: len(terms)], strict=True))
    metric_axes = dict(zip(metrics, axes_grid[len(terms) : panels], strict=True))
    handles: list[Any] = []
    for i, group in enumerate(groups):
        line: dict[str, Any] = {"color": PALETTE[i % len(PALETTE)], "linewidth": 0.9}
        # A few logged steps (a short run) are drawn as markers, one shape per configuration.
        dots: dict[str, Any] = {}
        if all(len(curves["steps"]) <= 12 for curves in group.curves):
            dots = {"marker": MARKERS[i % len(MARKERS)], "markersize": 3, "markerfacecolor": "none"}
        for curves in group.curves:
            for name, values in curves["terms"].items():
                term_axes[name].plot(curves["steps"], values, **line, **dots)
            if "selection" in curves:
                _selection_line(metric_axes[curves["selection"]["metric"]], curves["selection"], line)
        seeds = f"{len(group.seeds)} seed{'s' if len(group.seeds) > 1 else ''}"
        handles.append(Line2D([], [], **line, **dots, label=f"{group.label} ({seeds})"))
    for name, axes in term_axes.items():
        axes.set_title("loss (total)" if name == "loss" else name)
        values = np.concatenate([c["terms"][name] for g in groups for c in g.curves if name in c["terms"]])
        if values.min() > 0 and values.max() / values.min() >= 100:
            axes.set_yscale("log")
    width = DOUBLE_COLUMN / columns * 72 / 5  # characters of 8-pt text (about 5 pt each) in a panel's width
    for metric, axes in metric_axes.items():
        axes.set_title(textwrap.fill(f"selection: {metric} (%)", int(width), break_long_words=False))
    if metrics:
        handles.append(Line2D([], [], linestyle="none", label="selected step", **_SELECTED))
    axes_grid[0].set_xlim(left=0)
    for axes in axes_grid[:panels]:
        axes.xaxis.set_tick_params(labelbottom=True)  # a panel above an empty slot keeps its labels
    figure.supxlabel("training step", fontsize=8)
    _legend(figure, handles, "one line per seed")
    return figure


#: What the dotted vertical lines of the k figures mark.
MARKER_MEANING = "anomaly length μ, in segments"
_MARKER: dict[str, Any] = {"linestyle": ":", "color": GREY, "linewidth": 1.0}
_SELECTED: dict[str, Any] = {"marker": "*", "markersize": 7, "markerfacecolor": "white", "markeredgecolor": "black",
             "markeredgewidth": 0.5}


def _selection_line(axes: Any, selection: dict[str, Any], line: dict[str, Any]) -> None:
    """The selection metric (percent) at each check in style `line`, the selected step starred (when it was
    a scored checkpoint: a run in which no checkpoint qualified keeps its final weights, unscored)."""
    values = [np.nan if v is None else 100 * v for v in selection["values"]]
    axes.plot(selection["steps"], values, **line)
    if selection["selected_step"] in selection["steps"]:
        chosen = selection["steps"].index(selection["selected_step"])
        axes.plot(selection["selected_step"], values[chosen], linestyle="none",
                  **{**_SELECTED, "markerfacecolor": line["color"]})


def _line_with_band(axes: Any, curve: Curve, index: int) -> Any:
    """Draw `curve` in colour `index` with its ± spread band; the legend handle shows both."""
    color = PALETTE[index % len(PALETTE)]
    line = axes.plot(curve.x, curve.y, color=color, marker=MARKERS[index % len(MARKERS)], label=curve.label,
                     markevery=max(1, len(curve.x) // 8))[0]  # a dense line keeps a few markers
    if curve.spread is None:
        return line
    band = axes.fill_between(curve.x, curve.y - curve.spread, curve.y + curve.spread, color=color, alpha=0.2,
                             linewidth=0)
    return (band, line)


def _legend(figure: Figure, handles: Sequence[Any], title: str) -> None:
    """One legend above the axes, outside the data, in as few rows as fit."""
    if not handles:
        return
    labels = [h.get_label() if hasattr(h, "get_label") else h[-1].get_label() for h in handles]
    # An entry is about 4 pt per character of 7-pt text plus 30 pt of handle and spacing.
    per_entry = 4 * max(map(len, labels)) + 30
    per_row = max(1, min(len(labels), int(figure.get_figwidth() * 72 / per_entry)))
    figure.legend(handles, labels, loc="outside upper center", ncols=per_row, title=title or None,
                  columnspacing=1.2)


def _seeds(runs: Sequence[np.ndarray]) -> str:
    """'3 seeds', or '2–3 seeds' when points rest on different numbers of runs."""
    counts = np.concatenate([np.atleast_1d(r) for r in runs]) if runs else np.zeros(1, dtype=int)
    low, high = int(counts.min()), int(counts.max())
    return f"{low} seed" if high == 1 else f"{low}–{high} seeds" if low != high else f"{low} seeds"


def _ticks_at(axes: Any, values: np.ndarray) -> None:
    """Ticks at the swept values (when few), written as plain numbers even on a log axis."""
    if not 0 < len(values) <= 12:
        return
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticks(values)
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    axes.xaxis.set_major_formatter(formatter)


def _markers(axes: Any, markers: Mapping[str, float]) -> list[Any]:
    """Dotted vertical lines, each labelled above the axes (out of the data); the legend handle."""
    for label, position in markers.items():
        axes.axvline(position, **_MARKER)
        axes.annotate(label, (position, 1), xycoords=("data", "axes fraction"), xytext=(0, 2),
                      textcoords="offset points", color=GREY, fontsize=7, ha="center", va="bottom")
    return [Line2D([], [], label=MARKER_MEANING, **_MARKER)] if markers else []


def _ordered(names: Iterable[str]) -> list[str]:
    """Distinct names in first-seen order, ``loss`` first."""
    seen = list(dict.fromkeys(names))
    return sorted(seen, key=lambda name: name != "loss")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index ranges where `mask` is true."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


# --- output -------------------------------------------------------------------------------------------


def check_outputs(paths: Sequence[str]) -> list[Path]:
    """`paths` as Paths; a suffix that names no supported format is a usage error (before any drawing)."""
    for path in paths:
        if Path(path).suffix.lower() not in FORMATS:
            raise UsageError(f"--output {path}: the suffix names the format; expected {', '.join(FORMATS)}")
    return [Path(path) for path in paths]


@styled
def save(figure: Figure, paths: Sequence[Path]) -> None:
    """Write `figure` to each path in the format of its suffix (PNG at `DPI`), all rendered before any
    is written; dates are left out so that the same figure gives the same file."""
    rendered = []
    for path in paths:
        buffer = io.BytesIO()
        suffix = path.suffix.lower()
        metadata = {"CreationDate": None} if suffix == ".pdf" else {"Date": None} if suffix == ".svg" else None
        figure.savefig(buffer, format=suffix[1:], dpi=DPI, metadata=metadata)
        rendered.append(buffer.getvalue())
    for path, data in zip(paths, rendered, strict=True):
        try:
            path.write_bytes(data)
        except OSError as error:
            raise UsageError(f"--output {path}: cannot write the figure ({error.strerror})") from None


# --- from stored runs ---------------------------------------------------------------------------------


def draw(
    kind: str,
    results: Sequence[RunResult],
    *,
    store: RunStore,
    grid: Grid | None = None,
    x: str | None = None,
    method: str | None = None,
    seed: int | None = None,
    video: str | None = None,
    max_k: int = 24,
) -> Figure:
    """The figure `kind` (sweep, methods, per-class, video, separability, curves) of `results`, finished runs of
    `grid` (`vadbench.plan.grid.stored_runs`); `curves` needs no grid (the runs of a store)."""
    if kind == "curves":
        return curves_figure(collect_curves(_named_method(results, method), store))
    if grid is None:
        raise UsageError(f"plot {kind} draws the runs of a grid file; only plot curves takes a run store")
    if kind == "sweep":
        return _draw_sweep(grid, results, x)
    if kind == "methods":
        return methods_figure(collect_methods([r for r in grid_rows(grid, results) if r.honest]))
    if kind == "per-class":
        classes, bars, seeds = collect_per_class([r for r in grid_rows(grid, results) if r.honest])
        return per_class_figure(classes, bars, seeds=seeds)
    chosen = _of_method(grid, results, method)
    truth = store.test_truth(chosen[0].spec)
    if kind == "video":
        return _draw_video(chosen, store, truth, seed, video)
    if kind == "separability":
        return _draw_separability(chosen, store, truth, max_k)
    raise UsageError(f"unknown plot {kind!r}; plots are: sweep, methods, per-class, video, separability, curves")


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


def _named_method(results: Sequence[RunResult], method: str | None) -> list[RunResult]:
    if method is None:
        return list(results)
    chosen = [r for r in results if r.spec.method == method]
    if not chosen:
        names = ", ".join(dict.fromkeys(r.spec.method for r in results))
        raise UsageError(f"--method {method}: no run of it to plot; methods: {names}")
    return chosen


def _draw_sweep(grid: Grid, results: Sequence[RunResult], x: str | None) -> Figure:
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
    curves, references = collect_sweep([r for r in grid_rows(grid, results) if r.honest], x)
    if not curves:
        raise UsageError(f"--x {x}: no honest finished run has option {x} to plot against")
    xlabel = f"{x} ({counts} of {TRAIN_SEGMENTS} pooled segments per video)" if counts else None
    return sweep_figure(curves, x, references=references, markers=markers, xlabel=xlabel)


def _of_method(grid: Grid, results: Sequence[RunResult], method: str | None) -> list[RunResult]:
    method = method or grid.methods[0]
    chosen = [r for r in results if r.spec.method == method and parse_protocol(r.spec.protocol).honest]
    if not chosen:
        raise UsageError(f"--method {method}: no honest run of it in {grid.path}; methods: {', '.join(grid.methods)}")
    variants = {(repr(sorted(r.spec.method_options.items())), repr(sorted(r.spec.dataset_options.items())),
                 r.spec.steps, r.spec.protocol) for r in chosen}
    if len(variants) > 1:
        raise UsageError(f"--method {method}: {grid.path} runs it in {len(variants)} configurations (a sweep); "
                         "pick one with --where OPTION=VALUE")
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
                        run=f"{run.spec.method}, seed {run.spec.seed}")


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
    return separability_figure(aucs, gaps, markers=anomaly_marker(runs[0].config) or None)
