"""One `vadbench extract` job: the inputs found, the weights loaded and checked, each video's features made and
written (or compared with a published file), one progress line per video.

A video that cannot be read (undecodable, an empty frame folder, frames of mixed sizes, shorter than one
snippet) is reported in one line and leaves no file; the other videos are still extracted, and the job ends
with exit code 2 so that a script notices. Finished videos are skipped when the job is repeated.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadbench import __version__
from vadbench.api.errors import UsageError
from vadbench.api.extractor import Extractor, FileLayout
from vadbench.engine.checkpoints import sha256
from vadbench.engine.runner import resolve_device
from vadbench.extract.compare import comparison_lines
from vadbench.extract.network_pass import NetworkPass
from vadbench.extract.output import FeatureFolder
from vadbench.extract.pieces import piece_loader
from vadbench.extract.sources import Source, find_sources
from vadbench.extract.weights import load_weights


@dataclass(frozen=True)
class ExtractionRequest:
    """What the user asked for: `out` None only with `compare` (which then writes nothing)."""

    weights: Path
    inputs: Sequence[str]
    out: Path | None = None
    layout: FileLayout | None = None
    device: str = "auto"
    precision: str = "fp32"
    batch: int = 4
    workers: int = 0
    compare: Path | None = None


def run_extraction(extractor: Extractor, name: str, request: ExtractionRequest,
                   say: Callable[[str], None] | None = None) -> int:
    """Extract every input of `request` with `extractor` (registered as `name`); the exit code (2: some video
    could not be read; each was reported)."""
    say = say or _to_stderr
    if request.batch < 1 or request.workers < 0:
        raise UsageError("--batch must be at least 1 and --workers at least 0")
    sources = find_sources(request.inputs)
    if request.compare is not None and len(sources) != 1:
        raise UsageError(f"--compare compares one video; got {len(sources)} inputs")
    steps = extractor.preprocessing()
    layout = request.layout or extractor.layout
    network_pass = loaded_network(extractor, name, request.weights, request.device, request.precision)
    if request.out is None:
        todo, folder = sources, None
    else:
        identity = {
            "extractor": name, "options": dataclasses.asdict(extractor.config), "layout": layout,
            "precision": request.precision, "preprocessing": dataclasses.asdict(steps),
            "weights": {"file": request.weights.name, "sha256": sha256(request.weights)},
        }
        folder = FeatureFolder(request.out, identity, layout, steps.crop_count)
        todo = [source for source in sources if not folder.finished(source.name)]
        if len(todo) < len(sources):
            say(f"extract: {len(sources) - len(todo)} of {len(sources)} videos already in {request.out}, skipped")
    failures = 0
    extracted = video_features(todo, network_pass, request.batch, request.workers)
    for number, (source, outcome, seconds) in enumerate(extracted, start=1):
        if isinstance(outcome, str):
            failures += 1
            say(f"vadbench: error: {outcome}")
            continue
        features, frames = outcome
        if folder is not None:
            folder.write(source.name, features, frames, str(source.path))
        say(f"extract [{number}/{len(todo)}] {source.name}: {frames} frames, {len(features)} snippets x "
            f"{features.shape[1]} crops x {features.shape[2]}, {seconds:.1f} s")
        if request.compare is not None:
            for line in comparison_lines(features, request.compare):
                print(line)
    if folder is not None:
        say(f"extract: {len(todo) - failures} videos written to {request.out} (vadbench {__version__}, layout "
            f"{layout}){f'; {failures} failed' if failures else ''}")
    return 2 if failures else 0


def loaded_network(extractor: Extractor, name: str, weights: Path, device: str, precision: str) -> NetworkPass:
    """The extractor's network with the user's `weights` (checked), on `device`."""
    network = extractor.build()
    load_weights(network, weights, extractor.head_keys, name)
    return NetworkPass(extractor.inference_network(network.eval()), extractor.preprocessing(), resolve_device(device),
                       precision)


def video_features(sources: Sequence[Source], network_pass: NetworkPass, batch: int,
                   workers: int) -> Iterator[tuple[Source, tuple[np.ndarray, int] | str, float]]:
    """(source, ([T, C, D] features, frame count) or the error line, seconds) per video, as each finishes
    (decoded by `workers` processes, `batch` snippets per forward pass)."""
    by_name = {source.name: source for source in sources}
    held: dict[str, list[np.ndarray]] = {}
    started: dict[str, float] = {}
    for piece in piece_loader(sources, network_pass.steps, batch, workers):
        started.setdefault(piece.video, time.perf_counter())
        parts = held.setdefault(piece.video, [])
        if piece.crops is not None:
            parts.append(network_pass.features(piece.crops))
        if not piece.last:
            continue
        del held[piece.video]
        seconds = time.perf_counter() - started.pop(piece.video)
        outcome = piece.error if piece.error is not None else (np.concatenate(parts), piece.frames)
        yield by_name[piece.video], outcome, seconds


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
