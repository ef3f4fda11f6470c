"""Drawing the figures of `vadbench plot` (matplotlib; vector PDF or SVG, 300-dpi PNG) from the data that
`vadbench.report.plotdata` collects from the run store; `draw` does both for the command line.

- `sweep_figure`: AUC against a swept option (k, margin, number of abnormal training videos), one
  line per method, mean and a band of +- std over seeds; a method without the swept option is a
  dashed horizontal reference line at its mean, labelled as such; the anomaly length marked on a k
  axis is labelled in the axis's unit, segments (`plotdata.anomaly_marker`);
- `per_class_figure`: per-class AUC of several methods side by side. Bars start at chance (AUC 50,
  a random score), the marked reference line, so a bar's length is its gain over chance and a bar
  below the line is worse than chance; starting at 0 would show a chance-level score as a tall bar;
- `video_figure`: anomaly score and feature magnitude over one test video, ground truth shaded;
- `separability_figure`: how well the mean of the top-k feature magnitudes tells abnormal from
  normal videos as k grows (the paper's Theorem 1: it rises up to about the anomaly length);
- `methods_figure`: methods side by side, one panel per dataset and metric (AUC, AP), titled by what it
  shows: every seed's value as a dot and the mean ± std beside it, so a spread over seeds is seen;
- `curves_figure`: how runs trained: each logged loss term against the step, a colour and marker per
  configuration and a line style per seed, and the selection metric of a selecting protocol with the
  selected step marked (a selection that scored no checkpoint has no panel; its legend entry says so).

Every figure is drawn in one style (`STYLE`, `styled`): sizes in inches that fit a paper column
(`SINGLE_COLUMN`, `DOUBLE_COLUMN`), 7-8 pt text, the colour-blind-safe palette of Okabe and Ito (with
a marker per line, for grey-scale print), no top and right spines, no titles but a panel's (captions
belong in the paper). Lines that may coincide (two configurations that trained alike, two methods at
one value) are nested (`_nested`): the first drawn widest, each later one narrower on top of it, so no
series hides another. `save` writes the formats that the file suffixes name. Only matplotlib's object
API is used (no pyplot, no global backend).
"""

from __future__ import annotations

import functools
import io
import math
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullLocator, ScalarFormatter

from vadbench.api.errors import UsageError
from vadbench.api.types import SNIPPET_FRAMES, RunResult
from vadbench.plan.grid import Grid
from vadbench.report import plotdata
from vadbench.report.plotdata import MARKER_MEANING, Curve, Panel, Reference, TrainingCurves
from vadbench.report.stats import mean_std
from vadbench.report.store import RunStore

#: Widths in inches of a single and a double column of a two-column paper (CVPR, ICCV, IEEE).
SINGLE_COLUMN, DOUBLE_COLUMN = 3.4, 7.0
#: Okabe and Ito's colour-blind-safe palette (yellow left out: too pale on white), and a marker per colour.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: A line style per seed (`curves_figure`): solid, dashed, dotted, dash-dot, long dashes, dash-dot-dot.
SEED_STYLES: tuple[Any, ...] = ("-", (0, (4, 1.5)), (0, (1, 1.2)), (0, (4, 1.5, 1, 1.5)), (0, (8, 2)),
                                (0, (4, 1.5, 1, 1.5, 1, 1.5)))
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
    "lines.scale_dashes": False,  # one seed's dashes alike on nested lines of different widths
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


# --- figures ------------------------------------------------------------------------------------------


