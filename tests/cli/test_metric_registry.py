"""Adding a metric is one entry in `vadbench.report.metrics.METRICS`: the runs compute it, ``--metrics`` offers
it, and the leaderboard and a grid's comparison table show it, with no other module touched."""

import json

import numpy as np
import pytest
from conftest import TINY_SYNTHETIC

from vadbench.cli import main
from vadbench.report.metrics import METRICS, Metric


def abnormal_frame_mean(frame_scores, frame_labels):
    """A toy metric: the mean score of the abnormal frames."""
    return float(np.mean(frame_scores[frame_labels == 1]))


@pytest.fixture
def toy(monkeypatch):
    """The registry with one more metric, for this test only."""
    metric = Metric("toy", "TOY", "mean score of the abnormal frames", abnormal_frame_mean)
    monkeypatch.setitem(METRICS, metric.key, metric)
    return metric


def cells(table, column):
    """The cells of one column of a markdown table, by row (the first cell names the row)."""
    header, _, *lines = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()
                         if line.startswith("|")]
    return {line[0]: line[header.index(column)] for line in lines}


def test_a_registered_metric_is_computed_offered_and_tabled(capsys, tmp_path, toy):
    out, grid = tmp_path / "runs", tmp_path / "grid.toml"
    options = "\n".join(f"dataset.{key} = {value}" for key, value in TINY_SYNTHETIC.items() if key != "steps")
    grid.write_text('methods = ["sultani-mil", "rtfm"]\nseeds = [0, 1]\nsteps = 3\n'
                    f'[options]\n{options}\n[table]\nkind = "comparison"\nbaseline = "sultani-mil"\n')
    assert main(["grid", str(grid), "--out", str(out), "--quiet", "--cpus-per-run", "1", "--metrics", "auc,toy"]) == 0
    table = capsys.readouterr().out

    stored = {}
    for path in out.glob("runs/*/result.json"):
        record = json.loads(path.read_text())
        stored.setdefault(record["spec"]["method"], []).append(100 * record["metrics"]["toy"])
    assert sorted(stored) == ["rtfm", "sultani-mil"] and all(len(values) == 2 for values in stored.values())
    expected = {method: f"{np.mean(values):.2f} ± {np.std(values):.2f}" for method, values in stored.items()}
    assert cells(table, "TOY") == expected  # the comparison table
    assert "Δ AUC vs sultani-mil [95% CI]" in table and "Δ TOY" not in table  # no weighted form: no bootstrap

    assert main(["leaderboard", str(out), "--metrics", "toy,auc"]) == 0
    assert cells(capsys.readouterr().out, "TOY") == expected
    assert main(["leaderboard", str(out), "--metrics", "toy", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(",toy_mean,toy_std")

    with pytest.raises(SystemExit):
        main(["leaderboard", "--help"])
    assert "toy: mean score of the abnormal frames" in " ".join(capsys.readouterr().out.split())
