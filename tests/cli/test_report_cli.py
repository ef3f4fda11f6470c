"""The report path: leaderboards, grid tables and figures from the run store alone, without torch or data root."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import TINY_SYNTHETIC
from fakeroots import ucsd_root

from vadbench.cli import main

TINY = "\n".join(f"dataset.{key} = {value}" for key, value in TINY_SYNTHETIC.items() if key != "steps")


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def without_torch(tmp_path, *args):
    """`python -m vadbench ARGS` in a process where `import torch` raises (a stub first on the path)."""
    stub = tmp_path / "no-torch" / "torch"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text('raise ImportError("torch is not installed here")\n')
    path = os.pathsep.join(filter(None, [str(stub.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-m", "vadbench", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A comparison grid with a k sweep and the plain grid of its k = 3 runs, finished in one store."""
    folder = tmp_path_factory.mktemp("report")
    sweep, plain = folder / "sweep.toml", folder / "plain.toml"
    common = f'methods = ["sultani-mil", "rtfm"]\nseeds = [0, 1]\nsteps = 3\n[options]\n{TINY}\n'
    sweep.write_text(f'title = "tiny sweep"\n{common}[sweep]\nk = [1, 3]\n'
                     '[table]\nkind = "comparison"\nbaseline = "sultani-mil"\n')
    plain.write_text(f'title = "tiny"\n{common}[table]\nkind = "comparison"\nbaseline = "sultani-mil"\n')
    out = folder / "runs"
    for grid in (sweep, plain):
        assert main(["grid", str(grid), "--out", str(out), "--quiet", "--cpus-per-run", "1"]) == 0
    return folder, out


@pytest.mark.slow  # starts vadbench as a process, five times
def test_leaderboard_tables_and_figures_need_no_torch(capsys, store, tmp_path):
    folder, out = store
    code, board, _ = run_cli(capsys, "leaderboard", str(out))
    assert code == 0
    found = without_torch(tmp_path, "leaderboard", str(out))
    assert found.returncode == 0 and found.stderr == "", found.stderr
    assert found.stdout == board

    for grid in ("sweep", "plain"):
        code, table, _ = run_cli(capsys, "grid", str(folder / f"{grid}.toml"), "--out", str(out), "--quiet",
                                 "--cpus-per-run", "1")  # the store's runs: one thread each
        assert code == 0 and "Δ AUC vs sultani-mil" in table and "[" in table  # a bootstrap interval
        found = without_torch(tmp_path, "grid", str(folder / f"{grid}.toml"), "--out", str(out), "--table-only")
        assert found.returncode == 0 and found.stderr == "", found.stderr
        assert found.stdout == table  # the same table, differences included, from the store alone

    found = without_torch(tmp_path, "list")  # the commands that load plugins say what they need
    assert found.returncode == 2 and found.stderr.count("\n") == 1 and "need torch" in found.stderr

    pytest.importorskip("matplotlib")
    for kind, grid, extra in (("sweep", "sweep", []), ("per-class", "plain", []), ("video", "plain", []),
                              ("separability", "plain", ["--method", "rtfm", "--max-k", "4"])):
        figure = tmp_path / f"{kind}.png"
        found = without_torch(tmp_path, "plot", kind, str(folder / f"{grid}.toml"), "--out", str(out),
                              "-o", str(figure), *extra)
        assert found.returncode == 0 and found.stderr == "", found.stderr
        assert figure.read_bytes().startswith(b"\x89PNG")


def test_table_only_says_what_to_run_when_runs_are_missing(capsys, store, tmp_path):
    folder, out = store
    code, _, err = run_cli(capsys, "grid", str(folder / "plain.toml"), "--out", str(out), "--table-only",
                           "--seeds", "0-2")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "not finished" in err and "seed 2" in err and f"vadbench grid {folder / 'plain.toml'}" in err
    code, _, err = run_cli(capsys, "grid", str(folder / "plain.toml"), "--out", str(tmp_path / "none"),
                           "--table-only")
    assert code == 2 and "not finished" in err


def test_grid_tables_render_as_csv_with_mean_std_and_interval_columns(capsys, store):
    folder, out = store
    code, text, _ = run_cli(capsys, "grid", str(folder / "plain.toml"), "--out", str(out), "--table-only",
                            "--format", "csv")
    assert code == 0
    header, *lines = text.splitlines()
    deltas = [f"Δ {m} vs sultani-mil [95% CI]{suffix}" for m in ("AUC", "AP") for suffix in ("", "_low", "_high")]
    assert header.split(",") == ["method", "dataset", "features", "protocol", "runs", "failed", "auc_mean",
                                 "auc_std", "ap_mean", "ap_std", "params", "ms/step", *deltas]
    baseline, rtfm = (line.split(",") for line in lines)
    assert baseline[-6:] == [""] * 6  # no difference to itself: empty, not 0
    assert rtfm[2] == "synthetic 2x16" and rtfm[10].endswith("M")  # the feature set, parameters in millions
    assert rtfm[4:6] == ["2", "0"]  # runs, failed: the csv's columns do not depend on what failed
    for start in (-6, -3):  # AUC, then AP
        estimate, low, high = (float(value) for value in rtfm[start:][:3])
        assert low <= estimate <= high
    assert 0 <= float(rtfm[6]) <= 100


