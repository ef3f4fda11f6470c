"""The leaderboard view: every stored run, one row per configuration (`vadbench.report.aggregate.rows`).

A row is one (method, dataset, feature set, selection protocol, options) configuration: mean ± std over its runs,
which differ only in the seed and the dataset's replicate options (UCSD's split seed). Runs with other
options (``k=4``, ``steps=500``) get their own rows, listed in an ``options`` column. Metrics are in
percent, as papers report them. Failed runs are counted in their own column rather than dropped.
Never imports torch, so tables render on any machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from vadbench.api.errors import UsageError
from vadbench.api.types import RunResult
from vadbench.report.aggregate import Row, mixed_feature_sets, render_table, rows, stand_in_prompts
from vadbench.report.metrics import METRICS

#: The columns shown unless others are chosen.
DEFAULT_METRICS = ("auc", "ap", "ap_trapz")
GROUP = ("method", "dataset", "features", "protocol")
ORACLE_NOTE = "Selected on the TEST set (oracle-test): optimistic, not comparable with honest rows."


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


def render(results: Iterable[RunResult], fmt: str = "md", metrics: Sequence[str] | None = None) -> str:
    """The leaderboard as markdown, latex (mean ± std cells) or csv (separate mean and std columns, and
    the failed count always).

    A metric that no run of a row recorded (e.g. ``far`` in results stored before it existed) is shown
    as missing ("-", or empty in csv), never as 0. `metrics` chooses the columns (default: DEFAULT_METRICS).
    Rows selected on the test set get their own, labelled table (csv: one table, told apart by protocol).
    """
    metrics = list(metrics or DEFAULT_METRICS)
    board = rows(results)
    if not board:
        raise UsageError("no results to summarise")
    columns = group_columns(board)
    board.sort(key=lambda row: [_value(row, column) for column in columns])
    failed = fmt == "csv" or any(row.failed for row in board)
    headers = [*columns, "runs", *(["failed"] if failed else [])]
    headers += metrics if fmt == "csv" else [METRICS[m].title for m in metrics]

    def line(row: Row) -> list[object]:
        counts = [str(len(row.ok)), *([str(row.failed)] if failed else [])]
        return [*(_value(row, column) for column in columns), *counts, *(row.stat(m) for m in metrics)]

    if fmt == "csv":
        return render_table(headers, [line(row) for row in board], fmt)
    parts = [render_table(headers, [line(row) for row in section], fmt)
             for section in ([r for r in board if r.honest], [r for r in board if not r.honest]) if section]
    if len(parts) == 2 or not any(row.honest for row in board):
        parts.insert(len(parts) - 1, f"**{ORACLE_NOTE}**" if fmt == "md" else f"% {ORACLE_NOTE}")
    notes = [*mixed_feature_sets(board), *stand_in_prompts(board)]
    parts.extend(f"_{note}_" if fmt == "md" else f"% {note}" for note in notes)
    return "\n\n".join(parts)


def _value(row: Row, column: str) -> str:
    if column == "options":
        return row.options
    if column == "data":
        return row.data
    if column == "features":
        return row.features
    return str(getattr(row.spec, column))
