"""Stored runs -> rows: the one aggregation behind every table and figure, and the one table renderer.

A row is one configuration: the runs whose identity (`RunSpec.identity`) differs only in the seed and in
the dataset's replicate options (UCSD's weak split seed: `Dataset.replicate_options`, recorded in each
result), so they are replicates of one experiment and are averaged over. Each replicate reads its own
data (its fingerprint names the split too), so such a row spans several fingerprints, but never two of
one replicate (a feature file edited between runs): that is an error, not an average. A view may keep
replicate options apart (a grid that sweeps the split shows one row per split). Each run counts once
(one key: its first result). The rows are a pandas group-by of the runs' frame (`vadbench.report.frame`,
one row per run, as `vadbench.results` gives it), and a cell is the mean ± population std (ddof 0) of a
column of a row's group over its successful runs that recorded it, in percent; failed runs are counted,
never averaged. The means and stds are numpy's (`vadbench.report.stats.mean_std`), as they always were:
pandas' own group-by mean and std round differently (in the last bit, for about half of random groups
of five runs), which could move a rounded cell.

The views choose and format rows: `vadbench.report.leaderboard` (every stored run), `vadbench.report.tables` (a grid's
leaderboard, comparison and ablation) and the figures (`vadbench.report.plotdata`). `render_table` writes any view
as markdown, csv or latex. What the views need to know about a plugin (replicate options, check-mark columns, options
counted in training segments) is recorded in each result's config when it is stored (`report_metadata`),
so this path needs no plugin and never imports torch.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import InitVar, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import pandas as pd
from tabulate import tabulate

from vadbench.api.errors import UsageError
from vadbench.api.types import RunResult, RunSpec
from vadbench.plan.protocols import parse_protocol
from vadbench.plan.widths import FEATURE_DEFAULTS, data_defaults
from vadbench.report.frame import feature_set, run_frame
from vadbench.report.stats import mean_std

if TYPE_CHECKING:
    from vadbench.api.dataset import Dataset
    from vadbench.api.method import Method
    from vadbench.plugins.manager import Plugins

FORMATS = ("md", "csv", "latex")
#: Config keys of the plugin declarations the views read (`report_metadata`).
REPLICATES = "report.replicates"
MARKS = "report.marks"
SEGMENT_OPTIONS = "report.segment_options"


def report_metadata(method: type[Method], dataset: type[Dataset]) -> dict[str, Any]:
    """What tables and figures need to know about a run's method and dataset classes, for its config:
    the dataset's replicate options, the method's check-mark options (option -> column title) and its
    options counted in pooled training segments (option -> what they count)."""
    return {
        REPLICATES: sorted(dataset.replicate_options),
        MARKS: dict(method.presentation.table_marks),
        SEGMENT_OPTIONS: dict(method.presentation.segment_options),
    }


def recorded(plugins: Plugins, spec: RunSpec) -> dict[str, Any]:
    """The report metadata of `spec`'s method and dataset (`report_metadata`), and the defaults the method
    takes for the dataset's data (`vadbench.plan.widths`), for its result's config."""
    return {
        **report_metadata(plugins.methods.get(spec.method).cls, plugins.datasets.get(spec.dataset).cls),
        FEATURE_DEFAULTS: data_defaults(plugins, spec.method, spec.dataset, spec.full_dataset_options(), {}),
    }


def mixed_feature_sets(board: Iterable[Row]) -> list[str]:
    """A note for every dataset whose rows read different feature sets: their numbers are not one comparison."""
    found: dict[str, dict[str, None]] = {}
    for row in board:
        found.setdefault(row.spec.dataset, {})[row.features] = None
    return [f"Rows of {dataset} read different feature sets ({', '.join(sets)}): compare rows of one feature set "
            "only." for dataset, sets in found.items() if len(sets) > 1]


def stand_in_prompts(board: Iterable[Row]) -> list[str]:
    """A note naming the rows whose runs trained with the stand-in class prompts (`vadbench.data.prompts`)."""
    marked = [f"{row.spec.method} on {row.spec.dataset}" for row in board
              if any(r.config.get("benchmark.prompts") == "stand-in" for r in row.results)]
    if not marked:
        return []
    return [f"Stand-in prompt vectors (no prompts file; one fixed random direction per class name, no language): "
            f"{', '.join(dict.fromkeys(marked))}."]


def has_report_metadata(result: RunResult) -> bool:
    """False for a result stored by a version of vadbench that did not record `report_metadata`."""
    return REPLICATES in result.config


@dataclass
class Row:
    """One configuration and its runs (`rows`); `sweep` holds a grid view's swept values.

    `runs` is the runs' frame (`vadbench.report.frame.run_frame`; `rows` passes each row its group of the
    frame of every run), whose columns the cells are computed from; `results` are the runs themselves, for
    what needs their scores or configs (differences, figures)."""

    spec: RunSpec  # the first run's spec: all runs share it but for the seed and the averaged options
    averaged: frozenset[str] = frozenset()  # the replicate options averaged over
    results: list[RunResult] = field(default_factory=list)
    sweep: dict[str, Any] = field(default_factory=dict)
    frame: InitVar[pd.DataFrame | None] = None
    runs: pd.DataFrame = field(init=False, repr=False)

    def __post_init__(self, frame: pd.DataFrame | None) -> None:
        self.runs = run_frame(self.results) if frame is None else frame

    @property
    def ok(self) -> list[RunResult]:
        return [r for r in self.results if r.status == "ok"]

    @property
    def failed(self) -> int:
        return int((self.runs["status"] != "ok").sum())

    @property
    def honest(self) -> bool:
        """False for runs selected on the test set (views render them apart)."""
        return parse_protocol(self.spec.protocol).honest

    @property
    def data(self) -> str:
        """The fingerprint of the data the runs read ("" for generated data, or replicates of several)."""
        fingerprints = self.runs["data"].fillna("").unique()
        return str(fingerprints[0]) if len(fingerprints) == 1 else ""

    @property
    def config(self) -> dict[str, Any]:
        """The recorded config of the row's first successful run (else its first run)."""
        return (self.ok or self.results)[0].config

    @property
    def features(self) -> str:
        """The feature set the runs read (`feature_set`)."""
        return feature_set(self.config)

    @property
    def parameters(self) -> int | None:
        """The model's trainable parameters, as recorded by a run of the row (None: stored before it was)."""
        counts = self.runs["parameters"].dropna()
        return int(counts.iloc[0]) if len(counts) else None

    def stat(self, column: str) -> Stat:
        """Mean ± std in percent of a metric (a column of `runs`) over the successful runs that recorded it
        (NaN when none did)."""
        return Stat(*mean_std(self.recorded(column) * 100))

    def mean(self, column: str) -> float | None:
        """The mean of a column of `runs` (a metric, ``timings.<name>``) over the successful runs that
        recorded it (None when none did)."""
        values = self.recorded(column)
        return float(np.mean(values)) if len(values) else None

    def recorded(self, column: str) -> np.ndarray:
        """The numbers of `column` that the successful runs recorded, in run order."""
        if column not in self.runs:
            return np.zeros(0)
        return self.runs.loc[self.runs["status"] == "ok", column].dropna().to_numpy(dtype=float)

    @property
    def options(self) -> str:
        """The options that make this configuration differ from the defaults (``steps=500``), and how it was
        computed when that changes the numbers (``compile=True``, ``stacked=0,1,2``, the CPU ``threads``, the
        ``checkpoint`` of given weights);
        averaged replicate options are left out."""
        spec = self.spec
        options: dict[str, Any] = {**spec.dataset_options, **spec.method_options}
        if spec.steps is not None:
            options["steps"] = spec.steps  # the run's schedule overrides any dataset suggestion
        if spec.compile:
            options["compile"] = True
        if spec.stacked:
            options["stacked"] = ",".join(map(str, spec.stacked))
        if spec.threads is not None:
            options["threads"] = spec.threads
        if spec.checkpoint is not None:  # weights from a file (protocol given): which file, by its SHA-256
            options["checkpoint"] = spec.checkpoint[:12]
        return " ".join(f"{key}={value}" for key, value in sorted(options.items()) if key not in self.averaged)


