"""A run whose loss stops being finite fails alone: stored as failed, shown in the table, exit code 1.

Exit code 2 stays reserved for bad input; 1 means the command ran but some run failed, so a script
(or CI) driving a grid notices without parsing the table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from clirun import TINY

from vadbench.cli import main
from vadbench.plugins.manager import get_plugins

PLUGIN = '''
"""A method whose loss is NaN from the first step (a stand-in for a diverging plugin)."""
from vadbench import hookimpl
from vadbench.methods.sultani_mil.method import SultaniMIL


class Diverging(SultaniMIL):
    """Sultani MIL with its loss multiplied by NaN."""

    def loss(self, model, batch):
        terms = super().loss(model, batch)
        return {**terms, "loss": terms["loss"] * float("nan")}


@hookimpl
def vadbench_register_methods(register):
    register("diverging", Diverging)
'''


@pytest.fixture
def diverging_plugin(tmp_path, monkeypatch):
    """The `diverging` method, loaded through VADBENCH_PLUGINS like a plugin under development."""
    (tmp_path / "vadbench_diverging.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("VADBENCH_PLUGINS", "vadbench_diverging")
    get_plugins.cache_clear()
    yield
    get_plugins.cache_clear()
    sys.modules.pop("vadbench_diverging", None)


def run(capsys, out: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["run", "--method", "diverging", "--method", "sultani-mil", "--seeds", "0", "--steps", "4",
                 "--device", "cpu", "--executor", "serial", "--out", str(out), *TINY, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_diverging_run_fails_alone_is_stored_and_shown_and_exits_1(diverging_plugin, tmp_path, capsys):
    out = tmp_path / "out"
    code, table, log = run(capsys, out)
    assert code == 1, log
    assert "diverging on synthetic, seed 0: FAILED: loss is not finite at step 4" in log
    assert "sultani-mil on synthetic, seed 0: AUC" in log  # the other run went on
    header, _, *rows = table.splitlines()
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    failed_row = next(row for row in rows if row.startswith("| diverging"))
    cells = [cell.strip() for cell in failed_row.strip("|").split("|")]
    assert (cells[columns.index("runs")], cells[columns.index("failed")]) == ("0", "1")
    records = [json.loads(path.read_text()) for path in out.glob("runs/*/result.json")]
    assert sorted(record["status"] for record in records) == ["failed", "ok"]
    failed = next(record for record in records if record["status"] == "failed")
    assert "step 4" in failed["error"] and failed["metrics"] == {}

    code, again, log = run(capsys, out)  # the failed run is tried again, the finished one is not
    assert code == 1
    assert log.count("finished earlier, skipped") == 1 and log.count("FAILED") == 1
    assert main(["leaderboard", str(out)]) == 0
    assert capsys.readouterr().out == again


def test_quiet_still_says_why_a_run_failed_and_nothing_else(diverging_plugin, tmp_path, capsys):
    code, _, log = run(capsys, tmp_path / "out", "--quiet")
    assert code == 1
    [line] = log.splitlines()  # the failed run's line alone
    assert line.startswith("[1/2] diverging on synthetic, seed 0: FAILED: loss is not finite at step 4"), line


def test_a_grid_goes_on_past_a_diverging_run_and_marks_it(diverging_plugin, tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    options = "\n".join(f"dataset.{arg.split('.', 1)[1]}" for arg in TINY[1::2]).replace("=", " = ")
    grid.write_text(f'methods = ["diverging", "sultani-mil"]\nseeds = [0, 1]\nsteps = 4\n[options]\n{options}\n')
    code = main(["grid", str(grid), "--device", "cpu", "--quiet", "--out", str(tmp_path / "out")])
    table = capsys.readouterr().out
    assert code == 1
    header = next(line for line in table.splitlines() if line.startswith("| method"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in table.splitlines() if line.startswith(("| diverging", "| sultani-mil"))}
    assert rows["diverging"][columns.index("failed")] == "2"
    assert rows["sultani-mil"][columns.index("runs")] == "2"
