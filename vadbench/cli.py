"""The `vadbench` command line: list, run, grid, leaderboard, plot, data check, data cache.

Every subcommand is one ``add_<name>`` function that declares its parser and its handler. Input
errors raise `UsageError`; `main` prints them as one line on stderr and exits with code 2 (the
traceback only with ``--debug``). `run` and `grid` exit with code 1 when a run failed (after printing
the table that marks it), so that scripts notice without parsing the table; 130 means interrupted
(Ctrl-C or SIGTERM).

Only the commands that train, list or check data load the plugins (`plugins_with_warnings`), whose
modules import torch; the report commands (`leaderboard`, `grid --table-only`, `plot`) read the run
store alone and import the modules they need inside their handlers, so they run without torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from vadbench import __version__
from vadbench.api.errors import UsageError
from vadbench.api.types import PRECISIONS, RunResult, RunSpec
from vadbench.report.metrics import METRICS

if TYPE_CHECKING:
    from vadbench.api.executor import Executor
    from vadbench.plan.grid import Grid
    from vadbench.plugins.manager import Plugins

DEFAULT_OUT = "vadbench-runs"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command, and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vadbench",
        description="Benchmark weakly-supervised video anomaly detection methods (RTFM, Sultani MIL, plugins).",
    )
    parser.add_argument("--version", action="version", version=f"vadbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for add in (add_list, add_run, add_grid, add_leaderboard, add_plot, add_data):
        add(commands)
    return parser


def add_list(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("list", help="list the registered methods, datasets and executors",
                                 description="List every registered method, dataset and executor with a one-line "
                                 "description.")
    parser.set_defaults(handler=cmd_list)


def plugins_with_warnings() -> Plugins:
    """The loaded plugins (importing them imports torch), with a warning line per plugin that failed to load."""
    try:
        from vadbench.plugins.manager import get_plugins
    except ImportError as error:
        raise UsageError(f"this command loads the plugins, which need torch ({error}); `vadbench leaderboard`, "
                         "`vadbench grid --table-only` and `vadbench plot` do not") from None

    plugins = get_plugins()
    for problem in plugins.errors:
        print(f"vadbench: warning: {problem}", file=sys.stderr)
    return plugins


def upgrade_with_plugins() -> Callable[[RunResult], RunResult]:
    """`vadbench.report.store.upgrade_stored`, loading the plugins at its first call: only results stored by
    an older version need them (a store written by this version is read without any plugin)."""
    loaded = functools.cache(plugins_with_warnings)

    def upgrade(result: RunResult) -> RunResult:
        from vadbench.report.store import upgrade_stored

        return upgrade_stored(loaded(), result)

    return upgrade


def cmd_list(args: argparse.Namespace) -> int:
    plugins = plugins_with_warnings()
    for title, registry in (("methods", plugins.methods), ("datasets", plugins.datasets),
                            ("executors", plugins.executors)):
        print(f"{title}:")
        width = max((len(entry.name) for entry in registry), default=0)
        for entry in registry:
            preset = ", ".join(f"{k}={v}" for k, v in entry.preset.items())
            suffix = f" [preset: {preset}]" if preset else ""
            print(f"  {entry.name:<{width}}  {entry.description}{suffix}")
    return 0


def add_run(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run", help="train and evaluate methods on a dataset, then print the leaderboard",
        description="Train and evaluate each method on a dataset for each seed, store every run under --out "
        "(finished runs are skipped when the command is repeated) and print the leaderboard.",
    )
    parser.add_argument("--method", action="append", metavar="NAME",
                        help="method to run (repeatable; default: every registered method that is not a preset)")
    parser.add_argument("--dataset", default="synthetic", metavar="NAME", help="dataset (default: synthetic)")
    parser.add_argument("--root", metavar="DIR", help="data root of a real dataset (sets the dataset option root)")
    parser.add_argument("--no-cache", action="store_true",
                        help="read the feature files directly, bypassing the preparation cache of a real dataset")
    parser.add_argument("--seeds", default="0,1,2", type=parse_seeds, metavar="LIST",
                        help="comma-separated seeds or ranges, e.g. 0,1,2 or 0-4 (default: 0,1,2)")
    parser.add_argument("--steps", type=int, metavar="N",
                        help="training steps (default: the dataset's suggestion, else the method's published schedule)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    add_precision_argument(parser)
    add_compile_argument(parser)
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"run store folder (default: {DEFAULT_OUT})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="override a method or dataset option, e.g. --set k=4, --set rtfm.margin=50, "
                        "--set dataset.mu=8 (repeatable)")
    parser.add_argument("--format", default="md", choices=["md", "csv", "latex"], help="leaderboard format")
    add_metrics_argument(parser, "auc,ap,ap_trapz")
    parser.add_argument("--quiet", action="store_true", help="no progress, only the line of a run that failed")
    add_executor_arguments(parser)
    parser.set_defaults(handler=cmd_run)


def add_metrics_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """`--metrics`: the metric columns of the printed table (checked before any run starts), one for every
    registered metric (`vadbench.report.metrics.METRICS`)."""
    described = "; ".join(f"{key}: {metric.help}" for key, metric in METRICS.items())
    parser.add_argument("--metrics", type=parse_metrics, metavar="LIST",
                        help=f"metric columns, comma-separated, in percent (default: {default}). {described}. "
                        "Results stored before a metric existed show it as -")


def parse_metrics(text: str) -> list[str]:
    """``"auc,far"`` -> ["auc", "far"]; an unknown name is an argument error listing the known ones."""
    names = list(dict.fromkeys(filter(None, (name.strip() for name in text.split(",")))))
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected metrics among {', '.join(METRICS)}, got {text!r}")
    return names


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


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="fp32 (default) or bf16 autocast: faster on a GPU, numbers change slightly, so bf16 "
                        "runs are stored and tabled apart from fp32 runs (docs/gpu.md)")


def add_compile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the training step and, on CUDA, replay it as one CUDA graph (the first "
                        "steps take longer; the numbers change slightly, so compiled runs are stored and tabled "
                        "apart from eager runs)")


def with_execution(specs: Sequence[RunSpec], args: argparse.Namespace) -> list[RunSpec]:
    """`specs` with the --precision and --compile of the command line."""
    return [dataclasses.replace(spec, precision=args.precision, compile=getattr(args, "compile", False))
            for spec in specs]


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


def cmd_run(args: argparse.Namespace) -> int:
    from vadbench.executors.driver import run_specs
    from vadbench.plan.specs import build_specs
    from vadbench.plugins.registry import option_names
    from vadbench.report.leaderboard import render

    plugins = plugins_with_warnings()
    methods = args.method or [entry.name for entry in plugins.methods if not entry.preset]
    check_root(plugins, args.dataset, args.root)
    assignments = list(args.assignments) + ([f"dataset.root={args.root}"] if args.root else [])
    if args.no_cache:
        if "cache" not in option_names(plugins.datasets.get(args.dataset).cls.Config):
            raise UsageError(f"--no-cache: dataset {args.dataset!r} has no preparation cache")
        assignments.append("dataset.cache=false")
    specs = build_specs(plugins, methods, args.dataset, assignments, args.seeds, args.steps, args.device)
    check_device(args.device)
    specs = with_execution(specs, args)
    executor = executor_from_args(args, plugins)
    results = run_specs(specs, args.out, plugins=plugins, progress=not args.quiet, executor=executor)
    print(render(results, args.format, args.metrics), end="")
    return exit_code(results)


def check_device(device: str) -> None:
    """Refuse a device this machine lacks before any work (the specs are checked for all else when built)."""
    from vadbench.engine.runner import resolve_device

    resolve_device(device)


def check_root(plugins: Plugins, dataset: str, root: str | None) -> None:
    """`--root` only for a dataset that reads files (one with a ``root`` option), said in its own words."""
    from vadbench.plugins.registry import option_names

    if root is not None and "root" not in option_names(plugins.datasets.get(dataset).cls.Config):
        raise UsageError(f"--root: dataset {dataset!r} reads no files; drop --root")


def exit_code(results: Sequence[Any]) -> int:
    """1 when any run failed (its table row says so), else 0; 2 stays reserved for bad input."""
    return int(any(result.status != "ok" for result in results))


def add_grid(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "grid", help="run every run of a grid file, then render its table",
        description="Expand a grid file (TOML: methods x datasets x protocols x option sweeps x seeds; see "
        "vadbench.plan.grid and leaderboards/), run what is not finished under --out (an interrupted grid resumes) "
        "and print the grid's table (--table-only: render the table of the runs already stored, without "
        "plugins, torch or data root).",
    )
    parser.add_argument("file", metavar="FILE", help="a grid file, e.g. leaderboards/rtfm-ablation.toml")
    _add_grid_choices(parser)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    add_compile_argument(parser)
    parser.add_argument("--format", default="md", choices=["md", "csv", "latex"],
                        help="table format (default: md; csv: one table of every row, mean and std in columns)")
    add_metrics_argument(parser, "auc,ap; ablation tables: auc")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true",
                      help="list the runs and whether they are finished; run nothing")
    mode.add_argument("--table-only", action="store_true",
                      help="render the table of the grid's runs stored under --out; run nothing (needs no "
                      "plugins, torch or data root; every run must be finished)")
    parser.add_argument("--quiet", action="store_true", help="no progress, only the line of a run that failed")
    add_executor_arguments(parser)
    parser.set_defaults(handler=cmd_grid)


def _add_grid_choices(parser: argparse.ArgumentParser) -> None:
    """Options that change which runs a grid file stands for (shared by `grid` and `plot`)."""
    parser.add_argument("--dataset", metavar="NAME", help="run on this dataset instead of the file's datasets")
    parser.add_argument("--root", metavar="DIR", help="data root of the (one) dataset")
    parser.add_argument("--seeds", type=parse_seeds, metavar="LIST", help="seeds instead of the file's, e.g. 0-4")
    parser.add_argument("--steps", type=int, metavar="N", help="training steps instead of the file's")
    add_precision_argument(parser)
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"run store folder (default: {DEFAULT_OUT})")


def _grid(args: argparse.Namespace) -> Grid:
    """The grid file with the command line's choices applied (`vadbench.plan.grid.override`)."""
    from vadbench.plan.grid import load_grid, override

    return override(load_grid(args.file), dataset=args.dataset, root=args.root, seeds=args.seeds, steps=args.steps)


