"""The output folder of an extraction: the feature files under the names the dataset adapters read, and one
record of how they were made.

Layouts: ``rtfm`` writes ``<video>_i3d.npy`` [T, C, D]; ``wu`` writes ``<video>__<k>.npy`` [T, D] per crop k.
Every file is written under a temporary name and renamed into place, so an interrupted run leaves no half
file. The record, ``vadbench-extract.json``, names the extractor, its options, the preprocessing, the
weights file and its SHA-256, and each finished video's frame and snippet counts; a video is finished when
the record lists it and its files are there, which is what a re-run skips. One folder holds one extraction:
a run with other weights or options is refused rather than mixing two kinds of features in one root.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.extractor import FileLayout
from vadbench.data.atomic import atomic_write

RECORD = "vadbench-extract.json"


def feature_files(video: str, layout: FileLayout, crops: int) -> list[str]:
    """The file names of one video's features in `layout`."""
    return [f"{video}_i3d.npy"] if layout == "rtfm" else [f"{video}__{crop}.npy" for crop in range(crops)]


class FeatureFolder:
    """An output folder bound to one extraction (`identity`: what must match for features to be comparable)."""

    def __init__(self, folder: Path, identity: Mapping[str, Any], layout: FileLayout, crops: int) -> None:
        self.folder = folder
        self.layout = layout
        self.crops = crops
        self.record_path = folder / RECORD
        self.record = self._open(dict(identity))

    def _open(self, identity: dict[str, Any]) -> dict[str, Any]:
        if self.folder.exists() and not self.folder.is_dir():
            raise UsageError(f"--out {self.folder}: not a folder")
        if not self.record_path.exists():
            return {**identity, "videos": {}}
        try:
            record = json.loads(self.record_path.read_text())
        except (OSError, ValueError) as error:
            raise UsageError(f"{self.record_path}: unreadable extraction record ({error})") from None
        differs = _differences(record, identity)
        if differs:
            key, then, now = differs[0]
            raise UsageError(f"--out {self.folder} holds features of another extraction ({key} {then!r}, now {now!r}); "
                             "choose another --out")
        return record

    def finished(self, video: str) -> bool:
        """Whether `video` was extracted into this folder (recorded, and every file of it there)."""
        return video in self.record["videos"] and all(
            (self.folder / name).is_file() for name in feature_files(video, self.layout, self.crops))

    def write(self, video: str, features: np.ndarray, frames: int, source: str) -> None:
        """Write one video's features [T, C, D] (each file atomically), then record it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        names = feature_files(video, self.layout, self.crops)
        arrays = [features] if self.layout == "rtfm" else [features[:, crop] for crop in range(self.crops)]
        for name, array in zip(names, arrays, strict=True):
            atomic_write(self.folder / name, functools.partial(_save, array))
        self.record["videos"][video] = {"frames": frames, "snippets": int(features.shape[0]), "source": source}
        text = json.dumps(self.record, indent=1, sort_keys=True).encode()
        atomic_write(self.record_path, lambda stream: stream.write(text))



def _save(array: np.ndarray, stream: IO[bytes]) -> None:
    np.save(stream, np.ascontiguousarray(array))


def _differences(record: Mapping[str, Any], identity: Mapping[str, Any],
                 prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, recorded value, new value) wherever `identity` differs from `record`."""
    found = []
    for key, value in identity.items():
        then = record.get(key)
        if isinstance(value, Mapping) and isinstance(then, Mapping):
            found += _differences(then, value, f"{prefix}{key}.")
        elif then != value:
            found.append((f"{prefix}{key}", then, value))
    return found
