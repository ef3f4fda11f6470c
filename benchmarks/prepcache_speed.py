"""How much the preparation cache saves: load times of a UCF-Crime-sized root with and without it.

Writes a fake UCF-Crime root (1,610 training + 290 test videos, Wu's layout of one file per crop,
so 19,000 files; test T drawn around the real mean of 239 snippets) and times three loads: without
the cache, the first use (which builds the cache and hashes the data's fingerprint), and a later use
(memory-mapped). Then the fingerprint that keys the runs: the hash alone (what a first use adds), and a
later use's fingerprint (read from the cache entry). The files were just written, so they sit in the
OS page cache: on a cold disk the uncached load is slower still.

    python benchmarks/prepcache_speed.py [--dim 64] [--crops 10] [--root DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from vadbench.datasets.ucf_crime.adapter import UCFCrime, UCFCrimeConfig

CLASSES = (
    "Abuse",
    "Arrest",
    "Arson",
    "Assault",
    "Burglary",
    "Explosion",
    "Fighting",
    "RoadAccidents",
    "Robbery",
    "Shooting",
    "Shoplifting",
    "Stealing",
    "Vandalism",
)


def write_root(root: Path, crops: int, dim: int, seed: int = 0) -> None:
    """UCF-Crime's split sizes with made-up video ids, lists, split file and test annotation."""
    rng = np.random.default_rng(seed)
    train = [f"{CLASSES[i % 13]}{i:03d}_x264" for i in range(810)] + [f"Normal_Videos{i:03d}_x264" for i in range(800)]
    categories = {f"{CLASSES[i % 13]}{900 + i:03d}_x264": CLASSES[i % 13] for i in range(140)}
    categories.update({f"Normal_Videos_{900 + i:03d}_x264": "Normal" for i in range(150)})
    test = list(categories)
    lengths = {video: int(rng.integers(10, 470)) for video in test}
    lines = []
    for video, category in categories.items():
        event = "-1  -1" if category == "Normal" else f"{16 * lengths[video] // 3}  {16 * lengths[video] // 2}"
        lines.append(f"{video}.mp4  {category}  {event}  -1  -1")
    (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text("\n".join(lines) + "\n")
    for split, videos in (("Train", train), ("Test", test)):
        listed = [f"dataset/{v}__{c}.npy" for v in videos for c in range(crops)]
        (root / f"UCF_{split}.list").write_text("\n".join(listed) + "\n")
        folder = root / split
        folder.mkdir()
        for video in videos:
            snippets = lengths.get(video) or int(rng.integers(10, 600))
            features = rng.random((snippets, dim), dtype=np.float32)
            for crop in range(crops):
                np.save(folder / f"{video}__{crop}.npy", features)


def timed(label: str, root: Path, **options: object) -> float:
    start = time.perf_counter()
    benchmark = UCFCrime(UCFCrimeConfig(root=str(root), **options)).load()
    np.asarray(benchmark.train.features).sum()  # touch every byte, as a run would
    np.asarray(benchmark.test.features).sum()
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds:7.2f} s")
    return seconds


def fingerprint_costs(root: Path) -> None:
    """Seconds to hash the prepared data (paid once per cache entry) and to fingerprint a root later."""
    benchmark = UCFCrime(UCFCrimeConfig(root=str(root))).load()
    size = sum(np.asarray(a).nbytes for a in (benchmark.train.features, benchmark.test.features))
    start = time.perf_counter()
    benchmark.fingerprint()
    seconds = time.perf_counter() - start
    print(f"{'fingerprint hash (first use adds)':<34} {seconds:7.2f} s ({size / 1e9:.2f} GB, "
          f"{size / 1e9 / seconds:.2f} GB/s)")
    start = time.perf_counter()
    UCFCrime(UCFCrimeConfig(root=str(root))).fingerprint()
    print(f"{'fingerprint, later use':<34} {time.perf_counter() - start:7.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=64, help="feature dimension D (real I3D: 1024 or 2048)")
    parser.add_argument("--crops", type=int, default=10)
    parser.add_argument("--root", type=Path, help="where to write the fake root (default: a temporary folder)")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="vadbench-ucf-"))
    try:
        start = time.perf_counter()
        write_root(root, args.crops, args.dim)
        print(
            f"fake root: {root}, 1,900 videos x {args.crops} crop files, D={args.dim} "
            f"(written in {time.perf_counter() - start:.1f} s)"
        )
        uncached = timed("load without cache (cache=false)", root, cache=False)
        timed("first load (builds the cache)", root)
        cached = timed("later load (memory-mapped cache)", root)
        print(f"speed-up of a cached load: {uncached / cached:.0f}x")
        fingerprint_costs(root)
    finally:
        if args.root is None:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
