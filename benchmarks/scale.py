"""Peak memory and time of each method on a UCF-Crime-shaped root: the scale benchmark.

It writes a data root in RTFM's layout (one ``<id>_i3d.npy`` of [T, C, D] float32 per video, RTFM's list
files ``ucf-i3d.list`` and ``ucf-i3d-test.list``; the official test annotation and training split are the
ones the UCF-Crime adapter ships) holding:

- the 290 real test videos, each with the T of a public extraction: Wu et al.'s I3D features as PEL4VAD's
  per-video ground truth gives them (``tests/data/public_test_lengths.json``, 69,355 snippets in all);
- a fraction (--train-fraction) of the 1,610 real training videos, the same fraction of the abnormal and of
  the normal ones, drawn with --seed. The real training videos' lengths are not shipped; their 12,656,615
  frames (the frame counts published with ekosman's AnomalyDetectionCVPR2018-Pytorch) are 491 16-frame
  snippets a video on average, with a median of 138 and a longest video of 61,031. Lengths are drawn from
  the log-normal with that median and mean, capped at that longest, then scaled so that the drawn mean is
  the real one;
- random features of --crops crops x --dim dimensions.

For each method (--methods) it first prepares the root for the method's training reduction in a child
process (the first use of a root: ``vadbench run`` does it before any run starts, when it keys the runs on
the data's fingerprint; a fresh preparation cache serves this benchmark, so a method whose reduction was
prepared already finds its entry), then runs the method through ``vadbench run`` in another child: one
seed, on the CPU, with --threads torch threads, for --steps steps. Per method it records the preparation's
seconds and peak RSS, the run's peak RSS (each child's ``ru_maxrss``, from ``wait4``), training milliseconds
per step and evaluation seconds (the run's own timings), the run's wall time and the bytes of the cache after
it; with the root's bytes, the machine, its CPU, the threads and the git revision of the vadbench measured,
they go to a JSON file under benchmarks/results/, and a table is printed.

The root was just written, so its files sit in the OS page cache when the machine has the memory for them;
on a cold disk preparation reads them from the disk. Full size (--train-fraction 1 --dim 2048) writes about
70 GB: check the disk first.

    python benchmarks/scale.py --train-fraction 0.02 --dim 64 --methods rtfm,pel4vad --steps 5,pel4vad=2
    python benchmarks/scale.py --root ROOT --vadbench "OTHER-ENV/bin/vadbench" ...  # another install, same root
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from vadbench.data.annotations import parse_ucf_annotation, parse_ucf_train_split
from vadbench.datasets.ucf_crime.adapter import UCFCrime
from vadbench.engine.runner import cpu_model

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = REPOSITORY / "benchmarks" / "results"
TEST_LENGTHS = REPOSITORY / "tests" / "data" / "public_test_lengths.json"
#: The built-in methods, in the order of the table.
METHODS = ("rtfm", "sultani-mil", "ur-dmu", "mgfn", "pel4vad", "bn-wvad")
#: Snippets of the real training videos (see the module docstring): median, mean, longest.
TRAIN_MEDIAN, TRAIN_MEAN, TRAIN_LONGEST = 138, 12_656_615 / 16 / 1610, 61_031
#: The file that describes a written root (so that --root reuses it only when it was written alike).
ROOT_FILE = "scale-root.json"
#: Run by the interpreter of the vadbench measured: the first use of the root for a method (``vadbench run``
#: does it before any run starts, when it keys the runs on the data's fingerprint), timed alone.
PREPARE = """
import sys, time
from vadbench.plugins.manager import get_plugins
plugins = get_plugins()
reduction = plugins.methods.create(sys.argv[1]).declarations().training_input.reduction
dataset = plugins.datasets.create("ucf-crime", {"root": sys.argv[2], "cache_dir": sys.argv[3]})
start = time.perf_counter()
dataset.fingerprint(reduction)
print(time.perf_counter() - start)
"""


def official_ids() -> tuple[list[str], list[str]]:
    """The real training and test video ids, from the files the UCF-Crime adapter ships."""
    names = ("Anomaly_Train.txt", "Temporal_Anomaly_Annotation.txt")
    split, annotation = (UCFCrime.bundle.bundled(name) for name in names)
    assert split is not None and annotation is not None, "the UCF-Crime adapter ships its split and annotation"
    train = parse_ucf_train_split(split.read_text(), split.name)
    return train, list(parse_ucf_annotation(annotation.read_text(), annotation.name))


def training_lengths(count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` training-video lengths drawn as the module docstring says."""
    sigma = np.sqrt(2 * np.log(TRAIN_MEAN / TRAIN_MEDIAN))  # a log-normal's mean is its median x exp(sigma^2 / 2)
    drawn = np.minimum(rng.lognormal(np.log(TRAIN_MEDIAN), sigma, count), TRAIN_LONGEST)
    return np.clip(np.rint(drawn * TRAIN_MEAN / drawn.mean()), 1, TRAIN_LONGEST).astype(np.int64)


