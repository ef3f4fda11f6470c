"""Official annotation, split and mask files that ship with an adapter, for data roots that lack them.

A user has the features; the small files that label and split them are scattered over several
repositories. An adapter therefore keeps them as package data in an ``official/`` folder beside its
module, with ``SOURCES.tsv`` saying where each file comes from (repository, commit, path, sha256 of the
original). A file of the same name under the data root always replaces the bundled one, so a user's own
or corrected copy wins. Most files are kept byte for byte; many small 0/1 masks are packed into one
run-length file (`pack_masks`), and list files of absolute paths are reduced to their video ids.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.data.file_index import FileIndex

#: The folder beside an adapter's module that holds its bundled files.
FOLDER = "official"
#: The provenance table in that folder: one row per original file (a packed file has several).
SOURCES = "SOURCES.tsv"
SOURCE_FIELDS = ("bundled_file", "repository", "commit", "path", "sha256", "kept_as")


@dataclass(frozen=True)
class Bundle:
    """The bundled official files of one adapter (`folder` None: the adapter bundles nothing)."""

    folder: Path | None

    @classmethod
    def beside(cls, module_file: str) -> Bundle:
        """The ``official/`` folder next to the module `module_file` (pass ``__file__``)."""
        return cls(Path(module_file).with_name(FOLDER))

    def bundled(self, name: str) -> Path | None:
        """The bundled file called `name`, None when this adapter does not ship it."""
        if self.folder is None or name == SOURCES:
            return None
        path = self.folder / name
        return path if path.is_file() else None

    def find(self, index: FileIndex, name: str) -> Path | None:
        """The root's file called `name`, else the bundled copy, else None."""
        return index.find(name) or self.bundled(name)

    def require(self, index: FileIndex, name: str, why: str) -> Path:
        """Like `find`, but a file that is nowhere is an error saying what it is for."""
        path = self.find(index, name)
        if path is None:
            raise UsageError(f"{name} not found under {index.root}, and vadbench does not ship it ({why})")
        return path

    def holds(self, path: Path) -> bool:
        """Whether `path` is one of the bundled files (not a file of the user's root)."""
        return self.folder is not None and path.parent == self.folder


@dataclass(frozen=True)
class Source:
    """One original file behind a bundled file: where it was taken from and how it is kept."""

    bundled_file: str
    repository: str
    commit: str
    path: str
    sha256: str
    kept_as: str


def read_sources(folder: Path) -> list[Source]:
    """The rows of `folder`'s ``SOURCES.tsv`` (header line first, tab-separated)."""
    with open(folder / SOURCES, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [Source(**{name: row[name] for name in SOURCE_FIELDS}) for row in rows]


def write_sources(folder: Path, sources: list[Source]) -> None:
    """Write `sources` as `folder`'s ``SOURCES.tsv``."""
    with open(folder / SOURCES, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(SOURCE_FIELDS)
        writer.writerows([getattr(source, name) for name in SOURCE_FIELDS] for source in sources)


def pack_masks(masks: dict[str, np.ndarray]) -> str:
    """0/1 frame masks as JSON text: ``{id: [frames, start1, end1, start2, end2, ...]}``, runs of 1s half-open."""
    packed = {}
    for video, mask in masks.items():
        values = np.asarray(mask).ravel()
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"mask {video}: values other than 0 and 1")
        edges = np.flatnonzero(np.diff(np.concatenate([[0], values.astype(np.int8), [0]])))
        packed[video] = [len(values), *(int(edge) for edge in edges)]
    return json.dumps(packed, separators=(",", ":"), sort_keys=True) + "\n"


def unpack_masks(text: str, source: str) -> dict[str, np.ndarray]:
    """The uint8 masks of `pack_masks` text; a malformed entry is a UsageError naming `source`."""
    try:
        packed = json.loads(text)
        masks = {}
        for video, (frames, *edges) in packed.items():
            if len(edges) % 2 or sorted(edges) != edges or any(not 0 <= e <= frames for e in edges):
                raise ValueError(f"{video}: runs {edges} do not fit {frames} frames")
            mask = np.zeros(frames, dtype=np.uint8)
            for start, end in zip(edges[::2], edges[1::2], strict=True):
                mask[start:end] = 1
            masks[video] = mask
    except (ValueError, TypeError, AttributeError) as error:
        raise UsageError(f"{source}: expected packed masks {{id: [frames, start, end, ...]}}: {error}") from None
    return masks
