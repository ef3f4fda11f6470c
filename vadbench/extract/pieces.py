"""The decoding side of an extraction: each video's snippets resized and cropped as the extractor declares, in
pieces of a few snippets, produced in worker processes so that decoding keeps up with the network.

A piece holds uint8 crops, four times smaller than the float input they become: the device does the scaling
and the axis order (`vadbench.extract.network_pass`). A video that cannot be read ends in a piece carrying its
one-line error instead, so that the other videos are still extracted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch.utils.data

from vadbench.api.errors import UsageError
from vadbench.api.extractor import Preprocessing
from vadbench.extract.snippets import snippets
from vadbench.extract.sources import Source, read_frames
from vadbench.extract.transforms import crops, resize_shorter, resize_to


@dataclass(frozen=True)
class Piece:
    """Consecutive snippets of one video: `crops` uint8 [B, C, L, S, S, 3] (None in a video's last piece when its
    snippets all came before, or on error); `last` ends the video, with its frame count, or its `error`."""

    video: str
    crops: np.ndarray | None
    last: bool = False
    frames: int = 0
    error: str | None = None


def snippet_crops(snippet: np.ndarray, steps: Preprocessing) -> np.ndarray:
    """One snippet [L, H, W, 3] resized and cropped: [C, L, S, S, 3] uint8."""
    if isinstance(steps.resize, int):
        resized = resize_shorter(snippet, steps.resize)
    else:
        resized = resize_to(snippet, *steps.resize)
    return crops(resized, steps.crop_size, steps.crops)


def video_pieces(source: Source, steps: Preprocessing, batch: int) -> Iterator[Piece]:
    """The pieces of one video, `batch` snippets each (the last may be shorter), then its last piece."""
    counted = _Counter(read_frames(source))
    held: list[np.ndarray] = []
    try:
        for snippet in snippets(counted, steps.snippet_rule, steps.snippet_frames, name=source.name):
            held.append(snippet_crops(snippet, steps))
            if len(held) == batch:
                yield Piece(source.name, np.stack(held))
                held = []
    except UsageError as error:
        yield Piece(source.name, None, last=True, error=str(error))
        return
    yield Piece(source.name, np.stack(held) if held else None, last=True, frames=counted.count)


class _Counter:
    """The frames of a video, passed through and counted (the record keeps each video's frame count)."""

    def __init__(self, frames: Iterator[np.ndarray]) -> None:
        self.frames = frames
        self.count = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for frame in self.frames:
            self.count += 1
            yield frame


class Pieces(torch.utils.data.IterableDataset):
    """Every video's pieces; with DataLoader workers, worker k decodes videos k, k + workers, ... in turn."""

    def __init__(self, sources: Sequence[Source], steps: Preprocessing, batch: int) -> None:
        self.sources = list(sources)
        self.steps = steps
        self.batch = batch

    def __iter__(self) -> Iterator[Piece]:
        worker = torch.utils.data.get_worker_info()
        mine = self.sources if worker is None else self.sources[worker.id::worker.num_workers]
        for source in mine:
            yield from video_pieces(source, self.steps, self.batch)


def piece_loader(sources: Sequence[Source], steps: Preprocessing, batch: int,
                 workers: int) -> torch.utils.data.DataLoader:
    """The pieces of `sources`, decoded by `workers` processes (0: in this process)."""
    return torch.utils.data.DataLoader(Pieces(sources, steps, batch), batch_size=None, num_workers=workers,
                                       collate_fn=_as_is, prefetch_factor=2 if workers else None)


def _as_is(piece: Any) -> Any:
    """No collation: a piece is already a batch (a module-level function, so that workers can pickle it)."""
    return piece
