"""`vadbench score`: per-frame anomaly scores of new inputs with a run's saved weights or a checkpoint, and
`vadbench evaluate`: a checkpoint's metrics on a dataset's test set, stored as a run of given weights."""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.cli.arguments import DEFAULT_OUT, check_root
from vadbench.cli.metric_columns import add_metrics_argument
from vadbench.cli.plugin_loading import plugins_with_warnings

if TYPE_CHECKING:
    from vadbench.engine.given_weights import VideoScores
    from vadbench.engine.saved_models import SavedModel
    from vadbench.plugins.manager import Plugins

#: Suffixes of the score files `--out` writes.
SCORE_FILES = (".csv", ".npz", ".npy")


def add_score(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "score", help="per-frame anomaly scores of feature files or videos with trained or released weights",
        description="Score each INPUT with a run's saved weights (--run, from vadbench run --save-model) or a "
        "checkpoint (--method and --checkpoint: saved by vadbench, or by the method's public code). An INPUT is a "
        "feature file [T, C, D] (<video>_i3d.npy; Wu's per-crop <video>__<k>.npy files are stacked), or, with "
        "--extractor and --weights, a video, a frame folder or a list file, extracted first (vadbench extract). "
        "One score per frame, 16 per snippet as the metrics expand them; written as CSV (video,frame,score) to "
        "stdout or --out, or as .npz/.npy.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="a feature file, or a video, frame folder or "
                        "list file (with --extractor)")
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument("--run", type=Path, metavar="RUN_DIR", help="a run folder with saved weights "
                       "(vadbench run --save-model): its store's runs/<key>")
    given.add_argument("--checkpoint", type=Path, metavar="FILE", help="a weights file of --method")
    parser.add_argument("--method", metavar="NAME", help="the method of --checkpoint")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="a method option of --checkpoint's model, e.g. hidden1=512 (repeatable)")
    parser.add_argument("--extractor", metavar="NAME", help="extract video inputs with this extractor first")
    parser.add_argument("--weights", type=Path, metavar="FILE", help="the extractor's weights (see vadbench extract)")
    parser.add_argument("--extractor-set", action="append", default=[], metavar="KEY=VALUE", dest="extractor_options",
                        help="an extractor option, as vadbench extract --set (repeatable)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--out", type=Path, metavar="FILE", help="scores file: .csv, .npz (one array per video) "
                        "or .npy (one input); default CSV on stdout")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="draw each video's scores (PNG, PDF or SVG; "
                        "several videos: FILE-<video>.png); with --dataset, its ground truth shaded")
    parser.add_argument("--dataset", metavar="NAME", help="with --plot: shade the ground truth of this dataset's "
                        "test videos of the same names")
    parser.add_argument("--root", metavar="DIR", help="the data root of --dataset")
    parser.set_defaults(handler=cmd_score)