@styled
def sweep_figure(curves: Sequence[Curve], x: str, *, references: Sequence[Reference] = (),
                 markers: dict[str, float] | None = None, ylabel: str = "frame-level AUC (%)",
                 xlabel: str | None = None) -> Figure:
    """Lines with std bands against `x`, references as dashed horizontal lines with their own band;
    `markers` draws labelled vertical lines (e.g. the anomaly length, `plotdata.anomaly_marker`)."""
    figure = Figure(figsize=(SINGLE_COLUMN, 2.5), layout="constrained")
    axes = figure.subplots()
    handles = [_line_with_band(axes, curve, i, len(curves)) for i, curve in enumerate(curves)]
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
def methods_figure(panels: Sequence[Panel]) -> Figure:
    """A panel per dataset (columns) and metric (rows), titled by what it shows (``AUC on synthetic``): each
    method's seeds as dots, its mean ± std as a bar beside them."""
    datasets = list(dict.fromkeys(panel.dataset for panel in panels))
    metrics = list(dict.fromkeys(panel.metric for panel in panels))
    figure = Figure(figsize=(DOUBLE_COLUMN, 1.9 * max(1, len(metrics))), layout="constrained")
    grid = figure.subplots(max(1, len(metrics)), max(1, len(datasets)), squeeze=False)
    for panel in panels:
        axes = grid[metrics.index(panel.metric), datasets.index(panel.dataset)]
        methods = list(panel.values)
        for i, method in enumerate(methods):
            values = panel.values[method]
            if not len(values):
                continue
            colour = PALETTE[i % len(PALETTE)]
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
            axes.scatter(i - 0.15 + jitter, values, s=6, color=colour, alpha=0.7, linewidths=0)
            mean, std = mean_std(values)
            axes.errorbar(i + 0.2, mean, yerr=std, fmt=MARKERS[i % len(MARKERS)], color=colour, markersize=4)
        axes.set_xticks(range(len(methods)), methods, rotation=30, ha="right")
        axes.tick_params(axis="x", length=0)
        axes.set_xlim(-0.6, len(methods) - 0.4)
        axes.set_ylabel(f"{plotdata.metric_title(panel.metric)} (%)")
        axes.set_title(panel.title)
    drawn = {id(grid[metrics.index(p.metric), datasets.index(p.dataset)]) for p in panels}
    for axes in grid.flat:
        axes.set_visible(id(axes) in drawn)
    seeds = [np.array([len(v)]) for panel in panels for v in panel.values.values()]
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
        handles = [_line_with_band(axes, curve, i, len(curves)) for i, curve in enumerate(curves)]
        handles += _markers(axes, markers or {})
        axes.set_xlabel("k (top-k of the 32 pooled segments per video)")
        axes.set_ylabel(ylabel)
    runs = [c.runs for c in aucs if c.runs is not None]
    _legend(figure, handles, f"mean ± std over {_seeds(runs)}" if runs else "")
    return figure


@styled
def curves_figure(groups: Sequence[TrainingCurves]) -> Figure:
    """One panel per logged loss term and per selection metric, against the training step: a colour and
    marker per configuration (nested, `_nested`, so that configurations that trained alike both show), a
    line style per seed (`SEED_STYLES`); the selected step of a selecting protocol starred on its line.

    A selection metric that no run scored (every check came before the first one its protocol scores) has
    no panel, and the configurations that scored none say so in the legend."""
    terms = _ordered(name for g in groups for c in g.curves for name in c["terms"])
    metrics = _ordered(c["selection"]["metric"] for g in groups for c in g.curves if _scored(c))
    seeds = sorted({seed for group in groups for seed in group.seeds})
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
        nested = _nested(i, len(groups))
        line: dict[str, Any] = {"color": PALETTE[i % len(PALETTE)], "linewidth": nested["linewidth"]}
        # A few logged steps (a short run) are drawn as markers, one shape per configuration.
        dots: dict[str, Any] = {}
        if all(len(curves["steps"]) <= 12 for curves in group.curves):
            dots = {"marker": MARKERS[i % len(MARKERS)], "markersize": nested["markersize"], "markerfacecolor": "none"}
        for seed, curves in zip(group.seeds, group.curves, strict=True):
            style = {**line, "linestyle": SEED_STYLES[seeds.index(seed) % len(SEED_STYLES)]}
            for name, values in curves["terms"].items():
                term_axes[name].plot(curves["steps"], values, **style, **dots, label=f"{group.label}, seed {seed}")
            if _scored(curves):
                _selection_line(metric_axes[curves["selection"]["metric"]], curves["selection"], style)
        count = f"{len(group.seeds)} seed{'s' if len(group.seeds) > 1 else ''}"
        unscored = "; no checkpoint scored, final weights" if group.unscored else ""
        handles.append(Line2D([], [], **line, **dots, label=f"{group.label} ({count}{unscored})"))
    if len(seeds) > 1:
        handles += [Line2D([], [], color=GREY, linewidth=1.0, linestyle=SEED_STYLES[i % len(SEED_STYLES)],
                           label=f"seed {seed}") for i, seed in enumerate(seeds)]
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
    _legend(figure, handles, "colour and marker: configuration; line style: seed")
    return figure


_MARKER: dict[str, Any] = {"linestyle": ":", "color": GREY, "linewidth": 1.0}
_SELECTED: dict[str, Any] = {"marker": "*", "markersize": 7, "markerfacecolor": "white", "markeredgecolor": "black",
             "markeredgewidth": 0.5}


