"""Views of a grid's results: leaderboard (with sweep columns), Table-5-style ablation, comparisons.

The rows are `vadbench.report.aggregate.rows` of the grid's runs, with the grid's swept options kept apart
(a grid that sweeps UCSD's split shows one row per split). Cells are mean ± std over seeds in percent.
Rows follow the grid file's order. Runs selected on the test set (protocol ``oracle-test``) are always
rendered in their own, labelled section below the honest rows, never in the same table (csv: one
machine-readable table of every row, the protocol telling them apart). The papers' numbers appear only
in columns marked "reported". Differences come with a paired bootstrap interval, computed from the
stored scores and the test set's ground truth stored once per benchmark in the run store. Never imports
torch and needs no plugin and no data root.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.types import RunResult, RunSpec
from vadbench.plan.grid import Grid, read_toml
from vadbench.report.aggregate import MARKS, Row, mixed_feature_sets, rows, stand_in_prompts
from vadbench.report.leaderboard import GROUP, Table, leaderboard, render_board, value
from vadbench.report.metrics import METRICS
from vadbench.report.stats import Difference, bootstrap_metrics, paired_bootstrap
from vadbench.report.store import RunStore, TestTruth

#: The columns shown unless others are chosen (an ablation table shows AUC only).
DEFAULT_METRICS = ("auc", "ap")


def grid_rows(grid: Grid, results: Sequence[RunResult]) -> list[Row]:
    """The rows of a grid's results (its swept options kept apart), each with its swept values."""
    found = rows(results, keep=grid.sweep_options)
    for row in found:
        row.sweep = {key.rpartition(".")[2]: grid.swept_value(key, row.results[0].config) for key in grid.sweep}
    return found


def render_grid(
    grid: Grid, results: Sequence[RunResult], *, store: RunStore, fmt: str = "md",
    metrics: Sequence[str] | None = None,
) -> str:
    """The grid's table (its `table.kind`) with its title, honest rows first, test-selected rows in their own
    section, then the notes (`vadbench.report.leaderboard.render_board`; csv: the one table of every row).

    `metrics` chooses the metric columns (default: the table kind's own); a metric that no run of a row
    recorded is shown as "-" (csv: empty), never as 0.
    """
    if not results:
        raise UsageError(f"{grid.path}: no results to render")
    all_rows = grid_rows(grid, results)
    comparer = _Comparer(grid, store)
    comparer.index(results)
    reported = Reported.load(grid)

    def table(section: list[Row], oracle: bool) -> Table:
        headers, body = _TABLES[grid.table.kind](grid, section, comparer, metrics, fmt)
        # The papers' (test-selected) numbers go beside our honest ones only once.
        return (headers, body) if oracle else reported.extend(headers, body)

    return render_board(all_rows, table, fmt, title=grid.title,
                        notes=lambda: [*reported.notes(), *_notes(grid, all_rows, comparer)])


def _leaderboard(
    grid: Grid, section: list[Row], comparer: _Comparer, metrics: Sequence[str] | None, fmt: str
) -> Table:
    """`vadbench.report.leaderboard.leaderboard` with a column per swept option, then the parameters and time
    per step, the selected step under a selecting protocol, and the difference to protocol `last` when the
    grid has several protocols."""
    columns = [*GROUP, *grid.sweep_options]

    def describe(row: Row) -> list[str]:
        return [*(value(row, column) for column in GROUP), *map(_show, row.sweep.values())]

    headers, body = leaderboard(section, columns, describe, metrics or DEFAULT_METRICS, fmt)
    headers += ["params", "ms/step"]
    for line, row in zip(body, section, strict=True):
        line += [_count(row.parameters), _whole(row.mean("timings.ms_per_step"))]
    if grid.protocols != ("last",):
        # A selecting protocol: the step whose weights were evaluated.
        headers.append("selected step")
        for line, row in zip(body, section, strict=True):
            line.append(_whole(row.mean("selected_step")))
    if len(grid.protocols) > 1:
        # Several protocols: show each against `last` (same runs but the selection, same test videos);
        # in the test-selected section this is the optimism of selecting on the test set.
        headers.append("Δ AUC vs last [95% CI]")
        for line, row in zip(body, section, strict=True):
            line.append(comparer.describe(row, comparer.protocol_partner))
    return headers, body


def _comparison(
    grid: Grid, section: list[Row], comparer: _Comparer, metrics: Sequence[str] | None, fmt: str
) -> Table:
    """The leaderboard, plus the difference of each row to the baseline method's row in each shown metric
    a paired bootstrap can compare (AUC, AP)."""
    headers, body = _leaderboard(grid, section, comparer, metrics, fmt)
    for metric in [m for m in metrics or DEFAULT_METRICS if m in bootstrap_metrics()]:
        headers = [*headers, f"Δ {_title(metric)} vs {grid.table.baseline} [95% CI]"]
        for line, row in zip(body, section, strict=True):
            line.append(comparer.describe(row, comparer.method_partner, metric))
    return headers, body


