"""Results -> leaderboard tables: mean +- std over replicate runs of one configuration.

A row is one (method, dataset, selection protocol, options) configuration; its runs differ only in
the seed and, for UCSD's weak protocol, the split seed, which are averaged over. Runs with other
options (``k=4``, ``steps=500``) get their own rows, listed in an ``options`` column. Metrics are in
percent, as papers report them. Failed runs are counted in their own column rather than dropped.
Never imports torch, so tables render on any machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
from tabulate import tabulate

from vadbench.errors import UsageError
from vadbench.protocols import parse_protocol
from vadbench.types import RunResult

FORMATS = ("md", "csv", "latex")
#: metric key -> column title, for every metric a table can show (`--metrics`; the CLI says what each is)
METRICS = {"auc": "AUC", "ap": "AP (sklearn)", "ap_trapz": "AP (PR area)", "far": "FAR"}
#: The columns shown unless others are chosen.
DEFAULT_METRICS = ("auc", "ap", "ap_trapz")
GROUP = ["method", "dataset", "protocol"]
#: Options that are averaged over (replicates) or that locate files without changing the experiment.
NOT_CONFIGURATION = {"split", "root", "cache", "cache_dir"}


def configuration(result: RunResult) -> str:
    """The options that make this run's configuration differ from the defaults (e.g. ``k=4 mu=8``),
    and how it was computed when that changes the numbers (``compile=True``, ``stacked=0,1,2``)."""
    spec = result.spec
    options: dict[str, Any] = {**spec.dataset_options, **spec.method_options}
    if spec.steps is not None:
        options["steps"] = spec.steps  # the run's schedule overrides any dataset suggestion
    if spec.compile:
        options["compile"] = True
    if spec.stacked:
        options["stacked"] = ",".join(map(str, spec.stacked))
    return " ".join(f"{key}={value}" for key, value in sorted(options.items()) if key not in NOT_CONFIGURATION)


def results_frame(results: Iterable[RunResult]) -> pd.DataFrame:
    """One row per run: its identity, status, the scalar metrics and the timings. A run given twice
    (one key: one configuration and seed) is one run: only its first result counts."""
    rows = []
    seen: set[str] = set()
    for result in results:
        if result.spec.key in seen:
            continue
        seen.add(result.spec.key)
        row = {
            "method": result.spec.method,
            "dataset": result.spec.dataset,
            "protocol": result.spec.protocol,
            "precision": result.spec.precision,
            "options": configuration(result),
            "data": result.spec.data or "",
            "seed": result.spec.seed,
            "status": result.status,
            "key": result.spec.key,
        }
        row.update({k: v for k, v in result.metrics.items() if isinstance(v, (int, float))})
        row.update({f"time_{k}": v for k, v in result.timings.items()})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else [*GROUP, "seed", "status", "key"])


def group_columns(frame: pd.DataFrame) -> list[str]:
    """GROUP, plus precision when some run is not fp32 (bf16 runs are never averaged with fp32 runs),
    plus data when runs of one dataset read different data (a feature file edited between them),
    plus options when some run has any."""
    columns = list(GROUP)
    if "precision" in frame and (frame["precision"] != "fp32").any():
        columns.append("precision")
    if "data" in frame and (frame.groupby("dataset")["data"].nunique() > 1).any():
        columns.append("data")
    if "options" in frame and (frame["options"] != "").any():
        columns.append("options")
    return columns


def summarise(frame: pd.DataFrame, metrics: Iterable[str] = DEFAULT_METRICS) -> pd.DataFrame:
    """Mean and std (over replicate runs, in percent) of each metric per group, plus run and failure counts."""
    if frame.empty:
        raise UsageError("no results to summarise")
    groups = []
    columns = group_columns(frame)
    for key, runs in frame.groupby(columns, sort=True):
        ok = runs[runs["status"] == "ok"]
        row = dict(zip(columns, key, strict=True))
        row["runs"] = len(ok)
        row["failed"] = int((runs["status"] != "ok").sum())
        for metric in metrics:
            values = 100 * ok[metric].astype(float) if metric in ok else pd.Series(dtype=float)
            row[f"{metric}_mean"] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=0) if len(values) else float("nan")
        groups.append(row)
    return pd.DataFrame(groups)


def render(frame: pd.DataFrame, fmt: str = "md", metrics: Sequence[str] | None = None) -> str:
    """The leaderboard as markdown, latex (mean +- std cells) or csv (separate mean and std columns).

    A metric that no run of a row recorded (e.g. ``far`` in results stored before it existed) is shown
    as missing ("-", or empty in csv), never as 0. `metrics` chooses the columns (default: DEFAULT_METRICS).
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    metrics = list(metrics or DEFAULT_METRICS)
    summary = summarise(frame, metrics)
    if fmt == "csv":
        return str(summary.to_csv(index=False, float_format="%.4f"))
    table = summary[[*group_columns(summary), "runs"]].copy()
    if summary["failed"].any():
        table["failed"] = summary["failed"]
    for metric in metrics:
        table[METRICS.get(metric, metric)] = [
            _cell(mean, std, fmt) for mean, std in zip(summary[f"{metric}_mean"], summary[f"{metric}_std"], strict=True)
        ]
    style = "pipe" if fmt == "md" else "latex_raw"
    # Rows selected on the test labels get their own, labelled table: never mixed with honest rows.
    honest = [parse_protocol(p).honest for p in table["protocol"]]
    parts = []
    for section in (table[honest], table[[not h for h in honest]]):
        if len(section):
            parts.append(str(tabulate(section.values.tolist(), headers=list(table.columns), tablefmt=style,
                                      disable_numparse=True)))
    if len(parts) == 2 or not any(honest):
        note = "Selected on the TEST set (oracle-test): optimistic, not comparable with honest rows."
        parts.insert(len(parts) - 1, f"**{note}**" if fmt == "md" else f"% {note}")
    return "\n\n".join(parts)


def _cell(mean: float, std: float, fmt: str) -> str:
    if mean != mean:  # NaN: no successful run
        return "-"
    plus_minus = "$\\pm$" if fmt == "latex" else "±"
    return f"{mean:.2f} {plus_minus} {std:.2f}"
