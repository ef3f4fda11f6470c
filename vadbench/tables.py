"""Tables of a grid's results: leaderboard (with sweep columns), Table-5-style ablation, comparisons.

Cells are mean +- std over seeds in percent. Rows follow the grid file's order. Runs selected on the
test set (protocol ``oracle-test``) are always rendered in their own, labelled section below the
honest rows, never in the same table. The papers' numbers appear only in columns marked "reported".
Never imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tabulate import tabulate

from vadbench.errors import UsageError
from vadbench.grid import Grid, read_toml
from vadbench.plugins import Plugins
from vadbench.protocols import parse_protocol
from vadbench.results import RunStore
from vadbench.stats import Difference, mean_std, paired_bootstrap
from vadbench.types import RunResult, RunSpec, TestSet

FORMATS = ("md", "latex")
#: metric key -> column title, for every metric a table can show (`--metrics`; the CLI says what each is)
METRICS = {"auc": "AUC", "ap": "AP", "ap_trapz": "AP (PR area)", "far": "FAR"}
#: The columns shown unless others are chosen (an ablation table shows AUC only).
DEFAULT_METRICS = ("auc", "ap")
#: Flag options of an ablation table -> column title (in the paper's order).
FLAGS = {"use_pdc": "PDC", "use_tsa": "TSA", "use_fm": "FM"}
ORACLE_NOTE = (
    "Selected on the TEST set (protocol oracle-test, as the public RTFM code does): optimistic, shown only "
    "to reconcile with published numbers; not comparable with the honest rows above."
)


@dataclass
class Row:
    """One table row: the runs that differ only in their seed."""

    spec: RunSpec  # the first run's spec (seed aside, all runs of the row share it)
    sweep: dict[str, Any]
    results: list[RunResult] = field(default_factory=list)

    @property
    def ok(self) -> list[RunResult]:
        return [r for r in self.results if r.status == "ok"]

    @property
    def honest(self) -> bool:
        return parse_protocol(self.spec.protocol).honest

    def cell(self, metric: str) -> str:
        values = [100 * r.metrics[metric] for r in self.ok if _finite(r.metrics.get(metric))]
        if not values:
            return "-"
        mean, std = mean_std(values)
        return f"{mean:.2f} ± {std:.2f}"

    def selected_step(self) -> str:
        """Mean training step whose weights a selecting protocol kept ("-" for ``last``)."""
        values = [r.metrics["selected_step"] for r in self.ok if "selected_step" in r.metrics]
        return f"{np.mean(values):.0f}" if values else "-"

    def ms_per_step(self) -> str:
        values = [r.timings["ms_per_step"] for r in self.ok if "ms_per_step" in r.timings]
        return f"{np.mean(values):.0f}" if values else "-"


def rows(grid: Grid, results: Sequence[RunResult]) -> list[Row]:
    """Results grouped into rows (everything in the run's identity but the seed equal), in the order
    they were given. A run given twice (one key) is one run: only its first result counts."""
    grouped: dict[Hashable, Row] = {}
    seen: set[str] = set()
    for result in results:
        spec = result.spec
        if spec.key in seen:
            continue
        seen.add(spec.key)
        sweep = {key.rpartition(".")[2]: grid.swept_value(key, result.config) for key in grid.sweep}
        identity = {name: value for name, value in spec.identity().items() if name != "seed"}
        key = json.dumps(identity, sort_keys=True, default=str)
        grouped.setdefault(key, Row(spec, sweep)).results.append(result)
    return list(grouped.values())


def render_grid(
    grid: Grid, results: Sequence[RunResult], *, store: RunStore, plugins: Plugins, fmt: str = "md",
    metrics: Sequence[str] | None = None,
) -> str:
    """The grid's table (its `table.kind`), honest rows first, test-selected rows in their own section.

    `metrics` chooses the metric columns (default: the table kind's own); a metric that no run of a row
    recorded is shown as "-", never as 0.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if not results:
        raise UsageError(f"{grid.path}: no results to render")
    all_rows = rows(grid, results)
    comparer = _Comparer(grid, store, plugins)
    comparer.index(results)
    reported = Reported.load(grid)
    parts = [f"## {grid.title}" if fmt == "md" else f"% {grid.title}"]
    for honest in (True, False):
        section = [row for row in all_rows if row.honest == honest]
        if not section:
            continue
        if not honest:
            parts.append(f"**{ORACLE_NOTE}**" if fmt == "md" else f"% {ORACLE_NOTE}")
        headers, body = _TABLES[grid.table.kind](grid, section, comparer, metrics)
        if honest:  # the papers' (test-selected) numbers go beside our honest ones only once
            headers, body = reported.extend(headers, body)
        style = "pipe" if fmt == "md" else "latex_raw"
        parts.append(tabulate(body, headers=headers, tablefmt=style, disable_numparse=True))
    notes = [*reported.notes(), *_notes(grid, all_rows, comparer)]
    parts.extend(f"_{note}_" if fmt == "md" else f"% {note}" for note in notes)
    return "\n\n".join(parts) + "\n"


def _leaderboard(
    grid: Grid, section: list[Row], comparer: _Comparer, metrics: Sequence[str] | None
) -> tuple[list[str], list[list[str]]]:
    metrics = metrics or DEFAULT_METRICS
    headers = ["method", "dataset", "protocol", *grid.sweep_options, "seeds", *(_title(m) for m in metrics),
               "ms/step"]
    body = [
        [row.spec.method, row.spec.dataset, row.spec.protocol, *map(_show, row.sweep.values()),
         str(len(row.ok)), *(row.cell(m) for m in metrics), row.ms_per_step()]
        for row in section
    ]
    if grid.protocols != ("last",):
        # A selecting protocol: the step whose weights were evaluated.
        headers.append("selected step")
        for line, row in zip(body, section, strict=True):
            line.append(row.selected_step())
    if len(grid.protocols) > 1:
        # Several protocols: show each against `last` (same runs but the selection, same test videos);
        # in the test-selected section this is the optimism of selecting on the test set.
        headers.append("Δ AUC vs last [95% CI]")
        for line, row in zip(body, section, strict=True):
            line.append(comparer.describe(row, comparer.protocol_partner))
    return headers, _with_failures(section, headers, body)


def _comparison(
    grid: Grid, section: list[Row], comparer: _Comparer, metrics: Sequence[str] | None
) -> tuple[list[str], list[list[str]]]:
    headers, body = _leaderboard(grid, section, comparer, metrics)
    headers = [*headers, f"Δ AUC vs {grid.table.baseline} [95% CI]"]
    for line, row in zip(body, section, strict=True):
        line.append(comparer.describe(row, comparer.method_partner))
    return headers, body


def _ablation(
    grid: Grid, section: list[Row], comparer: _Comparer, metrics: Sequence[str] | None
) -> tuple[list[str], list[list[str]]]:
    metrics = metrics or ("auc",)
    datasets = list(dict.fromkeys(row.spec.dataset for row in section))
    protocols = list(dict.fromkeys(row.spec.protocol for row in section))
    headers = ["method", *FLAGS.values()]
    headers += [f"{d} {_title(m)}" + (f" ({p})" if len(protocols) > 1 else "")
                for p in protocols for d in datasets for m in metrics]
    headers.append("ms/step")
    by_method: dict[str, dict[tuple[str, str], Row]] = {}
    for row in section:
        by_method.setdefault(row.spec.method, {})[(row.spec.protocol, row.spec.dataset)] = row
    body = []
    for method, cells in by_method.items():
        first = next(iter(cells.values()))
        config = first.ok[0].config if first.ok else {}
        flags = ["✓" if config.get(f"method.{flag}") else "" for flag in FLAGS]
        ours = [cells[(p, d)].cell(m) if (p, d) in cells else "-" for p in protocols for d in datasets for m in metrics]
        times = [row.ms_per_step() for row in cells.values()]
        body.append([method, *flags, *ours, "/".join(times)])
    return headers, body


_TABLES: dict[str, Callable[[Grid, list[Row], _Comparer, Sequence[str] | None], tuple[list[str], list[list[str]]]]] = {
    "leaderboard": _leaderboard,
    "comparison": _comparison,
    "ablation": _ablation,
}


def _with_failures(section: list[Row], headers: list[str], body: list[list[str]]) -> list[list[str]]:
    failed = [len(row.results) - len(row.ok) for row in section]
    if any(failed):
        headers.insert(headers.index("seeds") + 1, "failed")
        at = headers.index("failed")
        for line, count in zip(body, failed, strict=True):
            line.insert(at, str(count))
    return body


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

    def extend(self, headers: list[str], body: list[list[str]]) -> tuple[list[str], list[list[str]]]:
        """Add a "reported" column per (dataset, metric, features) with a number for a row's method
        (the first cell of every row)."""
        methods = [line[0] for line in body]
        columns = list(dict.fromkeys(
            (r["dataset"], r["metric"], r["features"]) for r in self.records if r["method"] in methods
        ))
        if not columns:
            return headers, body
        at = headers.index("ms/step") if "ms/step" in headers else len(headers)
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
    notes = []
    unscored = [r for r in ok if r.metrics.get("checkpoints_scored") == 0]
    if unscored:
        runs = f"{len(unscored)} run" + ("s" if len(unscored) > 1 else "")
        notes.append(f"No checkpoint was scored in {runs} (oracle-test scores only steps past its `after`, 200 by "
                     "default, as the public RTFM code does): the final weights were evaluated.")
    if comparer.used:
        notes.append(f"Δ: difference of mean AUC (points) with a paired bootstrap 95% interval "
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
    """Paired bootstrap differences between rows, from the stored scores and the benchmark's ground truth."""

    def __init__(self, grid: Grid, store: RunStore, plugins: Plugins, replicates: int = 2000) -> None:
        self.grid, self.store, self.plugins, self.replicates = grid, store, plugins, replicates
        self.used = False
        self._tests: dict[Hashable, TestSet] = {}
        self._index: dict[Hashable, RunResult] = {}

    def method_partner(self, spec: RunSpec) -> Hashable | None:
        """The baseline method's run with the same data, protocol, schedule and seed."""
        if spec.method == self.grid.table.baseline:
            return None
        return ("method", self.grid.table.baseline, spec.dataset, _frozen(spec.dataset_options), spec.protocol,
                spec.steps, spec.seed)

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
            self._index[("method", s.method, s.dataset, _frozen(s.dataset_options), s.protocol, s.steps, s.seed)] = r
            if s.protocol == "last":
                self._index[("protocol", s.method, _frozen(s.method_options), s.dataset, _frozen(s.dataset_options),
                             s.steps, s.seed)] = r

    def describe(self, row: Row, partner: Callable[[RunSpec], Hashable | None]) -> str:
        pairs = []
        for result in row.ok:
            key = partner(result.spec)
            if key is not None and key in self._index:
                pairs.append((result, self._index[key]))
        if not pairs:
            return "-"
        self.used = True
        return self.difference(pairs).describe()

    def difference(self, pairs: list[tuple[RunResult, RunResult]]) -> Difference:
        test = self.test_set(pairs[0][0].spec)
        ids = test.video_ids
        frames = [test.frame_labels[test.snippet_frames * test.offsets[v]: test.snippet_frames * test.offsets[v + 1]]
                  for v in range(len(test))]
        scores_a = [self._ordered(a.spec, ids) for a, _ in pairs]
        scores_b = [self._ordered(b.spec, ids) for _, b in pairs]
        return paired_bootstrap(scores_a, scores_b, frames, test.labels, snippet_frames=test.snippet_frames,
                                replicates=self.replicates)

    def _ordered(self, spec: RunSpec, ids: Sequence[str]) -> list[np.ndarray]:
        scores = self.store.scores(spec)
        return [scores[v] for v in ids]

    def test_set(self, spec: RunSpec) -> TestSet:
        key = (spec.dataset, _frozen(spec.dataset_options))
        if key not in self._tests:
            self._tests[key] = self.plugins.datasets.create(spec.dataset, spec.full_dataset_options()).load().test
        return self._tests[key]


def _frozen(options: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in options.items()))


def _title(metric: str) -> str:
    return METRICS.get(metric, metric)


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == value
