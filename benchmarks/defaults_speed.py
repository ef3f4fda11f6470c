"""What the defaults cost on a laptop: each method's time per step on the synthetic default, against RTFM's,
and a bare ``vadbench run --seeds 0`` (every method) against the README's two-method job
(``vadbench run --method rtfm --method sultani-mil``, seeds 0, 1, 2), measured in one run.

Every measurement is a ``python -m vadbench run`` child with one torch thread (``OMP_NUM_THREADS=1``,
``--cpus-per-run 1``), into a fresh store, so nothing is skipped as finished:

- a method's time per step: the difference of the training seconds its runs record at --short and --long
  steps, divided by the difference of steps (the first steps' one-off costs cancel);
- a command's wall time at the synthetic schedule (200 steps): its wall time measured at --short-run and
  --long-run steps and extrapolated along the line through them (start-up and evaluation are the
  intercept, training the slope), so the bare run costs minutes, not half an hour, to measure.

The goals (`GOALS`) are checked and written with the figures, the machine, its load average before and after
(the machine may be shared) and the git revision, to benchmarks/results/defaults-speed.json:

    python benchmarks/defaults_speed.py

``--methods`` measures the time per step of some methods only (RTFM always, as the reference) and not the two
commands (the bare run trains every method), e.g. after a change to one method:

    python benchmarks/defaults_speed.py --methods pel4vad --output pel4vad-speed.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vadbench.engine.runner import cpu_model

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = REPOSITORY / "benchmarks" / "results"
#: The methods a bare `vadbench run` trains (every registered method but the presets), RTFM first.
METHODS = ("rtfm", "sultani-mil", "ur-dmu", "mgfn", "pel4vad", "bn-wvad")
#: The README's two-method job and the bare run, as command-line arguments of `vadbench run`.
JOB = ["--method", "rtfm", "--method", "sultani-mil", "--seeds", "0,1,2"]
BARE = ["--seeds", "0"]
#: The synthetic benchmark's schedule (its suggested steps).
SCHEDULE = 200
#: At most this many times RTFM's time per step for each method; at most this many times the job for the bare run.
GOALS = {"per_step_vs_rtfm": 3.0, "bare_vs_job": 4.0}


def vadbench_run(arguments: list[str], steps: int) -> tuple[float, list[dict[str, Any]]]:
    """Wall seconds of ``vadbench run ARGUMENTS --steps STEPS`` on one thread, and the results it stored."""
    with tempfile.TemporaryDirectory() as store:
        command = [sys.executable, "-m", "vadbench", "run", *arguments, "--steps", str(steps), "--device", "cpu",
                   "--cpus-per-run", "1", "--quiet", "--out", store]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        wall = time.perf_counter() - start
        return wall, [json.loads(path.read_text()) for path in sorted(Path(store).glob("runs/*/result.json"))]


def seconds_per_step(method: str, short: int, long: int) -> float:
    """Training seconds per step of `method` on the synthetic default, the one-off costs cancelled."""
    trained = []
    for steps in (short, long):
        _, (result,) = vadbench_run(["--method", method, "--seeds", "0"], steps)
        trained.append(result["timings"]["train"])
    return (trained[1] - trained[0]) / (long - short)


def wall_at_schedule(arguments: list[str], short: int, long: int) -> dict[str, float]:
    """Wall seconds of a command at `short` and `long` steps, and extrapolated to the 200-step schedule."""
    walls = [vadbench_run(arguments, steps)[0] for steps in (short, long)]
    slope = (walls[1] - walls[0]) / (long - short)
    return {f"wall_{short}_steps": walls[0], f"wall_{long}_steps": walls[1],
            f"wall_{SCHEDULE}_steps_extrapolated": walls[0] + slope * (SCHEDULE - short)}


def git_revision() -> str | None:
    """The revision of this checkout, marked when it has uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPOSITORY), *args], capture_output=True, text=True).stdout.strip()
    revision = git("rev-parse", "--short", "HEAD")
    return (revision + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")) or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=4, help="steps of the shorter per-method run (default 4)")
    parser.add_argument("--long", type=int, default=12, help="steps of the longer per-method run (default 12)")
    parser.add_argument("--short-run", type=int, default=10, help="steps of the shorter command run (default 10)")
    parser.add_argument("--long-run", type=int, default=30, help="steps of the longer command run (default 30)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="measure the time per step of these methods only (RTFM always) and not the commands")
    parser.add_argument("--output", type=Path, default=RESULTS / "defaults-speed.json")
    args = parser.parse_args()

    load_before = os.getloadavg()
    methods = [method for method in METHODS if method == "rtfm" or method in args.methods]
    per_step = {method: seconds_per_step(method, args.short, args.long) for method in methods}
    vs_rtfm = {method: seconds / per_step["rtfm"] for method, seconds in per_step.items()}
    commands = commands_report(args.short_run, args.long_run) if len(methods) == len(METHODS) else {}
    report = {
        "benchmark": "defaults-speed",
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"node": platform.node(), "cpu": cpu_model(), "cores": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "threads": 1,
        "git": git_revision(),
        "dataset": "synthetic (default: 64-d features, 1 crop, 200 steps)",
        "seconds_per_step": per_step,
        "per_step_vs_rtfm": vs_rtfm,
        **commands,
        "goals": GOALS,
        "met": {"per_step_vs_rtfm": max(vs_rtfm.values()) <= GOALS["per_step_vs_rtfm"],
                **({"bare_vs_job": commands["bare_vs_job"] <= GOALS["bare_vs_job"]} if commands else {})},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for method in methods:
        print(f"{method:<12} {1000 * per_step[method]:8.0f} ms/step  {vs_rtfm[method]:5.2f} x rtfm")
    if commands:
        key = f"wall_{SCHEDULE}_steps_extrapolated"
        print(f"job  {commands['job'][key]:6.0f} s at {SCHEDULE} steps (extrapolated)")
        print(f"bare {commands['bare'][key]:6.0f} s at {SCHEDULE} steps (extrapolated): "
              f"{commands['bare_vs_job']:.2f} x the job")
    print(f"goals met: {report['met']} -> {args.output}")


def commands_report(short: int, long: int) -> dict[str, Any]:
    """The README's two-method job and the bare run at the synthetic schedule, and the bare run against the job."""
    job = wall_at_schedule(JOB, short, long)
    bare = wall_at_schedule(BARE, short, long)
    key = f"wall_{SCHEDULE}_steps_extrapolated"
    return {"job": {"command": "vadbench run " + " ".join(JOB), **job},
            "bare": {"command": "vadbench run " + " ".join(BARE), **bare},
            "bare_vs_job": bare[key] / job[key]}


if __name__ == "__main__":
    main()
