"""Runs as a tidy pandas DataFrame, one row per run: the form in which to analyse results in a notebook
(`vadbench.results`, which lists the columns), and the one every table aggregates
(`vadbench.report.aggregate.rows`). Never imports torch."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from vadbench.api.types import RunResult
from vadbench.report.metrics import METRICS

#: The columns every frame has, in order (`vadbench.report.store.results` says what each holds).
FIXED = ("key", "method", "method_revision", "dataset", "features", "protocol", "seed", "steps", "precision",
         "compile", "stacked", "threads", "status", "error")
PROVENANCE = ("parameters", "data", "device")
#: Columns of whole numbers, missing where a run did not record them (pandas' nullable Int64).
WHOLE = ("method_revision", "seed", "steps", "threads", "parameters")
#: The prefixes of the columns that flatten a mapping of the result (config options, timings, versions).
GROUPS = ("per_class_auc.", "timings.", "versions.", "method.", "dataset.")


def run_frame(runs: Iterable[RunResult]) -> pd.DataFrame:
    """`runs` as the frame `vadbench.report.store.results` describes, one row per run in the order given
    (index 0, 1, ...)."""
    records = [_record(run) for run in runs]
    found = list(dict.fromkeys(column for record in records for column in record))
    metrics = [*METRICS, *sorted(column for column in found if column not in METRICS and column not in FIXED
                                 and column not in PROVENANCE and not column.startswith(GROUPS))]
    grouped = [column for prefix in GROUPS for column in sorted(c for c in found if c.startswith(prefix))]
    frame = pd.DataFrame.from_records(records, columns=[*FIXED, *metrics, *PROVENANCE, *grouped])
    frame[metrics] = frame[metrics].astype(float)
    return frame.astype({column: "Int64" for column in WHOLE})


def feature_set(config: dict[str, Any]) -> str:
    """The feature set a run read, as tables show it: its name, crops x dimension (``wu 5x1024``).

    The name is the dataset's ``feature_set`` as recorded (`Benchmark.meta`); results stored before it was
    recorded are named from their file layout, or "synthetic"."""
    name = config.get("benchmark.feature_set")
    if name is None:
        layout = str(config.get("benchmark.layout", ""))
        name = "wu" if layout.startswith("wu") else "rtfm" if layout else "synthetic"
    crops = config.get("benchmark.crops", config.get("dataset.crops"))
    dim = config.get("benchmark.feature_dim", config.get("dataset.feature_dim"))
    if crops is None or dim is None:
        return "-"  # a result without its config
    return f"{name} {crops}x{dim}"


def _record(run: RunResult) -> dict[str, Any]:
    """One run's row (`vadbench.report.store.results` lists its columns)."""
    spec, config = run.spec, run.config
    record: dict[str, Any] = {}
    for name, value in run.metrics.items():
        if isinstance(value, dict):
            record.update({f"{name}.{key}": _number(inner) for key, inner in value.items()})
        else:
            record[name] = _number(value)
    record |= {  # after the metrics: a metric named like one of these cannot hide it
        "key": spec.key, "method": spec.method, "method_revision": spec.method_revision, "dataset": spec.dataset,
        "features": feature_set(config), "protocol": spec.protocol, "seed": spec.seed,
        "steps": config.get("steps", spec.steps), "precision": spec.precision, "compile": spec.compile,
        "stacked": ",".join(map(str, spec.stacked)), "threads": spec.threads, "status": run.status,
        "error": run.error, "parameters": config.get("parameters"), "data": spec.data, "device": run.device,
    }
    record.update({f"timings.{name}": value for name, value in run.timings.items()})
    record.update({f"versions.{name}": value for name, value in run.versions.items()})
    record.update({f"method.{name}": value for name, value in spec.method_options.items()})
    record.update({f"dataset.{name}": value for name, value in spec.full_dataset_options().items()})
    record.update({name: value for name, value in config.items() if name.startswith(("method.", "dataset."))})
    return record


def _number(value: Any) -> float:
    """A recorded metric as a float; NaN where it is not a number (None: not computed)."""
    return float(value) if isinstance(value, (int, float)) else np.nan