def test_ucsd_splits_are_averaged_in_the_leaderboard_and_apart_in_a_grid_that_sweeps_them(capsys, tmp_path):
    """One aggregation: the leaderboard averages the weak splits (each with its own data fingerprint) like
    seeds; a grid that sweeps the split shows one row each. Both render after the data root is gone."""
    (tmp_path / "ped2").mkdir()
    root = ucsd_root(tmp_path / "ped2")
    grid = tmp_path / "ucsd.toml"
    grid.write_text('methods = ["sultani-mil"]\ndatasets = ["ucsd-ped2"]\nseeds = [0, 1]\nsteps = 2\n'
                    "[sweep]\ndataset.split = [0, 1]\n")
    out = str(tmp_path / "runs")
    code, table, err = run_cli(capsys, "grid", str(grid), "--root", str(root), "--out", out, "--quiet",
                               "--cpus-per-run", "1")
    assert code == 0, err
    rows = [line for line in table.splitlines() if line.startswith("| sultani-mil")]
    assert [line.split("|")[5].strip() for line in rows] == ["0", "1"]  # the split column

    code, board, _ = run_cli(capsys, "leaderboard", out)
    header, _, *lines = board.splitlines()
    assert code == 0 and len(lines) == 1  # one row: the splits are averaged, not told apart by their data
    cells = dict(zip((c.strip() for c in header.strip("|").split("|")),
                     (c.strip() for c in lines[0].strip("|").split("|")), strict=True))
    assert cells["runs"] == "4" and cells["options"] == "steps=2 threads=1"  # 2 splits x 2 seeds

    shutil.rmtree(root)
    code, again, err = run_cli(capsys, "grid", str(grid), "--out", out, "--table-only")
    assert code == 0 and again == table, err
    pytest.importorskip("matplotlib")
    one = tmp_path / "one.toml"
    one.write_text('methods = ["sultani-mil"]\ndatasets = ["ucsd-ped2"]\nseeds = [0, 1]\nsteps = 2\n'
                   "[options]\ndataset.split = 1\n")
    code, _, err = run_cli(capsys, "plot", "video", str(one), "--out", out, "-o", str(tmp_path / "video.png"))
    assert code == 0, err  # the ground truth comes from the store, not from the deleted root


def test_a_run_stored_twice_with_different_numbers_is_one_warning_line(capsys, tmp_path):
    """Same key, two numbers (a result copied from another machine): the leaderboard says so, never silently."""
    import json

    code, _, err = run_cli(capsys, "run", "--method", "sultani-mil", "--seeds", "0", "--steps", "2", "--device",
                           "cpu", "--out", str(tmp_path), "--quiet",
                           *(f"--set=dataset.{k}={v}" for k, v in TINY_SYNTHETIC.items()))
    assert code == 0, err
    (folder,) = (tmp_path / "runs").iterdir()
    shutil.copytree(folder, folder.with_name("copied"))
    record = json.loads((folder.with_name("copied") / "result.json").read_text())
    record["metrics"]["auc"] = 0.123
    (folder.with_name("copied") / "result.json").write_text(json.dumps(record))
    code, out, err = run_cli(capsys, "leaderboard", str(tmp_path))
    assert code == 0 and "sultani-mil" in out
    (line,) = err.strip().splitlines()
    assert line.startswith(f"vadbench: warning: run {folder.name} (sultani-mil on synthetic, seed 0) is stored 2 "
                           "times with different numbers: ")
    assert "AUC 12.30" in line and "the tables use the newest" in line


def test_table_only_asks_which_thread_count_where_the_store_holds_two(capsys, tmp_path):
    """Runs of one grid made with 1 and with 2 torch threads are different runs (their numbers differ): the
    table of the stored runs shows one count, the one asked for, and without it says so in one line."""
    grid = tmp_path / "tiny.toml"
    grid.write_text(f'methods = ["sultani-mil"]\nseeds = [0]\nsteps = 2\n[options]\n{TINY}\n')
    out = tmp_path / "runs"
    for threads in ("1", "2"):
        assert main(["grid", str(grid), "--out", str(out), "--quiet", "--cpus-per-run", threads]) == 0
    capsys.readouterr()
    code, _, err = run_cli(capsys, "grid", str(grid), "--out", str(out), "--table-only")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "with 1 and 2 CPU threads" in err and "--cpus-per-run N" in err
    code, table, _ = run_cli(capsys, "grid", str(grid), "--out", str(out), "--table-only", "--cpus-per-run", "2")
    assert code == 0 and table.count("| sultani-mil ") == 1
