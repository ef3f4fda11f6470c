"""The leaderboard: the one table builder behind `vadbench leaderboard`, the table `vadbench run` prints and a
grid's leaderboard and comparison tables (`vadbench.report.tables`, which add their own columns).

A row is one configuration (`vadbench.report.aggregate.rows`): mean ± std over its runs, which differ only in
the seed and the dataset's replicate options (UCSD's split seed), in percent as papers report them;
``runs`` counts them and failed runs are counted in their own column rather than dropped. Rows selected
on the test set are rendered in their own, labelled section below the honest rows (csv: one table of
every row, the protocol telling them apart). `vadbench leaderboard` is this table of every stored run
without a grid: its rows are sorted, and runs with other options (``k=4``, ``steps=500``) get their own
rows, listed in an ``options`` column. Never imports torch, so tables render on any machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from vadbench.api.errors import UsageError
from vadbench.api.types import RunResult
from vadbench.report.aggregate import Row, mixed_feature_sets, render_table, rows, stand_in_prompts
from vadbench.report.metrics import METRICS

#: The metric columns `vadbench leaderboard` and `vadbench run` show unless others are chosen.
DEFAULT_METRICS = ("auc", "ap", "ap_trapz")
GROUP = ("method", "dataset", "features", "protocol")
ORACLE_NOTE = (
    "Selected on the TEST set (protocol oracle-test, as the public RTFM code does): optimistic, shown only "
    "to reconcile with published numbers; not comparable with honest rows."
)

Table = tuple[list[str], list[list[Any]]]


def leaderboard(
    section: Sequence[Row], columns: Sequence[str], describe: Callable[[Row], Sequence[Any]],
    metrics: Sequence[str], fmt: str,
) -> Table:
    """The leaderboard of `section`: the columns that tell its rows apart (`columns`, a row's cells given by
    `describe`), ``runs``, ``failed`` (when a run failed, and always in csv), then a mean ± std cell per
    metric, titled as registered (csv: by its key; `vadbench.report.metrics.METRICS`)."""
    failed = fmt == "csv" or any(row.failed for row in section)
    headers = [*columns, "runs", *(["failed"] if failed else []),
               *(metric if fmt == "csv" else METRICS[metric].title for metric in metrics)]
    body = [[*describe(row), str(len(row.ok)), *([str(row.failed)] if failed else []),
             *(row.stat(metric) for metric in metrics)] for row in section]
    return headers, body


def render_board(
    board: Sequence[Row], table: Callable[[list[Row], bool], Table], fmt: str, *,
    title: str | None = None, notes: Callable[[], Sequence[str]] = list,
) -> str:
    """`board` as text: its title, the table of its honest rows, then `ORACLE_NOTE` and the table of the rows
    selected on the test set, then the `notes()` (csv: the one table of every row, no title and no notes).
    `table(section, oracle)` builds a section's table; `oracle` says it holds the test-selected rows. The
    notes are asked for after the tables are built, so that they can say what the tables used."""
    if fmt == "csv":
        return render_table(*table(list(board), False), fmt)
    parts = [] if title is None else [f"## {title}" if fmt == "md" else f"% {title}"]
    for oracle in (False, True):
        section = [row for row in board if row.honest != oracle]
        if not section:
            continue
        if oracle:
            parts.append(f"**{ORACLE_NOTE}**" if fmt == "md" else f"% {ORACLE_NOTE}")
        parts.append(render_table(*table(section, oracle), fmt))
    parts.extend(f"_{note}_" if fmt == "md" else f"% {note}" for note in notes())
    return "\n\n".join(parts) + "\n"


def render(results: Iterable[RunResult], fmt: str = "md", metrics: Sequence[str] | None = None) -> str:
    """The leaderboard of every run in `results`, sorted, as markdown, latex (mean ± std cells) or csv
    (separate mean and std columns, and the failed count always).

    A metric that no run of a row recorded (e.g. ``far`` in results stored before it existed) is shown
    as missing ("-", or empty in csv), never as 0. `metrics` chooses the columns (default: DEFAULT_METRICS).
    """
    chosen = list(metrics or DEFAULT_METRICS)
    board = rows(results)
    if not board:
        raise UsageError("no results to summarise")
    columns = group_columns(board)

    def describe(row: Row) -> list[str]:
        return [value(row, column) for column in columns]

    board.sort(key=describe)
    return render_board(board, lambda section, _: leaderboard(section, columns, describe, chosen, fmt), fmt,
                        notes=lambda: [*mixed_feature_sets(board), *stand_in_prompts(board)])


def group_columns(board: Sequence[Row]) -> list[str]:
    """GROUP, plus precision when some run is not fp32 (bf16 runs are never averaged with fp32 runs),
    plus data when runs of one dataset read different data (a feature file edited between them),
    plus options when some row has any."""
    columns = list(GROUP)
    if any(row.spec.precision != "fp32" for row in board):
        columns.append("precision")
    data: dict[str, set[str]] = {}
    for row in board:
        data.setdefault(row.spec.dataset, set()).add(row.data)
    if any(len(values) > 1 for values in data.values()):
        columns.append("data")
    if any(row.options for row in board):
        columns.append("options")
    return columns


def value(row: Row, column: str) -> str:
    """A row's cell in one of the columns that name its configuration (`group_columns`)."""
    if column == "options":
        return row.options
    if column == "data":
        return row.data
    if column == "features":
        return row.features
    return str(getattr(row.spec, column))