def _stored_grid_runs(grid: Grid, args: argparse.Namespace) -> list[RunResult]:
    """The grid's runs in the store --out, found without plugins (`vadbench.plan.grid.stored_runs`)."""
    from vadbench.plan.grid import stored_runs
    from vadbench.report.store import RunStore, load_results

    stored = load_results(args.out, upgrade_with_plugins()) if RunStore(args.out).runs.is_dir() else []
    return stored_runs(grid, stored, args.out, precision=args.precision, compile=getattr(args, "compile", False),
                       threads=args.cpus_per_run)


def cmd_grid(args: argparse.Namespace) -> int:
    from vadbench.report.store import RunStore
    from vadbench.report.tables import render_grid

    grid, store = _grid(args), RunStore(args.out)
    if args.table_only:
        results = _stored_grid_runs(grid, args)
        print(render_grid(grid, results, store=store, fmt=args.format, metrics=args.metrics), end="")
        return exit_code(results)
    from vadbench.executors.driver import run_specs
    from vadbench.plan.grid import expand
    from vadbench.plan.specs import with_data

    plugins = plugins_with_warnings()
    if args.root is not None:
        check_root(plugins, grid.datasets[0], args.root)  # override made sure there is one dataset
    specs = with_execution(expand(grid, plugins, device=args.device), args)
    check_device(args.device)
    executor = executor_from_args(args, plugins)
    specs = executor.specs_as_run(specs, plugins)
    if args.dry_run:
        specs = with_data(specs, plugins)  # keys name the data's content: a root is read once to hash it
        for spec in specs:
            state = "finished" if store.is_finished(spec) else "to run"
            options = " ".join(f"{k}={v}" for k, v in {**spec.method_options, **spec.dataset_options}.items())
            print(f"{spec.key}  {state:<8}  {spec.method} on {spec.dataset} [{spec.protocol}] "
                  f"seed {spec.seed}  {options}".rstrip())
        print(f"{len(specs)} runs, {sum(map(store.is_finished, specs))} finished", file=sys.stderr)
        return 0
    results = run_specs(specs, args.out, plugins=plugins, progress=not args.quiet, executor=executor)
    print(render_grid(grid, results, store=store, fmt=args.format, metrics=args.metrics), end="")
    return exit_code(results)