def write_features(path: Path, snippets: int, crops: int, dim: int, rng: np.random.Generator) -> None:
    """A [T, C, D] float32 ``.npy`` of random features, written a block of snippets at a time (a long video at
    full width is gigabytes)."""
    rows = max(1, (1 << 26) // (4 * crops * dim))
    with open(path, "wb") as handle:
        header = {"descr": "<f4", "fortran_order": False, "shape": (snippets, crops, dim)}
        np.lib.format.write_array_header_1_0(handle, header)
        for start in range(0, snippets, rows):
            rng.random((min(rows, snippets - start), crops, dim), dtype=np.float32).tofile(handle)


def write_root(root: Path, fraction: float, crops: int, dim: int, seed: int) -> dict[str, Any]:
    """Write the root (module docstring); returns its description."""
    rng = np.random.default_rng(seed)
    train_ids, test_ids = official_ids()
    chosen = []
    for normal in (False, True):
        ids = [video for video in train_ids if video.startswith("Normal") == normal]
        count = max(1, round(fraction * len(ids)))
        chosen.extend(ids[i] for i in np.sort(rng.choice(len(ids), count, replace=False)))
    test_lengths = json.loads(TEST_LENGTHS.read_text())["ucf-crime"]["lengths"]
    lengths = dict(zip(chosen, training_lengths(len(chosen), rng).tolist(), strict=True))
    lengths.update({video: test_lengths[video] for video in test_ids})
    for split, ids in (("train", chosen), ("test", test_ids)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for video in ids:
            write_features(root / split / f"{video}_i3d.npy", lengths[video], crops, dim, rng)
    (root / "ucf-i3d.list").write_text("".join(f"train/{video}_i3d.npy\n" for video in chosen))
    (root / "ucf-i3d-test.list").write_text("".join(f"test/{video}_i3d.npy\n" for video in test_ids))
    train_snippets = sum(lengths[video] for video in chosen)
    described = {
        "train_fraction": fraction, "crops": crops, "dim": dim, "seed": seed,
        "train_videos": len(chosen), "train_abnormal": sum(not v.startswith("Normal") for v in chosen),
        "train_snippets": train_snippets, "train_longest": max(lengths[video] for video in chosen),
        "test_videos": len(test_ids), "test_snippets": sum(test_lengths[video] for video in test_ids),
        "test_lengths": "Wu et al.'s I3D, as PEL4VAD's per-video ground truth gives them",
    }
    (root / ROOT_FILE).write_text(json.dumps(described, indent=2))
    return described


def folder_bytes(folder: Path, skip: Path | None = None) -> int:
    """Bytes of the files under `folder` (without those under `skip`)."""
    return sum(
        path.stat().st_size for path in folder.rglob("*")
        if path.is_file() and (skip is None or skip not in path.parents)
    )


def run_method(command: list[str], threads: int, log: Path) -> tuple[float, int, int]:
    """Run `command` as a child with `threads` threads, its output into `log`, in `log`'s folder (a Python
    started in a checkout would import that checkout's vadbench); its wall seconds, peak RSS (bytes) and exit
    status."""
    environment = {**os.environ, **{name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    start = time.perf_counter()
    with open(log, "w") as output:
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment, cwd=log.parent)
        _, status, usage = os.wait4(child.pid, 0)  # the child's own resource usage, as it is reaped
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
    return wall, peak, child.returncode


def stored_result(store: Path) -> dict[str, Any]:
    """The one result a run stored under `store`."""
    (path,) = store.rglob("result.json")
    return dict(json.loads(path.read_text()))


def parse_steps(text: str) -> tuple[int, dict[str, int]]:
    """``5`` or ``5,pel4vad=2``: the steps of every method, and those of the methods named."""
    default, *named = text.split(",")
    return int(default), {name: int(steps) for name, steps in (item.split("=") for item in named)}


def machine() -> dict[str, Any]:
    """This machine: name, architecture, CPU model, cores, memory."""
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), None) if Path("/proc/meminfo").exists() else None
    return {"node": platform.node(), "machine": platform.machine(), "system": platform.platform(),
            "cpu": cpu_model(), "cores": os.cpu_count(), "memory_bytes": int(memory) * 1024 if memory else None}


def interpreter(command: list[str]) -> str:
    """The Python of `command` (``python -m vadbench``, or an environment's ``bin/vadbench``)."""
    found = shutil.which(command[0]) or command[0]
    return found if command[1:2] == ["-m"] else str(Path(found).parent / "python")


def git_revision(command: list[str]) -> str | None:
    """The git revision of the vadbench that `command` runs (its own ``vadbench --version`` is not enough:
    a checkout's revision identifies the code)."""
    probe = "import pathlib, vadbench; print(pathlib.Path(vadbench.__file__).resolve().parent.parent)"
    found = subprocess.run([interpreter(command), "-c", probe], capture_output=True, text=True, check=False,
                           cwd=tempfile.gettempdir())  # not a checkout, whose vadbench it would import
    source = found.stdout.strip()
    if not source:
        return None
    revision = subprocess.run(["git", "-C", source, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False)
    dirty = subprocess.run(["git", "-C", source, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False)
    return (revision.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")) or None


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a small text table."""
    lines = [f"{'method':<12} {'prepare s':>9} {'its RSS':>9} {'steps':>5} {'run RSS':>9} {'ms/step':>9} "
             f"{'eval s':>8} {'run s':>8} {'cache GB':>9}  status"]
    nan = float("nan")
    for row in rows:
        lines.append(
            f"{row['method']:<12} {row['prepare_seconds'] or nan:>9.2f} "
            f"{row['prepare_peak_rss_bytes'] / 2**30:>7.2f}Gi "
            f"{row['steps']:>5} {row['peak_rss_bytes'] / 2**30:>7.2f}Gi {row.get('ms_per_step', nan):>9.1f} "
            f"{row.get('evaluate_seconds', nan):>8.2f} {row['wall_seconds']:>8.1f} {row['cache_bytes'] / 1e9:>9.3f}  "
            f"{row['status']}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-fraction", type=float, default=0.25, help="share of the 1,610 training videos")
    parser.add_argument("--crops", type=int, default=10, help="crops per snippet (RTFM's UCF-Crime: 10)")
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension D (RTFM's I3D: 2048)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn videos, lengths and features")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods to run")
    parser.add_argument("--steps", default="5", help="training steps: 5, or 5,pel4vad=2 for other steps by method")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run")
    parser.add_argument("--root", type=Path, help="the root to write, or reuse when it was written with the same "
                        "options (kept; default: a temporary folder, removed after)")
    parser.add_argument("--vadbench", default=f"{shlex.quote(sys.executable)} -m vadbench",
                        help="the command that runs vadbench (another install, to compare)")
    parser.add_argument("--out", type=Path,
                        help="the JSON file (default: benchmarks/results/scale-<options>-<time>.json)")
    args = parser.parse_args()
    default_steps, method_steps = parse_steps(args.steps)
    command = shlex.split(args.vadbench)
    work = Path(tempfile.mkdtemp(prefix="vadbench-scale-"))
    root = args.root or work / "root"
    try:
        wanted = {"train_fraction": args.train_fraction, "crops": args.crops, "dim": args.dim, "seed": args.seed}
        described = json.loads((root / ROOT_FILE).read_text()) if (root / ROOT_FILE).is_file() else None
        if described is None or {key: described[key] for key in wanted} != wanted:
            if root.exists() and any(root.iterdir()):
                parser.error(f"--root {root}: holds files that were not written with these options")
            start = time.perf_counter()
            described = write_root(root, args.train_fraction, args.crops, args.dim, args.seed)
            described["written_seconds"] = time.perf_counter() - start
        cache = work / "cache"
        described["bytes"] = folder_bytes(root)
        print(f"root {root}: {described['train_videos']} training videos ({described['train_snippets']} snippets), "
              f"{described['test_videos']} test videos ({described['test_snippets']} snippets), "
              f"{args.crops} x {args.dim}, {described['bytes'] / 1e9:.2f} GB", flush=True)
        rows = []
        for method in args.methods.split(","):
            steps = method_steps.get(method, default_steps)
            store = work / f"runs-{method}"
            log = work / f"{method}.log"
            _, prepare_peak, status = run_method(
                [interpreter(command), "-c", PREPARE, method, str(root), str(cache)], args.threads, log)
            prepared = float(log.read_text().split()[-1]) if status == 0 else None
            wall, peak, status = run_method(
                [*command, "run", "--method", method, "--dataset", "ucf-crime", "--root", str(root), "--seeds", "0",
                 "--steps", str(steps), "--device", "cpu", "--cpus-per-run", str(args.threads), "--quiet",
                 "--out", str(store), "--set", f"dataset.cache_dir={cache}"],
                args.threads, log,
            )
            row: dict[str, Any] = {"method": method, "prepare_seconds": prepared,
                                   "prepare_peak_rss_bytes": prepare_peak, "steps": steps,
                                   "peak_rss_bytes": peak, "wall_seconds": wall,
                                   "cache_bytes": folder_bytes(cache) if cache.exists() else 0}
            if status == 0:
                result = stored_result(store)
                timings = result["timings"]
                row.update(status=result["status"], load_seconds=timings.get("load"),
                           ms_per_step=timings.get("ms_per_step"), evaluate_seconds=timings.get("evaluate"),
                           auc=result["metrics"].get("auc"), device=result["device"])
            else:
                row.update(status="error", error=(log.read_text().strip().splitlines() or ["?"])[-1])
            rows.append(row)
            print(table(rows[-1:]).splitlines()[-1], flush=True)
        report = {
            "benchmark": "scale", "when": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": machine(), "threads": args.threads,
            "vadbench": shlex.join([Path(command[0]).name, *command[1:]]),  # no path of this machine
            "git": git_revision(command), "root": described, "runs": rows,
        }
        out = args.out or RESULTS / (f"scale-{args.train_fraction:g}-{args.crops}x{args.dim}-"
                                     f"{datetime.datetime.now():%Y%m%d-%H%M%S}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(table(rows))
        print(f"written to {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
