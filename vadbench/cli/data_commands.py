"""`vadbench data check` and `data cache`: the files behind a dataset, validated or their preparation cache shown.

`check` lists every problem of a data root at once (one line each, exit code 2), so that a user fixing a root sees
the whole list instead of one error per run; `cache` shows the preparation-cache entries and removes old ones.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from vadbench.api.errors import UsageError
from vadbench.cli.arguments import Parser, check_root
from vadbench.cli.plugin_loading import plugins_with_warnings

if TYPE_CHECKING:
    from vadbench.plugins.manager import Plugins


def add_data(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "data", help="inspect a dataset's data root",
        description="Commands about the files behind a dataset.",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=Parser)
    actions.required = True
    check = actions.add_parser(
        "check", help="validate everything a run would read and summarise the dataset",
        description="Read every file a run of DATASET would touch (features, lists, annotations, ground "
        "truth) and print a summary, or one line per problem (the first 20, then a count) and exit 2.",
    )
    _add_dataset_arguments(check, "e.g. --set layout=wu")
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