def add_leaderboard(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "leaderboard", help="render the stored results as a table",
        description="Render every run stored under RESULTS_DIR as mean ± std over seeds per method, dataset "
        "and selection protocol (metrics in percent).",
    )
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="a folder written by `vadbench run --out`")
    parser.add_argument("--format", default="md", choices=["md", "csv", "latex"], help="table format (default: md)")
    add_metrics_argument(parser, "auc,ap,ap_trapz")
    parser.set_defaults(handler=cmd_leaderboard)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from vadbench.report.leaderboard import render
    from vadbench.report.store import load_results

    print(render(load_results(args.results_dir, upgrade_with_plugins()), args.format, args.metrics), end="")
    return 0


PLOTS = ("sweep", "methods", "per-class", "video", "separability", "curves")


def add_plot(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "plot", help="draw a figure from stored runs (needs vadbench[plot])",
        description="Draw a figure from the finished runs of a grid file: sweep (AUC against a swept option), "
        "methods (AUC and AP of each method per dataset, every seed a dot, mean ± std beside), "
        "per-class (per-class AUC of each method), video (score and feature magnitude over one test video, ground "
        "truth shaded), separability (top-k magnitude separability of abnormal and normal videos against k), "
        "curves (loss terms and selection metric against the training step, one line per seed; also of every "
        "run in a run store). Figures fit a paper column; the suffix of each --output chooses its format.",
    )
    parser.add_argument("kind", choices=PLOTS, metavar="KIND", help=f"one of: {', '.join(PLOTS)}")
    parser.add_argument("file", metavar="FILE", help="the grid file whose runs to plot (run `vadbench grid` first); "
                        "curves: or a run store folder")
    _add_grid_choices(parser)
    parser.add_argument("-o", "--output", action="append", metavar="PATH",
                        help="figure file; .pdf and .svg are vector, .png is 300 dpi; repeat for several formats "
                        "(default: <grid>-<kind>.pdf and .png)")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="plot only the runs whose recorded option KEY has VALUE, e.g. --where k=4, "
                        "--where protocol=val (repeatable)")
    parser.add_argument("--x", metavar="OPTION", help="sweep: the swept option on the x axis (default: the first)")
    parser.add_argument("--method", metavar="NAME",
                        help="video, separability: the method (default: the grid's first); curves: only this method")
    parser.add_argument("--seed", type=int, metavar="N", help="video: the seed of the run (default: the first)")
    parser.add_argument("--video", metavar="ID", help="video: the test video (default: the first abnormal one)")
    parser.add_argument("--max-k", type=int, default=24, metavar="N", help="separability: largest k (default: 24)")
    parser.add_argument("--cpus-per-run", type=int, metavar="N",
                        help="plot the runs made with N torch threads, where the store holds several counts")
    parser.set_defaults(handler=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError('vadbench plot needs matplotlib: pip install "vadbench[plot]"') from None
    from pathlib import Path

    from vadbench.report.plots import check_outputs, draw, save, where
    from vadbench.report.store import RunStore, load_results

    source = Path(args.file)
    outputs = check_outputs(args.output or [f"{source.stem}-{args.kind}{suffix}" for suffix in (".pdf", ".png")])
    if source.is_dir():
        if args.kind != "curves":
            raise UsageError(f"{source}: a folder; plot {args.kind} draws the runs of a grid file "
                             "(only plot curves takes a run store)")
        grid, store = None, RunStore(source)
        results = [result for result in load_results(source, upgrade_with_plugins()) if result.status == "ok"]
        if not results:
            raise UsageError(f"{source}: no finished runs to plot")
    else:
        grid, store = _grid(args), RunStore(args.out)
        results = [result for result in _stored_grid_runs(grid, args) if result.status == "ok"]
    figure = draw(args.kind, where(results, args.where), store=store, grid=grid, x=args.x,
                  method=args.method, seed=args.seed, video=args.video, max_k=args.max_k)
    save(figure, outputs)
    print("\n".join(map(str, outputs)))
    return 0


def add_data(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "data", help="inspect a dataset's data root",
        description="Commands about the files behind a dataset.",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    check = actions.add_parser(
        "check", help="validate everything a run would read and summarise the dataset",
        description="Read every file a run of DATASET would touch (features, lists, annotations, ground "
        "truth) and print a summary, or one line per problem (the first 20, then a count) and exit 2.",
    )
    _add_dataset_arguments(check, "e.g. --set features=wu")
    check.set_defaults(handler=cmd_data_check)
    cache = actions.add_parser(
        "cache", help="show how much the preparation cache holds, and remove old entries",
        description="List the preparation-cache entries of DATASET's data root: one test entry per dataset "
        "configuration (shared by every method) and one training entry per training reduction, each with its "
        "size, when it was last used and its state: current (made from the files now there), stale (a file it "
        "was made from has changed or is gone), old format (written by an earlier vadbench) or unfinished (a "
        "preparation under way or killed); then the total. Remove entries while no run uses this data: a later run "
        "prepares again what it needs.",
    )
    _add_dataset_arguments(cache, "e.g. --set cache_dir=DIR for a cache kept elsewhere")
    removal = cache.add_mutually_exclusive_group()
    removal.add_argument("--remove-stale", action="store_true",
                         help="remove every entry that is not current (run it while no run prepares this data)")
    removal.add_argument("--remove-all", action="store_true",
                         help="remove every entry of DATASET (the next run prepares the data again)")
    cache.set_defaults(handler=cmd_data_cache)


def _add_dataset_arguments(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument("dataset", metavar="DATASET", help="a registered dataset, e.g. ucf-crime")
    parser.add_argument("--root", metavar="DIR", help="data root (sets the dataset option root)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help=f"set a dataset option, {example} (repeatable)")


def _data_dataset(plugins: Plugins, args: argparse.Namespace) -> Any:
    """The dataset of a `data` command, with its --set options and --root."""
    from vadbench.plugins.overrides import parse_assignment

    options = {}
    for text in args.assignments:
        key, value = parse_assignment(text)
        scope, _, name = key.rpartition(".")
        if scope not in ("", "dataset", args.dataset):
            raise UsageError(f"--set {text!r}: {scope!r} is not the dataset; write dataset.{name}=")
        options[name] = value
    check_root(plugins, args.dataset, args.root)
    if args.root:
        options["root"] = args.root
    return plugins.datasets.create(args.dataset, options)


def cmd_data_check(args: argparse.Namespace) -> int:
    from vadbench.data.check import check_dataset

    report = check_dataset(_data_dataset(plugins_with_warnings(), args))
    if report.ok:
        print(report.summary)
        return 0
    for line in report.lines():
        print(f"vadbench: error: {line}", file=sys.stderr)
    return 2


def cmd_data_cache(args: argparse.Namespace) -> int:
    import time

    from vadbench.data.prepcache import age, amount, holding, size_text

    dataset = _data_dataset(plugins_with_warnings(), args)
    if not callable(getattr(dataset, "cache_entries", None)):
        raise UsageError(f"dataset {args.dataset!r} has no preparation cache")
    cache, entries = dataset.cache_entries()
    print(f"preparation cache of {dataset.name} in {cache.directory}")
    now = time.time()
    rows = [("part", "size", "state", "last used", "entry")] + [
        (entry.part, size_text(entry.size), entry.state, age(entry.used, now), entry.folder.name) for entry in entries
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows if entries else []:
        print("  " + "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[4]]))
    print(f"total: {holding(entries)}")
    removed = [entry for entry in entries if args.remove_all or (args.remove_stale and entry.state != "current")]
    for entry in removed:
        entry.remove()
    if args.remove_all or args.remove_stale:
        print(f"removed {amount(removed)}; left {amount([entry for entry in entries if entry not in removed])}")
    return 0


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, a scheduler ending the job) stops the command as Ctrl-C does,
    so that the executors' cleanup ends their worker processes instead of leaving them orphaned."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with sigterm_as_interrupt(), warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _handle(args)


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Warnings (a cache that cannot be written, results that disagree) as one line each, like errors."""
    print(f"vadbench: warning: {message}", file=sys.stderr)


def _handle(args: argparse.Namespace) -> int:
    """Run the chosen command: input errors are one line and 2, an interruption (Ctrl-C, SIGTERM) 130."""
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a buffered stdout fails here, not in Python's exit flush, if the reader has gone
        return code
    except UsageError as error:
        if args.debug:
            raise
        print(f"vadbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vadbench: interrupted; finished runs are stored and will be skipped next time", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`vadbench list | head`): stop quietly, and keep Python's exit flush of the
        # closed stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