def _ablation(
    grid: Grid, section: list[Row], comparer: _Comparer, metrics: Sequence[str] | None, fmt: str
) -> Table:
    """One line per method: a check-mark column per option its method declares (`Presentation.table_marks`,
    e.g. RTFM's PDC, TSA, FM), then its cells per protocol, dataset and metric."""
    metrics = metrics or ("auc",)
    datasets = list(dict.fromkeys(row.spec.dataset for row in section))
    protocols = list(dict.fromkeys(row.spec.protocol for row in section))
    marks: dict[str, str] = {}
    for row in section:
        marks.update({option: title for option, title in row.config.get(MARKS, {}).items() if option not in marks})
    headers = ["method", *marks.values()]
    headers += [f"{d} {_title(m)}" + (f" ({p})" if len(protocols) > 1 else "")
                for p in protocols for d in datasets for m in metrics]
    headers.append("ms/step")
    by_method: dict[str, dict[tuple[str, str], Row]] = {}
    for row in section:
        by_method.setdefault(row.spec.method, {})[(row.spec.protocol, row.spec.dataset)] = row
    body = []
    for method, cells in by_method.items():
        config = next(iter(cells.values())).config
        checks = ["✓" if option in config.get(MARKS, {}) and config.get(f"method.{option}") else "" for option in marks]
        ours = [cells[(p, d)].stat(m) if (p, d) in cells else "-" for p in protocols for d in datasets for m in metrics]
        times = [_whole(row.mean("timings.ms_per_step")) for row in cells.values()]
        body.append([method, *checks, *ours, "/".join(times)])
    return headers, body


_TABLES: dict[str, Callable[[Grid, list[Row], _Comparer, Sequence[str] | None, str], Table]] = {
    "leaderboard": _leaderboard,
    "comparison": _comparison,
    "ablation": _ablation,
}


@dataclass(frozen=True)
class Reported:
    """The papers' numbers of one experiment (``[[result]]`` records of a reported-numbers file)."""

    records: tuple[dict[str, Any], ...] = ()

    @classmethod
    def load(cls, grid: Grid) -> Reported:
        path, experiment = grid.table.reported, grid.table.experiment
        if path is None:
            return cls()
        data = read_toml(path, "reported numbers")
        records = data.get("result")
        if not isinstance(records, list):
            raise UsageError(f"{path}: result: expected [[result]] records")
        for index, record in enumerate(records):
            missing = {"experiment", "method", "dataset", "features", "metric", "value", "source"} - set(record)
            if missing:
                raise UsageError(f"{path}: result[{index}]: missing {', '.join(sorted(missing))}")
        chosen = tuple(r for r in records if r["experiment"] == experiment)
        if not chosen:
            known = ", ".join(sorted({str(r["experiment"]) for r in records}))
            raise UsageError(f"{grid.path}: table.experiment: no {experiment!r} records in {path}; known: {known}")
        return cls(chosen)

    def extend(self, headers: list[str], body: list[list[Any]]) -> Table:
        """Add a "reported" column per (dataset, metric, features) with a number for a row's method
        (the first cell of every row)."""
        methods = [line[0] for line in body]
        columns = list(dict.fromkeys(
            (r["dataset"], r["metric"], r["features"]) for r in self.records if r["method"] in methods
        ))
        if not columns:
            return headers, body
        at = next((headers.index(h) for h in ("params", "ms/step") if h in headers), len(headers))
        new_headers = [f"{d} {m.upper()} ({f}, reported)" for d, m, f in columns]
        lines = [line[:at] + [self.value(method, *c) for c in columns] + line[at:]
                 for line, method in zip(body, methods, strict=True)]
        return headers[:at] + new_headers + headers[at:], lines

    def value(self, method: str, dataset: str, metric: str, features: str) -> str:
        for r in self.records:
            if (r["method"], r["dataset"], r["metric"], r["features"]) == (method, dataset, metric, features):
                return f"{float(r['value']):.2f}"
        return "-"

    def notes(self) -> list[str]:
        if not self.records:
            return []
        sources = "; ".join(sorted({str(r["source"]) for r in self.records}))
        return [f"Reported columns: {sources}. These are the papers' numbers on real features under each paper's "
                "own protocol (the public RTFM code selects its checkpoint on the test set); vadbench did not "
                "produce them, they are shown for the pattern across rows."]


