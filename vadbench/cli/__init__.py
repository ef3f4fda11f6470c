"""The `vadbench` command line: list, run, grid, leaderboard, plot, data check, data cache, extract, score, evaluate.

This package parses the arguments and dispatches them, nothing else: each subcommand is an ``add_<name>``
function of a ``*_commands`` module that declares its parser and its handler. Input errors raise `UsageError`;
`main` prints them as one line on stderr and exits with code 2 (the traceback only with ``--debug``). `run` and
`grid` exit with code 1 when a run failed (after printing the table that marks it), so that scripts notice
without parsing the table; 130 means interrupted (Ctrl-C or SIGTERM, `vadbench.cli.signals`).

Only the commands that train, list or check data load the plugins (`vadbench.cli.plugin_loading`), whose
modules import torch; the report commands (`leaderboard`, `grid --table-only`, `plot`) read the run
store alone and import the modules they need inside their handlers, so they run without torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from vadbench import __version__
from vadbench.api.errors import UsageError
from vadbench.cli.arguments import Parser
from vadbench.cli.data_commands import add_data
from vadbench.cli.extract_commands import add_extract
from vadbench.cli.report_commands import add_leaderboard, add_plot
from vadbench.cli.run_commands import add_grid, add_list, add_run
from vadbench.cli.score_commands import add_evaluate, add_score
from vadbench.cli.signals import sigterm_as_interrupt


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command: each ``*_commands`` module adds its own, with its handler as a default."""
    parser = Parser(
        prog="vadbench",
        description="Benchmark weakly-supervised video anomaly detection methods (RTFM, Sultani MIL, plugins).",
    )
    parser.add_argument("--version", action="version", version=f"vadbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for add in (add_list, add_run, add_grid, add_leaderboard, add_plot, add_data, add_extract, add_score, add_evaluate):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `vadbench` command (the console entry point): its exit code; warnings and errors one line each."""
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
