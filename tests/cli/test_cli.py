"""The command line end to end: exit codes, one-line errors, resume, and the printed leaderboard."""

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from vadbench.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


def test_the_console_script_is_main():
    """The `vadbench` script that pyproject.toml declares resolves to the command line (whatever modules it spans)."""
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    module, _, attribute = pyproject["project"]["scripts"]["vadbench"].partition(":")
    assert getattr(importlib.import_module(module), attribute) is main


def test_list_shows_both_methods_and_the_synthetic_dataset(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in ("rtfm", "sultani-mil", "synthetic"):
        assert any(line.strip().startswith(name + " ") for line in out.splitlines()), out


def test_unknown_method_is_one_line_and_exit_2(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--method", "rtfx", "--out", str(tmp_path))
    assert_one_line_error(code, err, "unknown method 'rtfx'", "rtfm")
    assert not (tmp_path / "runs").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("assignment", "needle"),
    [
        ("k", "expected key=value"),
        ("=3", "expected key=value"),
        ("nonsense=1", "no selected method or dataset has option"),
        ("k=three", "expects int"),
        ("foo.k=3", "not a selected method or dataset"),
        ("steps=5", "write method.steps"),
    ],
)
def test_malformed_set_is_one_line_and_exit_2(capsys, tmp_path, assignment, needle):
    code, _, err = run_cli(capsys, "run", "--method", "rtfm", "--set", assignment, "--out", str(tmp_path))
    assert_one_line_error(code, err, needle)


def test_argparse_errors_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--seeds", "a,b"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(capsys, tmp_path):
    from vadbench.api.errors import UsageError

    with pytest.raises(UsageError):
        main(["--debug", "run", "--method", "rtfx", "--out", str(tmp_path)])


def test_run_prints_the_leaderboard_and_a_second_run_skips(capsys, tmp_path, tiny_synthetic_args):
    args = ["run", "--method", "rtfm", "--method", "sultani-mil", "--seeds", "0,1", "--steps", "5",
            "--out", str(tmp_path), *tiny_synthetic_args]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("| rtfm") or line.startswith("| sultani-mil")]
    assert len(rows) == 2 and all("±" in row for row in rows)
    assert err.count("AUC") == 4
    code, out_again, err = run_cli(capsys, *args)
    assert code == 0
    assert err.count("finished earlier, skipped") == 4
    assert out_again == out
    code, board, _ = run_cli(capsys, "leaderboard", str(tmp_path), "--format", "csv")
    assert code == 0 and board.splitlines()[0].startswith("method,dataset,features,protocol")


def test_quiet_prints_only_the_table(capsys, tmp_path, tiny_synthetic_args):
    code, out, err = run_cli(capsys, "run", "--method", "sultani-mil", "--seeds", "0", "--steps", "3", "--quiet",
                             "--out", str(tmp_path), *tiny_synthetic_args)
    assert code == 0 and err == ""
    assert "| sultani-mil" in out