def rows(results: Iterable[RunResult], *, keep: Iterable[str] = ()) -> list[Row]:
    """`results` grouped into configurations (a group-by of their frame), in the order they first appear. A run
    given twice (one key) counts once. Replicate options named in `keep` are kept apart instead of averaged
    over."""
    given = list(results)
    kept = set(keep)
    runs = run_frame(given)
    runs = runs[~runs["key"].duplicated()]
    averaged = {i: frozenset(given[i].config.get(REPLICATES, ())) - kept for i in runs.index}
    configurations = pd.Series({i: configuration(given[i].spec, averaged[i]) for i in runs.index}, dtype=object)
    board = []
    for _, group in runs.groupby(configurations, sort=False):
        first = group.index[0]
        row = Row(given[first].spec, averaged[first], [given[i] for i in group.index], frame=group)
        _check_replicates(row)
        board.append(row)
    return board


def configuration(spec: RunSpec, averaged: frozenset[str]) -> str:
    """What a run's row is (its `rows` group): its identity but for the seed and the `averaged` replicate
    options, whose data differ by design (`_check_replicates`)."""
    identity = {name: value for name, value in spec.identity().items() if name != "seed"}
    identity["dataset_options"] = {k: v for k, v in spec.dataset_options.items() if k not in averaged}
    if averaged:
        identity.pop("data", None)
    return json.dumps(identity, sort_keys=True, default=str)