def add_evaluate(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate", help="score a dataset's test set with a checkpoint (a paper's released weights, a saved run)",
        description="Score the test set of --dataset with the weights of --checkpoint (saved by vadbench, or by "
        "the method's public code: released checkpoints load through the method's importer), through the same "
        "scoring path and metrics as a trained run, store the result under --out as a run of protocol 'given' "
        "(keyed on the file's SHA-256; tables show it apart from trained rows) and print its leaderboard.",
    )
    parser.add_argument("--method", required=True, metavar="NAME", help="the method whose weights --checkpoint holds")
    parser.add_argument("--checkpoint", required=True, type=Path, metavar="FILE", help="the weights file")
    parser.add_argument("--dataset", default="synthetic", metavar="NAME", help="dataset (default: synthetic)")
    parser.add_argument("--root", metavar="DIR", help="data root of a real dataset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="assignments",
                        help="a method or dataset option, as in vadbench run (e.g. the checkpoint's widths)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"run store folder (default: {DEFAULT_OUT})")
    parser.add_argument("--format", default="md", choices=["md", "csv", "latex"], help="leaderboard format")
    add_metrics_argument(parser, "auc,ap,ap_trapz")
    parser.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    import dataclasses

    from vadbench.engine.checkpoints import sha256
    from vadbench.engine.runner import Runner
    from vadbench.executors.driver import store_test_truth
    from vadbench.plan.protocols import GIVEN
    from vadbench.plan.specs import build_specs, with_data
    from vadbench.report.leaderboard import render
    from vadbench.report.store import RunStore

    plugins = plugins_with_warnings()
    check_root(plugins, args.dataset, args.root)
    if not args.checkpoint.is_file():
        raise UsageError(f"--checkpoint {args.checkpoint}: no such file")
    assignments = list(args.assignments) + ([f"dataset.root={args.root}"] if args.root else [])
    spec = build_specs(plugins, [args.method], args.dataset, assignments, [0], None, args.device)[0]
    spec = with_data([dataclasses.replace(spec, protocol=GIVEN, checkpoint=sha256(args.checkpoint))], plugins)[0]
    store = RunStore(args.out)
    store.ensure_writable()
    result = Runner(plugins, progress=False).evaluate_given(spec, args.checkpoint)
    store.write(result)
    store_test_truth(store, plugins, spec)
    print(f"evaluate: {args.checkpoint} ({result.config['checkpoint_format']} format) on {args.dataset}, stored in "
          f"{store.folder(spec)}", file=sys.stderr)
    print(render([result], args.format, args.metrics), end="")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from vadbench.engine.given_weights import score_features
    from vadbench.engine.runner import resolve_device

    if args.out is not None and args.out.suffix.lower() not in SCORE_FILES:
        raise UsageError(f"--out {args.out}: expected a .csv, .npz or .npy file")
    if args.plot is not None and args.plot.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UsageError(f"--plot {args.plot}: expected a .png, .pdf or .svg file")
    if (args.extractor is None) != (args.weights is None):
        raise UsageError("--extractor and --weights go together (the extractor and its weights file)")
    plugins = plugins_with_warnings()
    device = resolve_device(args.device)
    given = _run_model(plugins, args) if args.run is not None else None  # its checks come before any extraction
    names, features, sources = _inputs(plugins, args)
    given = given or _checkpoint_model(plugins, args, features)
    scores = score_features(given, names, features, device)
    if args.out is not None and args.out.suffix.lower() == ".npy" and len(names) != 1:
        raise UsageError(f"--out {args.out}: a .npy file holds one video's scores; use .npz or .csv for "
                         f"{len(names)} videos")
    _write(scores, args.out)
    if args.plot is not None:
        _plot(plugins, scores, args)
    if sources:
        print(f"score: {len(names)} videos extracted with {args.extractor} and scored", file=sys.stderr)
    return 0


def _inputs(plugins: Plugins, args: argparse.Namespace) -> tuple[list[str], list[np.ndarray], bool]:
    """(names, features (T, C, D), whether they were extracted from videos) of the INPUTs."""
    files = [Path(text) for text in args.inputs if text.lower().endswith(".npy")]
    others = [text for text in args.inputs if not text.lower().endswith(".npy")]
    if files and others:
        raise UsageError("INPUT: give feature files (.npy) or videos, not both in one command")
    if files:
        names, features = feature_inputs(files)
        return names, features, False
    if args.extractor is None:
        raise UsageError(f"INPUT {others[0]}: not a feature file (.npy); videos and frame folders need "
                         "--extractor NAME --weights FILE")
    return *_extracted(plugins, args, others), True


def feature_inputs(files: Sequence[Path]) -> tuple[list[str], list[np.ndarray]]:
    """Feature files as videos: ``<video>_i3d.npy`` [T, C, D] (or [T, D], one crop) is one video; Wu's per-crop
    ``<video>__<k>.npy`` [T, D] files of one video are stacked in crop order."""
    from vadbench.data.npy import load_npy

    groups: dict[str, dict[int, np.ndarray]] = {}
    for path in files:
        if not path.is_file():
            raise UsageError(f"INPUT {path}: no such file")
        array = load_npy(path)
        stem, crop = _crop_of(path.stem)
        if array.ndim == 2:
            array = array[:, None, :]
        if array.ndim != 3 or (crop is not None and array.shape[1] != 1):
            raise UsageError(f"INPUT {path}: expected features [T, C, D] or [T, D], got shape {array.shape}")
        if (crop if crop is not None else 0) in groups.setdefault(stem, {}):
            raise UsageError(f"INPUT {path}: a second file for video {stem!r}")
        groups[stem][crop if crop is not None else 0] = array
    names, features = [], []
    for stem, crops in groups.items():
        if sorted(crops) != list(range(len(crops))):
            raise UsageError(f"INPUT: video {stem!r} has crops {sorted(crops)}; expected 0..{len(crops) - 1}")
        lengths = {len(array) for array in crops.values()}
        if len(lengths) != 1:
            raise UsageError(f"INPUT: the crop files of video {stem!r} have different lengths {sorted(lengths)}")
        names.append(stem)
        features.append(np.concatenate([crops[k] for k in sorted(crops)], axis=1).astype(np.float32, copy=False))
    return names, features


def _crop_of(stem: str) -> tuple[str, int | None]:
    """``Abuse001_x264__3`` -> (``Abuse001_x264``, 3); ``01_0014_i3d`` -> (``01_0014``, None)."""
    video, separator, crop = stem.rpartition("__")
    if separator and crop.isdigit():
        return video, int(crop)
    return stem.removesuffix("_i3d"), None


def _extracted(plugins: Plugins, args: argparse.Namespace, inputs: list[str]) -> tuple[list[str], list[np.ndarray]]:
    """The features of video inputs, extracted in memory; a video that cannot be read stops the command."""
    from vadbench.extract.job import loaded_network, video_features
    from vadbench.extract.sources import find_sources
    from vadbench.plugins.overrides import parse_assignment

    extractor = plugins.extractors.create(args.extractor, dict(map(parse_assignment, args.extractor_options)))
    sources = find_sources(inputs)
    network_pass = loaded_network(extractor, args.extractor, args.weights, args.device, "fp32")
    names, features = [], []
    for source, outcome, _ in video_features(sources, network_pass, batch=4, workers=0):
        if isinstance(outcome, str):
            raise UsageError(outcome)
        names.append(source.name)
        features.append(outcome[0])
    return names, features


def _run_model(plugins: Plugins, args: argparse.Namespace) -> SavedModel:
    """The weights saved in --run, refused with an extractor of another feature set than they were trained on."""
    from vadbench.engine.saved_models import saved_model

    if args.method or args.assignments:
        raise UsageError("--run: the run's saved record names the method and its options; drop --method/--set")
    given = saved_model(plugins, args.run)
    trained_on = given.record.get("feature_set")
    if args.extractor is not None and trained_on in ("rtfm", "wu"):
        layout = plugins.extractors.get(args.extractor).cls.layout
        if layout != trained_on:
            raise UsageError(f"--extractor {args.extractor}: makes {layout} features, the weights of --run were "
                             f"trained on {trained_on} features")
    return given


def _checkpoint_model(plugins: Plugins, args: argparse.Namespace, features: list[np.ndarray]) -> SavedModel:
    """--method's model for the inputs' crops and dimension, with the weights of --checkpoint."""
    from vadbench.engine.given_weights import checkpoint_model
    from vadbench.plugins.overrides import parse_assignment

    if args.method is None:
        raise UsageError("--checkpoint needs --method NAME (whose weights it holds)")
    options = dict(parse_assignment(text) for text in args.assignments)
    crops, dim = features[0].shape[1], features[0].shape[2]
    return checkpoint_model(plugins, args.method, options, args.checkpoint, crops, dim)


def _write(scores: VideoScores, out: Path | None) -> None:
    """The per-frame scores as CSV (stdout or a file), or .npz / .npy, written whole or not at all."""
    from vadbench.data.atomic import atomic_write

    if out is not None and out.suffix.lower() in (".npz", ".npy"):
        arrays = {name: scores.frame_scores(i) for i, name in enumerate(scores.names)}
        if out.suffix.lower() == ".npy":
            atomic_write(out, lambda stream: np.save(stream, next(iter(arrays.values()))))
        else:
            atomic_write(out, lambda stream: np.savez(stream, **arrays))  # type: ignore[arg-type]
        return
    text = io.StringIO()
    text.write("video,frame,score\n")
    for index, name in enumerate(scores.names):
        for frame, score in enumerate(scores.frame_scores(index)):
            text.write(f"{name},{frame},{score:.6g}\n")
    if out is None:
        sys.stdout.write(text.getvalue())
    else:
        data = text.getvalue().encode()
        atomic_write(out, lambda stream: stream.write(data))


def _plot(plugins: Plugins, scores: VideoScores, args: argparse.Namespace) -> None:
    """One figure per video: its snippet scores, with the ground truth of --dataset shaded where it has the video."""
    from vadbench.report.plots import save, video_figure

    truth = _ground_truth(plugins, args) if args.dataset else {}
    for index, name in enumerate(scores.names):
        path = args.plot if len(scores.names) == 1 else args.plot.with_name(
            f"{args.plot.stem}-{name}{args.plot.suffix}")
        shaded = truth.get(name, np.zeros(len(scores.scores[index])))
        weights = args.run.name if args.run else args.method
        run = f"{weights}, ground truth of {args.dataset}" if name in truth else f"{weights}, no ground truth"
        save(video_figure(name, scores.scores[index], None, shaded[: len(scores.scores[index])], run=run), [path])


def _ground_truth(plugins: Plugins, args: argparse.Namespace) -> dict[str, Any]:
    """Each test video of --dataset by name: the share of abnormal frames of each of its snippets."""
    from vadbench.report.store import TestTruth

    check_root(plugins, args.dataset, args.root)
    options = {"root": args.root} if args.root else {}
    truth = TestTruth.of(plugins.datasets.create(args.dataset, options).load().test)
    return {video: truth.snippet_truth(index) for index, video in enumerate(truth.video_ids)}

