"""`vadbench extract`: videos or frame folders to the feature files that `vadbench data check` and `vadbench run
--root` read, or one video's features compared with a published file (`--compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vadbench.api.errors import UsageError
from vadbench.api.types import PRECISIONS
from vadbench.cli.plugin_loading import plugins_with_warnings


def add_extract(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "extract", help="extract snippet features from videos or frame folders (needs vadbench[extract])",
        description="Decode each INPUT (a video file, a folder of frame images in the natural order of their "
        "names, a folder of such folders, or a list file of inputs), cut it into snippets, crop and scale them as "
        "the extractor's published pipeline did and write each video's features into --out under the names the "
        "dataset adapters read (<video>_i3d.npy [T, C, D], or <video>__<crop>.npy [T, D] with --layout wu), with "
        "a record of the extractor, its options and the weights' SHA-256 (vadbench-extract.json). Finished videos "
        "are skipped when the command is repeated; a video that cannot be read is reported in one line and the "
        "others are still extracted (exit code 2). Nothing is downloaded: --weights is the public checkpoint file "
        "you obtained (see docs/extraction.md).",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="a video, a frame folder, or a list file")
    parser.add_argument("--extractor", required=True, metavar="NAME", help="a registered extractor, e.g. i3d-r50")
    parser.add_argument("--weights", required=True, type=Path, metavar="FILE",
                        help="the extractor's public checkpoint (loaded with weights_only=True)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="folder of the feature files (required unless "
                        "--compare)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="set an extractor option, e.g. non_local=true (repeatable; `vadbench list` and "
                        "docs/extraction.md name them)")
    parser.add_argument("--layout", choices=("rtfm", "wu"),
                        help="rtfm: one <video>_i3d.npy [T, C, D]; wu: one <video>__<crop>.npy [T, D] per crop "
                        "(default: the layout the extractor's features were published in)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS,
                        help="fp32 (default) or bf16 autocast (faster on a GPU; features change slightly, and the "
                        "record says so)")
    parser.add_argument("--batch", type=int, default=4, metavar="N",
                        help="snippets per forward pass, all crops of each (default 4; 32 or more on a GPU)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="processes decoding and cropping videos in parallel with the network (default 0: "
                        "in this process)")
    parser.add_argument("--compare", type=Path, metavar="FILE",
                        help="compare the one INPUT's features with this published feature file of the same video "
                        "(per-crop cosine and relative difference, snippet counts)")
    parser.set_defaults(handler=cmd_extract)


def cmd_extract(args: argparse.Namespace) -> int:
    from vadbench.extract.job import ExtractionRequest, run_extraction
    from vadbench.plugins.overrides import parse_assignment

    if args.out is None and args.compare is None:
        raise UsageError("--out DIR is required (unless --compare FILE)")
    options = {}
    for text in args.assignments:
        key, value = parse_assignment(text)
        options[key.removeprefix(f"{args.extractor}.")] = value
    plugins = plugins_with_warnings()
    extractor = plugins.extractors.create(args.extractor, options)
    request = ExtractionRequest(
        weights=args.weights, inputs=args.inputs, out=args.out, layout=args.layout, device=args.device,
        precision=args.precision, batch=args.batch, workers=args.workers, compare=args.compare,
    )
    return run_extraction(extractor, args.extractor, request)