def _check_replicates(row: Row) -> None:
    """Refuse a row whose runs of one replicate read different data: two versions of one benchmark."""
    versions: dict[str, set[str]] = {}
    for result in row.results:
        versions.setdefault(json.dumps(result.spec.dataset_options, sort_keys=True, default=str), set()).add(
            result.spec.data or "")
    for options, data in versions.items():
        if len(data) > 1:
            raise UsageError(f"{row.spec.method} on {row.spec.dataset} {options}: runs on {len(data)} versions of "
                             f"the data ({', '.join(sorted(data))}) cannot be averaged over "
                             f"{', '.join(sorted(row.averaged))}; keep the runs of one version in the store")


# --- rendering ----------------------------------------------------------------------------------------


class Cell(Protocol):
    """A typed table cell: one text in markdown and latex, `SUFFIXES` columns of numbers in csv."""

    SUFFIXES: ClassVar[tuple[str, ...]]

    def text(self, fmt: str) -> str: ...

    def fields(self) -> list[str]: ...


@dataclass(frozen=True)
class Stat:
    """Mean ± std of a row's runs, in percent (NaN: no run recorded the metric, shown as missing)."""

    SUFFIXES: ClassVar[tuple[str, ...]] = ("mean", "std")
    mean: float
    std: float

    def text(self, fmt: str) -> str:
        if self.mean != self.mean:
            return "-"
        plus_minus = "$\\pm$" if fmt == "latex" else "±"
        return f"{self.mean:.2f} {plus_minus} {self.std:.2f}"

    def fields(self) -> list[str]:
        return ["" if value != value else f"{value:.4f}" for value in (self.mean, self.std)]


def render_table(headers: Sequence[str], body: Sequence[Sequence[Any]], fmt: str) -> str:
    """One table: markdown (pipe), latex, or csv, where a column of typed cells (`Stat`, a bootstrap
    `Difference`) becomes one column per number (``AUC_mean``, ``AUC_std``) and a missing value is empty."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt != "csv":
        lines = [[cell if isinstance(cell, str) else cell.text(fmt) for cell in line] for line in body]
        style = "pipe" if fmt == "md" else "latex_raw"
        return str(tabulate(lines, headers=list(headers), tablefmt=style, disable_numparse=True))
    widths = [_suffixes(body, column) for column in range(len(headers))]
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([f"{title}_{s}" if s else title for title, suffixes in zip(headers, widths, strict=True)
                     for s in suffixes])
    for line in body:
        writer.writerow([field for cell, suffixes in zip(line, widths, strict=True)
                         for field in _fields(cell, suffixes)])
    return stream.getvalue()


def _suffixes(body: Sequence[Sequence[Any]], column: int) -> tuple[str, ...]:
    """The csv columns of a table column: those of its typed cells, else one."""
    typed = next((line[column] for line in body if not isinstance(line[column], str)), None)
    return typed.SUFFIXES if typed is not None else ("",)


def _fields(cell: Any, suffixes: tuple[str, ...]) -> list[str]:
    if not isinstance(cell, str):
        return list(cell.fields())
    return [""] * len(suffixes) if cell == "-" else [cell]  # "-" (missing) is empty, as NaN
