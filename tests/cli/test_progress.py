"""What `vadbench run` says while it trains when its output is a log or a pipe (captured here, not a terminal):
progress lines, and one line first when the run will take long (`vadbench.engine.progress`)."""

import dataclasses
import sys

import pytest

from vadbench.cli import main
from vadbench.engine import progress


def run(capsys, tmp_path, tiny_synthetic_args, *args):
    code = main(["run", "--method", "rtfm", "--seeds", "0", "--steps", "8", "--device", "cpu",
                 "--out", str(tmp_path), *tiny_synthetic_args, *args])
    assert code == 0
    return capsys.readouterr().err.splitlines()


def test_a_long_run_says_so_before_its_steps_and_how_to_shorten_it(capsys, tmp_path, tiny_synthetic_args, monkeypatch):
    monkeypatch.setattr(progress, "LONG_RUN_SECONDS", 0.0)  # every run is long
    lines = run(capsys, tmp_path, tiny_synthetic_args)
    notice = [i for i, line in enumerate(lines) if "--steps N for a shorter run" in line]
    assert len(notice) == 1, lines
    assert lines[notice[0]].startswith("rtfm on synthetic (seed 0): 8 steps, about ")
    assert "on this CPU" in lines[notice[0]]
    finished = [i for i, line in enumerate(lines) if line.startswith("[1/1] rtfm on synthetic, seed 0: AUC")]
    assert finished and notice[0] < finished[0]  # before the run's end, with its pace measured on 3 steps


def test_a_short_run_says_nothing_of_its_length(capsys, tmp_path, tiny_synthetic_args):
    assert not any("shorter run" in line for line in run(capsys, tmp_path, tiny_synthetic_args))


def test_a_short_run_in_a_log_prints_no_progress_line(capsys, tmp_path, tiny_synthetic_args):
    assert not any(": step " in line for line in run(capsys, tmp_path, tiny_synthetic_args))  # done within 30 s


def test_progress_reaches_a_log_as_lines(capsys, tmp_path, tiny_synthetic_args, monkeypatch):
    monkeypatch.setattr(progress, "LINE_SECONDS", 0.0)  # a line after every step once the pace is known
    lines = [line for line in run(capsys, tmp_path, tiny_synthetic_args) if ": step " in line]
    assert [line.split(": step ")[1].split(",")[0] for line in lines] == [f"{i}/8" for i in range(4, 9)]
    assert all(line.startswith("rtfm on synthetic (seed 0): step ") and " s/step, about " in line for line in lines)
    assert "\r" not in "".join(lines)  # no bar redraws in a log


@pytest.mark.parametrize("seconds", [0.0, 1e9])
def test_quiet_says_nothing_while_training(capsys, tmp_path, tiny_synthetic_args, monkeypatch, seconds):
    monkeypatch.setattr(progress, "LONG_RUN_SECONDS", seconds)
    monkeypatch.setattr(progress, "LINE_SECONDS", 0.0)
    assert run(capsys, tmp_path, tiny_synthetic_args, "--quiet") == []


def test_durations_read_as_people_say_them():
    assert [progress.duration(s) for s in (42, 12 * 60, 2.1 * 3600)] == ["42 s", "12 min", "2.1 h"]


def test_a_worker_says_a_run_is_long_and_writes_lines_even_on_a_terminal(capsys, monkeypatch):
    """Worker processes (local, Ray) share the driver's terminal or log: the notice and progress lines reach
    it, as plain lines, never a bar; with the driver's --quiet nothing."""
    from conftest import TINY_SYNTHETIC

    from vadbench.api.types import RunSpec
    from vadbench.executors import worker

    monkeypatch.setattr(progress, "LONG_RUN_SECONDS", 0.0)
    monkeypatch.setattr(progress, "LINE_SECONDS", 0.0)
    monkeypatch.setattr(progress, "BARS", True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: in the driver this would be a bar
    spec = RunSpec("rtfm", dataset_options=dict(TINY_SYNTHETIC), steps=8, device="cpu")
    worker.run(spec, threads=1, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert any("--steps N for a shorter run" in line for line in lines), lines
    assert [line.split(": step ")[1].split(",")[0] for line in lines if ": step " in line] == [
        f"{i}/8" for i in range(4, 9)]
    assert "\r" not in "".join(lines)
    worker.run(dataclasses.replace(spec, seed=1), threads=1, progress=False)
    assert capsys.readouterr().err == ""


def test_the_local_executor_gives_its_workers_the_drivers_progress():
    from vadbench.executors.local import LocalExecutor
    from vadbench.plugins.manager import get_plugins

    for shown in (True, False):
        executor = LocalExecutor(LocalExecutor.Config(workers=2, cpus_per_run=1))
        executor.open(get_plugins(), progress=shown)
        assert [each.progress for each in executor._workers] == [shown, shown]
        executor.close()
