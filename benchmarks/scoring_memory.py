"""Peak memory of scoring one long test video, per method: does it grow with T or with T squared?

Builds each method's model at its default (published) widths, in eval mode, and scores one video of T
snippets x C crops x D features (random values) through ``Method.score`` under ``torch.inference_mode()``,
on the CPU with one thread. Each measurement runs in a child process of its own, which resets its peak
resident set (``/proc/self/clear_refs``) after building the model and the features, so the figure is
what the scoring call itself adds. UCF-Crime's longest test videos have 6,749 snippets of 10 crops.

    python benchmarks/scoring_memory.py [--methods pel4vad,ur-dmu] [--steps 1000,2000] [--crops 10] [--dim 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

METHODS = ("rtfm", "sultani-mil", "pel4vad", "ur-dmu", "bn-wvad", "mgfn")


def status_kib(field: str) -> int:
    """A ``VmRSS``/``VmHWM``-like field of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure(method_name: str, steps: int, crops: int, dim: int) -> dict[str, float | int | str]:
    """Score one video in this process; the peak memory the call added, in MiB, and its wall time."""
    import torch

    from vadbench.plugins.manager import get_plugins

    torch.set_num_threads(1)
    method = get_plugins().methods.create(method_name)
    model = method.build(crops, dim).eval()
    features = torch.randn(1, crops, steps, dim, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([steps])
    Path("/proc/self/clear_refs").write_text("5")  # the peak resident set starts again from the current one
    before = status_kib("VmRSS")
    start = time.perf_counter()
    with torch.inference_mode():
        method.score(model, features, lengths)
    wall = time.perf_counter() - start
    return {"method": method_name, "steps": steps, "crops": crops, "dim": dim,
            "scoring_peak_mib": round((status_kib("VmHWM") - before) / 1024, 1),
            "process_peak_mib": round(status_kib("VmHWM") / 1024, 1), "wall_s": round(wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--steps", default="1000,2000,3000")
    parser.add_argument("--crops", type=int, default=10)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.methods, int(args.steps), args.crops, args.dim)))
        return
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in args.methods.split(","):
        for steps in args.steps.split(","):
            command = [sys.executable, __file__, "--child", "--methods", name, "--steps", steps,
                       "--crops", str(args.crops), "--dim", str(args.dim)]
            done = subprocess.run(command, env=environment, capture_output=True, text=True)
            print(done.stdout.strip() or f"{name} T={steps}: failed: {done.stderr.strip().splitlines()[-1:]}",
                  flush=True)


if __name__ == "__main__":
    main()
