"""`vadbench leaderboard` and `plot`: tables and figures of stored runs.

They read the run store alone and import what they need inside their handlers, so that they run without torch,
plugins or data root (the plugins are loaded only to upgrade a result stored by an older version).
"""

from __future__ import annotations

import argparse

from vadbench.api.errors import UsageError
from vadbench.cli.arguments import add_grid_choices, grid_from_args, stored_grid_runs
from vadbench.cli.metric_columns import add_metrics_argument
from vadbench.cli.plugin_loading import upgrade_with_plugins


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
    add_grid_choices(parser)
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

    from vadbench.report.plotdata import where
    from vadbench.report.plots import check_outputs, draw, save
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
        grid, store = grid_from_args(args), RunStore(args.out)
        results = [result for result in stored_grid_runs(grid, args) if result.status == "ok"]
    figure = draw(args.kind, where(results, args.where), store=store, grid=grid, x=args.x,
                  method=args.method, seed=args.seed, video=args.video, max_k=args.max_k)
    save(figure, outputs)
    print("\n".join(map(str, outputs)))
    return 0
