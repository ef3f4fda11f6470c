"""``--metrics``: which metric columns a printed table shows.

The choices and their help come from the metric registry (`vadbench.report.metrics.METRICS`), so that a metric
registered there is a column of every table command without a change here; an unknown name is refused before
any run starts, not after hours of training.
"""

from __future__ import annotations

import argparse

from vadbench.report.metrics import METRICS


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
