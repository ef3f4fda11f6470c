"""`vadbench list`, `run` and `grid`: the commands that load the plugins to list them or to train.

Each command is an ``add_<name>`` function that declares its parser and points it at its handler
(``cmd_<name>``). `run` and `grid` exit with code 1 when a run failed (after printing the table that marks it),
so that scripts notice without parsing the table; `grid --table-only` reads the run store alone, without torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from vadbench.api.errors import UsageError
from vadbench.cli.arguments import (
    DEFAULT_OUT,
    add_compile_argument,
    add_executor_arguments,
    add_grid_choices,
    add_precision_argument,
    add_save_model_argument,
    check_device,
    check_root,
    executor_from_args,
    grid_from_args,
    parse_seeds,
    stored_grid_runs,
    with_execution,
)
from vadbench.cli.metric_columns import add_metrics_argument
from vadbench.cli.plugin_loading import plugins_with_warnings


def add_list(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("list", help="list the registered methods, datasets, executors and extractors",
                                 description="List every registered method, dataset, executor and extractor with a "
                                 "one-line description.")
    parser.set_defaults(handler=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    plugins = plugins_with_warnings()
    for title, registry in (("methods", plugins.methods), ("datasets", plugins.datasets),
                            ("executors", plugins.executors), ("extractors", plugins.extractors)):
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
    add_save_model_argument(parser)
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"run store folder (default: {DEFAULT_OUT})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="override a method or dataset option, e.g. --set k=4, --set rtfm.margin=50, "
                        "--set dataset.mu=8 (repeatable)")
    parser.add_argument("--format", default="md", choices=["md", "csv", "latex"], help="leaderboard format")
    add_metrics_argument(parser, "auc,ap,ap_trapz")
    parser.add_argument("--quiet", action="store_true", help="no progress, only the line of a run that failed")
    add_executor_arguments(parser)
    parser.set_defaults(handler=cmd_run)


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
    add_grid_choices(parser)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    add_compile_argument(parser)
    add_save_model_argument(parser)
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


def cmd_grid(args: argparse.Namespace) -> int:
    from vadbench.report.store import RunStore
    from vadbench.report.tables import render_grid

    grid, store = grid_from_args(args), RunStore(args.out)
    if args.table_only:
        results = stored_grid_runs(grid, args)
        print(render_grid(grid, results, store=store, fmt=args.format, metrics=args.metrics), end="")
        return exit_code(results)
    from vadbench.executors.driver import run_specs
    from vadbench.plan.grid import expand
    from vadbench.plan.specs import with_data

    plugins = plugins_with_warnings()
    if args.root is not None:
        check_root(plugins, grid.datasets[0], args.root)  # override made sure there is one dataset
    specs = with_execution(expand(grid, plugins, device=args.device), args, save_model=grid.save_model)
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
