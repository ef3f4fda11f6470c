"""The arguments several commands share, and what they stand for.

`run` and `grid` choose the executor, the precision and compilation alike; `grid` and `plot` choose a grid file's
runs alike; `run`, `grid` and `data` take a ``--root``. Declared once here, each flag reads and is checked the same
in every command that takes it, and a usage error is one line with exit code 2 (`Parser`).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from vadbench.api.errors import UsageError
from vadbench.api.types import PRECISIONS, RunResult, RunSpec
from vadbench.cli.plugin_loading import upgrade_with_plugins

if TYPE_CHECKING:
    from vadbench.api.executor import Executor
    from vadbench.plan.grid import Grid
    from vadbench.plugins.manager import Plugins

DEFAULT_OUT = "vadbench-runs"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command, and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-4"`` (or a mix) -> a list of seeds."""
    seeds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            first, dash, last = part.partition("-")
            seeds.extend(range(int(first), int(last) + 1) if dash else [int(part)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0,1,2 or 0-4, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("expected at least one seed")
    return seeds


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="fp32 (default) or bf16 autocast: faster on a GPU, numbers change slightly, so bf16 "
                        "runs are stored and tabled apart from fp32 runs (docs/gpu.md)")


def add_compile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the training step and, on CUDA, replay it as one CUDA graph (the first "
                        "steps take longer; the numbers change slightly, so compiled runs are stored and tabled "
                        "apart from eager runs)")


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the runs execute (shared by `run` and `grid`); the values go to the executor's options."""
    group = parser.add_argument_group("executor", "where the runs execute (see docs/executors.md)")
    group.add_argument("--executor", default="serial", metavar="NAME",
                       help="serial (default: one run after another in this process), local (worker processes: "
                       "one per GPU, else --workers CPU workers), ray (Ray tasks; pip install \"vadbench[ray]\") or "
                       "stacked (the seeds of one configuration as one vmapped model, in this process)")
    group.add_argument("--workers", type=int, metavar="N",
                       help="local: worker processes; ray: runs at once on a local cluster (default: one per GPU, "
                       "else one per core)")
    group.add_argument("--address", metavar="ADDR", help="ray: a running cluster, e.g. auto or ray://head:10001 "
                       "(default: start a local one)")
    group.add_argument("--gpus-per-run", type=float, metavar="F",
                       help="ray: GPUs per run, fractional allowed (0.25 packs four runs on a GPU; default: 1 when "
                       "the cluster has GPUs, else 0)")
    group.add_argument("--cpus-per-run", type=int, metavar="N",
                       help="CPU cores (torch threads) per run; equal values give equal results on the CPU")


#: The flags of `add_executor_arguments` that are executor options.
EXECUTOR_OPTIONS = ("workers", "address", "gpus_per_run", "cpus_per_run")


def executor_from_args(args: argparse.Namespace, plugins: Plugins) -> Executor:
    """The executor chosen by `--executor`, with the options given on the command line."""
    from vadbench.executors.driver import create_executor

    options = {name: getattr(args, name) for name in EXECUTOR_OPTIONS if getattr(args, name) is not None}
    return create_executor(plugins, args.executor, options)


def add_save_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--save-model", action="store_true",
                        help="keep each run's trained weights in its run folder (model.pt, read without running "
                        "code, and model.json; RTFM's are about 100 MB a run at 2048-d): for vadbench score and "
                        "vadbench evaluate; a stored run without them is trained again")


def with_execution(specs: Sequence[RunSpec], args: argparse.Namespace, save_model: bool = False) -> list[RunSpec]:
    """`specs` with the --precision, --compile and --save-model of the command line (or `save_model`)."""
    saving = save_model or getattr(args, "save_model", False)
    return [dataclasses.replace(spec, precision=args.precision, compile=getattr(args, "compile", False),
                                save_model=saving) for spec in specs]


def check_device(device: str) -> None:
    """Refuse a device this machine lacks before any work (the specs are checked for all else when built)."""
    from vadbench.engine.runner import resolve_device

    resolve_device(device)


def check_root(plugins: Plugins, dataset: str, root: str | None) -> None:
    """`--root` only for a dataset that reads files (one with a ``root`` option), said in its own words."""
    from vadbench.plugins.registry import option_names

    if root is not None and "root" not in option_names(plugins.datasets.get(dataset).cls.Config):
        raise UsageError(f"--root: dataset {dataset!r} reads no files; drop --root")


def add_grid_choices(parser: argparse.ArgumentParser) -> None:
    """Options that change which runs a grid file stands for (shared by `grid` and `plot`)."""
    parser.add_argument("--dataset", metavar="NAME", help="run on this dataset instead of the file's datasets")
    parser.add_argument("--root", metavar="DIR", help="data root of the (one) dataset")
    parser.add_argument("--seeds", type=parse_seeds, metavar="LIST", help="seeds instead of the file's, e.g. 0-4")
    parser.add_argument("--steps", type=int, metavar="N", help="training steps instead of the file's")
    add_precision_argument(parser)
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"run store folder (default: {DEFAULT_OUT})")


def grid_from_args(args: argparse.Namespace) -> Grid:
    """The grid file with the command line's choices applied (`vadbench.plan.grid.override`)."""
    from vadbench.plan.grid import load_grid, override

    return override(load_grid(args.file), dataset=args.dataset, root=args.root, seeds=args.seeds, steps=args.steps)


def stored_grid_runs(grid: Grid, args: argparse.Namespace) -> list[RunResult]:
    """The grid's runs in the store --out, found without plugins (`vadbench.plan.grid.stored_runs`)."""
    from vadbench.plan.grid import stored_runs
    from vadbench.report.store import RunStore, load_results

    stored = load_results(args.out, upgrade_with_plugins()) if RunStore(args.out).runs.is_dir() else []
    return stored_runs(grid, stored, args.out, precision=args.precision, compile=getattr(args, "compile", False),
                       threads=args.cpus_per_run)
