"""Interrupted and concurrent grids: the store never holds a corrupt result and resumes exactly.

A run's ``result.json`` is written last, by rename, so a process killed with SIGKILL (no handler, no
cleanup) leaves either a finished run or a folder without a result, which the next command redoes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from clirun import start, stored, temporaries, vadbench
from conftest import TINY_SYNTHETIC

from vadbench.api.types import RunResult
from vadbench.cli import main
from vadbench.report.store import RunStore

GRID = """title = "three seeds"
methods = ["sultani-mil"]
seeds = [0, 1, 2]
[options]
""" + "\n".join(f"dataset.{key} = {value}" for key, value in TINY_SYNTHETIC.items())


def grid_command(tmp_path: Path, *extra: str) -> list[str]:
    """`vadbench grid` on a three-run grid of tiny synthetic runs, storing under tmp_path/out."""
    (tmp_path / "grid.toml").write_text(GRID)
    return ["grid", str(tmp_path / "grid.toml"), "--device", "cpu", "--out", str(tmp_path / "out"), *extra]


def wait_for_first_result(process, out: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not list(out.glob("runs/*/result.json")):
        assert process.poll() is None, f"exited before any result: {process.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "no result.json appeared in time"
        time.sleep(0.02)


def fingerprints(out: Path) -> dict[Path, tuple[bytes, int]]:
    """Bytes and mtime of every file of every finished run."""
    return {
        path: (path.read_bytes(), path.stat().st_mtime_ns)
        for folder in out.glob("runs/*")
        if (folder / "result.json").is_file()
        for path in folder.iterdir()
        if not path.name.startswith(".")
    }


def assert_whole(out: Path) -> dict[str, dict]:
    """Every stored result parses, succeeded, and its scores load."""
    records = stored(out)
    store = RunStore(out)
    for record in records.values():
        assert record["status"] == "ok", record["error"]
        spec = RunResult.from_dict(record).spec
        assert store.scores(spec), f"{spec.key}: no scores"
    return records


@pytest.mark.slow  # starts vadbench as a process
def test_a_grid_killed_mid_way_resumes_without_redoing_or_losing_anything(tmp_path):
    out = tmp_path / "out"
    process = start(*grid_command(tmp_path, "--quiet"))
    wait_for_first_result(process, out)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = fingerprints(out)
    finished = assert_whole(out)
    assert 1 <= len(finished) < 3, "the process finished before it could be killed: make the runs longer"

    again = vadbench(*grid_command(tmp_path))
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("finished earlier, skipped") == len(finished)
    assert again.stderr.count(": AUC") == 3 - len(finished)  # one line per trained run
    assert len(assert_whole(out)) == 3
    assert {path: fingerprints(out)[path] for path in before} == before  # finished runs untouched
    assert not [path for path in temporaries(out) if path.parent in {p.parent for p in before}]


@pytest.mark.slow  # starts vadbench as a process
def test_two_identical_grids_writing_one_store_at_once_leave_it_whole(tmp_path, capsys):
    out = tmp_path / "out"
    both = [start(*grid_command(tmp_path, "--seeds", "0,1", "--steps", "5", "--quiet")) for _ in range(2)]
    for process in both:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    assert len(assert_whole(out)) == 2
    assert temporaries(out) == []
    assert main(["leaderboard", str(out), "--format", "csv"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.startswith("sultani-mil,synthetic,synthetic 2x16,last,") and ",2,0," in row  # 2 runs, 0 failed


def worker_processes(driver: int) -> set[int]:
    """Process ids of the local executor's workers (spawned multiprocessing children) of `driver`."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
        if ppid == driver and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting to be reaped has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find the worker processes")
@pytest.mark.parametrize(
    ("stop", "within"),
    # SIGTERM: the driver ends its workers. SIGKILL: each worker notices (within a second once it has
    # started; one killed while still importing torch ends when its start-up is done).
    [(signal.SIGTERM, 10), (signal.SIGKILL, 90)], ids=["SIGTERM", "SIGKILL"],
)
def test_stopping_the_driver_ends_its_local_workers(tmp_path, stop, within):
    # Runs far too long to finish: the workers are busy (or still starting) when the driver is stopped.
    process = start(*grid_command(tmp_path, "--executor", "local", "--workers", "2", "--cpus-per-run", "1",
                                  "--steps", "1000000", "--quiet"))
    workers: set[int] = set()
    try:
        wait_until(lambda: len(worker_processes(process.pid)) == 2, 120, "the driver did not start 2 workers")
        workers = worker_processes(process.pid)
        process.send_signal(stop)
        process.wait(timeout=60)
        wait_until(lambda: not any(map(running, workers)), within, "worker processes outlived their driver")
        if stop == signal.SIGTERM:  # ended like Ctrl-C
            stderr = process.communicate()[1]
            assert process.returncode == 130 and "interrupted" in stderr, stderr
    finally:
        process.kill()
        for pid in filter(running, workers):
            os.kill(pid, signal.SIGKILL)