@pytest.mark.slow  # starts vadbench as a process
def test_progress_written_to_a_pipe_is_one_line_per_run(tmp_path, tiny_synthetic_args):
    env = {**os.environ, "VADBENCH_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "vadbench", "run", "--method", "sultani-mil", "--seeds", "0-2", "--steps", "20",
         "--device", "cpu", "--out", str(tmp_path / "out"), *tiny_synthetic_args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 3 and all(": AUC" in line for line in lines), done.stderr  # no bar redraws
    assert "\r" not in done.stderr and len(done.stderr) < 1000


def test_leaderboard_of_a_folder_without_results(capsys, tmp_path):
    code, _, err = run_cli(capsys, "leaderboard", str(tmp_path))
    assert_one_line_error(code, err, "no vadbench results here")


def absent_devices() -> list[str]:
    """Devices torch knows that this machine lacks: mps, CUDA beyond the last GPU (cuda on a CPU machine)."""
    import torch

    absent = [f"cuda:{torch.cuda.device_count()}"]
    if not torch.cuda.is_available():
        absent.append("cuda")
    if not torch.backends.mps.is_available():
        absent.append("mps")
    return absent


@pytest.mark.parametrize("device", absent_devices())
@pytest.mark.parametrize("command", ["run", "grid"])
def test_a_device_this_machine_lacks_is_refused_before_any_work(capsys, tmp_path, command, device):
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["sultani-mil"]\nseeds = [0]\nsteps = 2\n')
    what = ["grid", str(grid)] if command == "grid" else ["run", "--method", "sultani-mil", "--seeds", "0"]
    code, _, err = run_cli(capsys, *what, "--device", device, "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, f"--device {device}", "available: auto, cpu")
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize(
    "command",
    [["run", "--method", "rtfm"], ["run", "--dataset", "synthetic-ucf-crime"], ["grid", "{grid}"],
     ["data", "check", "synthetic"]],
    ids=["run", "run-preset", "grid", "data-check"],
)
def test_root_for_a_dataset_that_reads_no_files_says_so(capsys, tmp_path, command):
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["rtfm"]\n')
    argv = [arg.format(grid=grid) for arg in command] + ["--root", str(tmp_path)]
    if command[0] != "data":
        argv += ["--out", str(tmp_path / "out")]
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, "--root: dataset 'synthetic", "reads no files; drop --root")
    assert not (tmp_path / "out").exists()


def test_no_cache_on_a_dataset_without_a_cache_is_a_usage_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--method", "rtfm", "--no-cache", "--out", str(tmp_path))
    assert_one_line_error(code, err, "--no-cache", "synthetic")


def test_a_method_that_cannot_take_the_feature_dimension_is_one_line(capsys, tmp_path, tiny_synthetic_args):
    code, _, err = run_cli(capsys, "run", "--method", "rtfm", "--seeds", "0", "--steps", "2", "--quiet",
                           "--out", str(tmp_path), *tiny_synthetic_args, "--set", "dataset.feature_dim=12")
    assert_one_line_error(code, err, "rtfm", "D=12")


def test_leaderboard_metrics_option_chooses_the_columns(capsys, tmp_path):
    from vadbench.api.types import RunResult, RunSpec
    from vadbench.report.store import RunStore

    store = RunStore(tmp_path)
    store.write(RunResult(RunSpec("rtfm"), "ok", metrics={"auc": 0.9, "ap": 0.5, "ap_trapz": 0.5, "far": 0.125}))
    store.write(RunResult(RunSpec("sultani-mil"), "ok", metrics={"auc": 0.8, "ap": 0.4, "ap_trapz": 0.4}))
    code, out, err = run_cli(capsys, "leaderboard", str(tmp_path), "--metrics", "far,auc")
    assert code == 0, err
    header, _, *rows = out.splitlines()
    assert [c.strip() for c in header.strip("|").split("|")] == ["method", "dataset", "features", "protocol", "runs",
                                                                  "FAR", "AUC"]
    assert "| 12.50 ± 0.00 | 90.00 ± 0.00 |" in rows[0] and "| - " in rows[1]  # stored without far: missing
    code, out, _ = run_cli(capsys, "leaderboard", str(tmp_path))
    assert "AP (PR area)" in out and "FAR" not in out  # the default keeps today's columns


def test_unknown_metric_is_one_line_and_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["leaderboard", str(tmp_path), "--metrics", "auc,fpr"])
    assert_one_line_error(exit_info.value.code, capsys.readouterr().err, "--metrics", "far", "'auc,fpr'")


def test_help_says_what_each_metric_is(capsys):
    with pytest.raises(SystemExit):
        main(["leaderboard", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("auc: frame-level ROC AUC", "ap_trapz:", "far: false-alarm rate", ">= 0.5"):
        assert needle in text


def test_a_default_given_explicitly_is_the_same_run(capsys, tmp_path, tiny_synthetic_args):
    """--steps equal to the dataset's suggestion (20 in the tiny set) and --set dropout=0.6 (Sultani MIL's
    default) name the run done without them: it is skipped, and the leaderboard has one row of one run."""
    common = ["run", "--method", "sultani-mil", "--seeds", "0", "--out", str(tmp_path), *tiny_synthetic_args]
    assert run_cli(capsys, *common, "--quiet")[0] == 0
    code, out, err = run_cli(capsys, *common, "--steps", "20", "--set", "dropout=0.6")
    assert code == 0 and "finished earlier, skipped" in err
    code, board, _ = run_cli(capsys, "leaderboard", str(tmp_path), "--format", "csv")
    lines = board.strip().splitlines()
    assert code == 0 and len(lines) == 2 and ",1,0," in lines[1]


def test_a_seed_given_twice_is_one_run(capsys, tmp_path, tiny_synthetic_args):
    code, out, _ = run_cli(capsys, "run", "--method", "sultani-mil", "--seeds", "1,1", "--steps", "3", "--quiet",
                           "--out", str(tmp_path), *tiny_synthetic_args)
    assert code == 0
    assert len(list(tmp_path.glob("runs/*/result.json"))) == 1
    header, _, row = ([cell.strip() for cell in line.split("|")] for line in out.splitlines()[:3])
    assert row[header.index("runs")] == "1"


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])
@pytest.mark.slow  # starts vadbench as a process
def test_output_into_a_closed_pipe_ends_quietly(unbuffered):
    """`vadbench list | head -1`: the reader leaves early; no traceback and no complaint from the exit flush.

    Both stdout modes are tried: with a buffered stdout (a plain pipe) the write only fails when the buffer
    is flushed, which Python does at exit, outside the command's error handling."""
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    process = subprocess.Popen([sys.executable, "-m", "vadbench", "list"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd="/", env=env)
    process.stdout.close()  # the reader is gone before vadbench writes (it is still loading its plugins)
    _, err = process.communicate(timeout=120)
    assert err == b"" and process.returncode == 0