def _notes(grid: Grid, all_rows: list[Row], comparer: _Comparer) -> list[str]:
    """Provenance under the table: what ran, where, how long; what the reported columns are."""
    ok = [r for row in all_rows for r in row.ok]
    notes = [*mixed_feature_sets(all_rows), *stand_in_prompts(all_rows)]
    unscored = [r for r in ok if r.metrics.get("checkpoints_scored") == 0]
    if unscored:
        runs = f"{len(unscored)} run" + ("s" if len(unscored) > 1 else "")
        notes.append(f"No checkpoint was scored in {runs} (oracle-test scores only steps past its `after`, 200 by "
                     "default, as the public RTFM code does): the final weights were evaluated.")
    if comparer.used:
        compared = " or ".join(_title(metric) for metric in bootstrap_metrics())
        notes.append(f"Δ: difference of the mean {compared} (points) with a paired bootstrap 95% interval "
                     f"({comparer.replicates} replicates; seeds and test videos resampled together).")
    if ok:
        devices = sorted({r.device for r in ok})
        steps = sorted({int(r.config.get("steps", 0)) for r in ok})
        train = sum(r.timings.get("train", 0.0) for r in ok)
        version = ok[0].versions
        revision = f" (git {version['git']})" if "git" in version else ""
        notes.append(
            f"{len(ok)} runs, {'/'.join(map(str, steps))} steps each, seeds {', '.join(map(str, grid.seeds))}; "
            f"device {', '.join(devices)}; total training time {train:.0f} s; "
            f"vadbench {version.get('vadbench', '?')}{revision}, torch {version.get('torch', '?')}."
        )
    return notes


class _Comparer:
    """Paired bootstrap differences between rows, from the stored scores and the stored test ground truth."""

    def __init__(self, grid: Grid, store: RunStore, replicates: int = 2000) -> None:
        self.grid, self.store, self.replicates = grid, store, replicates
        self.used = False
        self._index: dict[Hashable, RunResult] = {}

    def method_partner(self, spec: RunSpec) -> Hashable | None:
        """The baseline method's run with the same data (options and fingerprint: the same feature set),
        protocol, schedule and seed."""
        if spec.method == self.grid.table.baseline:
            return None
        return ("method", self.grid.table.baseline, spec.dataset, _frozen(spec.dataset_options), spec.data,
                spec.protocol, spec.steps, spec.seed)

    def protocol_partner(self, spec: RunSpec) -> Hashable | None:
        """The same run under protocol `last`."""
        if spec.protocol == "last":
            return None
        return ("protocol", spec.method, _frozen(spec.method_options), spec.dataset, _frozen(spec.dataset_options),
                spec.steps, spec.seed)

    def index(self, results: Sequence[RunResult]) -> None:
        """Make `results` findable as partners."""
        for r in results:
            if r.status != "ok":
                continue
            s = r.spec
            self._index[("method", s.method, s.dataset, _frozen(s.dataset_options), s.data, s.protocol, s.steps,
                         s.seed)] = r
            if s.protocol == "last":
                self._index[("protocol", s.method, _frozen(s.method_options), s.dataset, _frozen(s.dataset_options),
                             s.steps, s.seed)] = r

    def describe(
        self, row: Row, partner: Callable[[RunSpec], Hashable | None], metric: str = "auc"
    ) -> Difference | str:
        """The `metric` difference of `row` to its partner runs, or "-" when it has none."""
        pairs = []
        for result in row.ok:
            key = partner(result.spec)
            if key is not None and key in self._index:
                pairs.append((result, self._index[key]))
        if not pairs:
            return "-"
        self.used = True
        return self.difference(pairs, metric)

    def difference(self, pairs: list[tuple[RunResult, RunResult]], metric: str = "auc") -> Difference:
        """The paired bootstrap of `pairs`, which share one test set (a grid row never averages over a
        replicate option: the grid fixes or sweeps it)."""
        truth: TestTruth = self.store.test_truth(pairs[0][0].spec)
        ids = truth.video_ids
        frames = [truth.frames(v) for v in range(len(truth))]
        scores_a = [self._ordered(a.spec, ids) for a, _ in pairs]
        scores_b = [self._ordered(b.spec, ids) for _, b in pairs]
        return paired_bootstrap(scores_a, scores_b, frames, truth.labels, snippet_frames=truth.snippet_frames,
                                replicates=self.replicates, metric=metric)

    def _ordered(self, spec: RunSpec, ids: Sequence[str]) -> list[np.ndarray]:
        scores = self.store.scores(spec)
        return [scores[v] for v in ids]


def _frozen(options: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in options.items()))


def _title(metric: str) -> str:
    return METRICS[metric].title


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _count(value: int | None) -> str:
    """A parameter count in millions ("-" when not recorded)."""
    return "-" if value is None else f"{value / 1e6:.2f}M"


def _whole(value: float | None) -> str:
    """A mean shown to the unit ("-" when no run has it): steps, milliseconds."""
    return "-" if value is None else f"{value:.0f}"