def _scored(curves: dict[str, Any]) -> bool:
    """Whether a run's stored curves hold a selection metric with at least one scored check."""
    return bool(curves.get("selection", {}).get("steps"))


def _selection_line(axes: Any, selection: dict[str, Any], line: dict[str, Any]) -> None:
    """The selection metric (percent) at each check in style `line`, the selected step starred (when it was
    a scored checkpoint: a run in which no checkpoint qualified keeps its final weights, unscored)."""
    values = [np.nan if v is None else 100 * v for v in selection["values"]]
    axes.plot(selection["steps"], values, **line)
    if selection["selected_step"] in selection["steps"]:
        chosen = selection["steps"].index(selection["selected_step"])
        axes.plot(selection["selected_step"], values[chosen], linestyle="none",
                  **{**_SELECTED, "markerfacecolor": line["color"]})


def _line_with_band(axes: Any, curve: Curve, index: int, count: int) -> Any:
    """Draw `curve`, line `index` of `count`, in its colour and marker, nested (`_nested`), with its ± spread
    band; the legend handle shows both."""
    color = PALETTE[index % len(PALETTE)]
    line = axes.plot(curve.x, curve.y, color=color, marker=MARKERS[index % len(MARKERS)], label=curve.label,
                     markevery=max(1, len(curve.x) // 8), **_nested(index, count))[0]  # a dense line: a few markers
    if curve.spread is None:
        return line
    band = axes.fill_between(curve.x, curve.y - curve.spread, curve.y + curve.spread, color=color, alpha=0.2,
                             linewidth=0)
    return (band, line)


def _nested(index: int, count: int) -> dict[str, float]:
    """Line width and marker size of line `index` of `count` drawn in order: the first widest, each later
    one narrower, so that a line coinciding with an earlier one is drawn inside it and both stay visible."""
    depth = count - 1 - index
    return {"linewidth": STYLE["lines.linewidth"] + 0.7 * depth, "markersize": STYLE["lines.markersize"] + 1.4 * depth}


def _legend(figure: Figure, handles: Sequence[Any], title: str) -> None:
    """One legend above the axes, outside the data, in as few rows as fit."""
    if not handles:
        return
    labels = [h.get_label() if hasattr(h, "get_label") else h[-1].get_label() for h in handles]
    figure.legend(handles, labels, loc="outside upper center", ncols=_columns(labels, figure.get_figwidth() * 72),
                  title=title or None, columnspacing=1.2)


def _columns(labels: Sequence[str], width: float) -> int:
    """The most legend columns that fit `width` points: matplotlib fills the columns one after the other,
    each as wide as its longest entry, about 4 pt per character of 7-pt text plus 30 pt of handle and
    spacing (so one long entry does not force every entry onto a row of its own)."""
    for columns in range(len(labels), 1, -1):
        split = np.array_split(np.array([len(label) for label in labels]), columns)
        if sum(4 * int(column.max()) + 30 for column in split) <= width:
            return columns
    return 1


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
    `grid` (`vadbench.plan.grid.stored_runs`), from the data `vadbench.report.plotdata` collects; `curves`
    needs no grid (the runs of a store)."""
    if kind == "curves":
        return curves_figure(plotdata.curves(results, store, method))
    if grid is None:
        raise UsageError(f"plot {kind} draws the runs of a grid file; only plot curves takes a run store")
    if kind == "sweep":
        swept = plotdata.sweep(grid, results, x)
        return sweep_figure(swept.curves, swept.x, references=swept.references, markers=swept.markers,
                            xlabel=swept.xlabel)
    if kind == "methods":
        return methods_figure(plotdata.methods(grid, results))
    if kind == "per-class":
        bars = plotdata.per_class(grid, results)
        return per_class_figure(bars.classes, bars.bars, seeds=bars.seeds)
    if kind == "video":
        one = plotdata.video(grid, results, store, method=method, seed=seed, video_id=video)
        return video_figure(one.video_id, one.scores, one.magnitudes, one.truth, run=one.run)
    if kind == "separability":
        topk = plotdata.separability(grid, results, store, method=method, max_k=max_k)
        return separability_figure(topk.aucs, topk.gaps, markers=topk.markers or None)
    raise UsageError(f"unknown plot {kind!r}; plots are: sweep, methods, per-class, video, separability, curves")
