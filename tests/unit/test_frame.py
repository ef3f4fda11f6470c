"""`vadbench.results`: a run store as a tidy pandas DataFrame, one row per run, the frame the tables aggregate."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import vadbench
from vadbench.api.types import RunResult, RunSpec
from vadbench.report.aggregate import REPLICATES, rows
from vadbench.report.frame import FIXED
from vadbench.report.metrics import METRICS
from vadbench.report.store import RunStore, load_results


def run(method="rtfm", seed=0, auc=0.9, status="ok", **options):
    spec = RunSpec(method, seed=seed, method_options=options, threads=1 if method == "rtfm" else None)
    metrics = {"auc": auc, "ap": auc / 2, "ap_trapz": auc / 3, "far": None, "final_loss": 0.25,
               "per_class_auc": {"Fight": 0.75}} if status == "ok" else {}
    config = {"steps": 200, "parameters": 1234, "method.k": options.get("k", 3), "benchmark.feature_set": "wu",
              "benchmark.crops": 5, "benchmark.feature_dim": 1024, REPLICATES: []}
    return RunResult(spec, status, metrics=metrics, config=config, timings={"train": 2.5, "ms_per_step": 12.5},
                     device="cpu (test)", versions={"vadbench": "0.1.0"}, error=None if status == "ok" else "boom")


@pytest.fixture
def store(tmp_path):
    store = RunStore(tmp_path)
    for result in (run(seed=0, auc=0.8), run(seed=1, auc=0.9), run(seed=0, auc=0.5, k=4),
                   run("sultani-mil", seed=0, auc=0.7), run("sultani-mil", seed=1, status="failed")):
        store.write(result)
    return tmp_path


def test_one_row_per_run_with_the_documented_columns(store):
    frame = vadbench.results(store)
    assert len(frame) == 5 and list(frame["key"]) == sorted(frame["key"])  # key order, as the store reads
    assert list(frame.columns[: len(FIXED) + len(METRICS)]) == [*FIXED, *METRICS]
    for column in ("final_loss", "per_class_auc.Fight", "parameters", "data", "device", "timings.train",
                   "timings.ms_per_step", "versions.vadbench", "method.k"):
        assert column in frame.columns, column
    for column in frame.columns:  # every column is named in the docstring, or by a prefix it documents
        assert column.split(".")[0] in vadbench.results.__doc__, column
    first = frame.set_index("key").loc[run(seed=1, auc=0.9).spec.key]
    assert (first["method"], first["seed"], first["threads"], first["features"]) == ("rtfm", 1, 1, "wu 5x1024")
    assert (first["auc"], first["ap"], first["far"]) == (0.9, 0.45, pytest.approx(np.nan, nan_ok=True))
    assert first["per_class_auc.Fight"] == 0.75 and first["timings.ms_per_step"] == 12.5
    failed = frame[frame["status"] == "failed"].iloc[0]
    assert failed["error"] == "boom" and np.isnan(failed["auc"]) and failed["threads"] is pd.NA
    assert frame["seed"].dtype == "Int64" and frame["auc"].dtype == float


def test_the_tables_numbers_are_a_group_by_of_the_frame(store):
    """What a notebook computes from `vadbench.results` is what the tables show."""
    frame = vadbench.results(store)
    configurations = frame.groupby(["method", "method.k"], sort=False)
    auc = frame[frame["status"] == "ok"].groupby(["method", "method.k"], sort=False)["auc"]
    expected = {group: (100 * values.mean(), 100 * values.std(ddof=0)) for group, values in auc}
    failed = {group: int((runs["status"] != "ok").sum()) for group, runs in configurations}
    board = rows(load_results(store))
    assert len(board) == 3 == len(failed)
    for row in board:
        group = (row.spec.method, row.config["method.k"])
        assert (row.stat("auc").mean, row.stat("auc").std) == pytest.approx(expected[group])
        assert row.failed == failed[group]
    assert sorted(failed.values()) == [0, 0, 1]


@pytest.mark.slow  # starts a Python process
def test_results_imports_no_torch_and_import_vadbench_no_pandas(store, tmp_path):
    stub = tmp_path / "no-torch" / "torch"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text('raise ImportError("torch is not installed here")\n')
    path = os.pathsep.join(filter(None, [str(stub.parent), os.environ.get("PYTHONPATH")]))
    code = ("import sys, vadbench; assert 'pandas' not in sys.modules; "
            f"print(len(vadbench.results({str(store)!r})))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300,
                           env={**os.environ, "PYTHONPATH": path})
    assert found.returncode == 0 and found.stdout == "5\n", found.stderr
