"""The preparation cache: a benchmark's compact arrays, written once per data root and memory-mapped after.

Opening thousands of feature files (16,100 for UCF-Crime in Wu's layout) dominates a run's start; the
first use of a root writes the arrays instead, in two kinds of entry:

- a **test** entry per dataset configuration: the test features concatenated ``[sum T, C, D]`` with their
  offsets, labels, ground truth, ids and classes. Every method scores the same full-length test videos, so
  one copy serves every training reduction (on UCF-Crime at 10 x 2048 it is 5.7 GB);
- a **training** entry per configuration and training reduction (`vadbench.api.reduction`): the training
  videos reduced ``[N, C, S, D]`` with their labels and side inputs. A new reduction reads only the
  training files.

An entry's key hashes the adapter's options (and the reduction) and the absolute path, size and mtime of
every source file the part is made from, so that an edited, added or replaced file makes a new entry
rather than a stale result; the entry lists those files (``files.json``), so that `entries` can tell an
entry whose files changed since (stale) from a current one. Each entry keeps the SHA-256 of its part
(`TrainSet.digest`, `TestSet.digest`), so that the benchmark's fingerprint (`Benchmark.fingerprint`, part
of the run key) is combined from the two without reading the arrays again. Entries are built in a
temporary folder and renamed into place (atomic on one file system), so that an interrupted or concurrent
first use never leaves half an entry; a damaged entry is removed, to be rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.types import TestSet, TrainSet
from vadbench.data.atomic import umask_mode

#: Bump when the entry layout changes, so that old entries are never misread (2: the fingerprint; 3: the
#: training videos' classes; 4: their class sets; 5: one test entry shared by the training reductions).
FORMAT = 5

Allocate = Callable[[str, tuple[int, ...], Any], np.ndarray]
#: Reads array `name` of an entry (memory-mapped read-only), or None when the entry has no such array.
Read = Callable[[str], "np.ndarray | None"]


@dataclass(frozen=True)
class TestPart:
    """The test side of a benchmark: one cache entry per dataset configuration, whatever the reduction."""

    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name

    test: TestSet
    #: test videos whose audio and video differed in length (both cut to the shorter)
    trimmed: int = 0
    #: `TestSet.digest` of `test`, kept by the cache (None: not computed)
    digest: str | None = None

    def arrays(self) -> dict[str, np.ndarray | None]:
        test = self.test
        return {"test_features": test.features, "frame_labels": test.frame_labels,
                "test_offsets": test.offsets, "test_labels": test.labels}

    def record(self) -> dict[str, Any]:
        return {"test_ids": list(self.test.video_ids), "classes": list(self.test.classes),
                "snippet_frames": self.test.snippet_frames, "trimmed": self.trimmed}

    def hash(self) -> str:
        return self.test.digest()

    @classmethod
    def restore(cls, read: Read, meta: dict[str, Any]) -> TestPart:
        test = TestSet(
            features=_required(read, "test_features"),
            offsets=np.asarray(_required(read, "test_offsets")),
            labels=np.asarray(_required(read, "test_labels")),
            frame_labels=_required(read, "frame_labels"),
            video_ids=tuple(meta["test_ids"]),
            classes=tuple(meta["classes"]),
            snippet_frames=meta["snippet_frames"],
        )
        return cls(test, meta["trimmed"], meta["digest"])


@dataclass(frozen=True)
class TrainPart:
    """The training side of a benchmark as one reduction prepares it: one cache entry per reduction."""


    train: TrainSet
    #: the training videos' snippets before the reduction
    snippets: int
    #: training videos whose audio and video differed in length (both cut to the shorter)
    trimmed: int = 0
    #: `TrainSet.digest` of `train`, kept by the cache (None: not computed)
    digest: str | None = None

    def arrays(self) -> dict[str, np.ndarray | None]:
        train = self.train
        assert isinstance(train.features, np.ndarray)  # a prepared part, never a subset of one
        return {"train_features": train.features, "train_labels": train.labels, "train_lengths": train.lengths,
                "train_classes": train.classes, "train_class_sets": train.class_sets}

    def record(self) -> dict[str, Any]:
        return {"train_ids": list(self.train.video_ids), "snippets": self.snippets, "trimmed": self.trimmed}

    def hash(self) -> str:
        return self.train.digest()

    @classmethod
    def restore(cls, read: Read, meta: dict[str, Any]) -> TrainPart:
        def small(name: str) -> np.ndarray | None:
            array = read(name)
            return None if array is None else np.asarray(array)

        train = TrainSet(
            _required(read, "train_features"), np.asarray(_required(read, "train_labels")),
            tuple(meta["train_ids"]), small("train_lengths"), small("train_classes"), small("train_class_sets"),
        )
        return cls(train, meta["snippets"], meta["trimmed"], meta["digest"])


class Part(Protocol):
    """What an entry holds: `TestPart` or `TrainPart`."""

    def arrays(self) -> dict[str, np.ndarray | None]: ...

    def record(self) -> dict[str, Any]: ...

    def hash(self) -> str: ...


P = TypeVar("P", TestPart, TrainPart)


@dataclass(frozen=True)
class Slot:
    """Where one part of one dataset configuration is cached, and the source files it is made from."""

    folder: Path
    #: the dataset's name
    name: str
    #: "test", or "train-<reduction>" (`Reduction.key`)
    part: str
    #: (absolute path, size, mtime in ns) of each source file
    sources: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class CacheEntry:
    """One folder of the cache as `PrepCache.entries` lists it."""

    folder: Path
    #: "test" or "train-<reduction>" (`Reduction.key`); "test+train" for an entry of an earlier format
    part: str
    #: bytes held
    size: int
    #: when it was last loaded (or written), seconds since the epoch
    used: float
    #: "current"; "stale" (a file it was made from changed or is gone: no configuration of the files now
    #: there uses it); "old format" (written by an earlier vadbench, never read again); "unfinished" (a
    #: preparation under way, or one that was killed)
    state: str

    def remove(self) -> None:
        try:
            shutil.rmtree(self.folder)
        except OSError as error:
            raise UsageError(f"{error.filename or self.folder}: cannot remove it ({error.strerror})") from None


def _sources(files: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """Each file's absolute path, size and mtime (absolute: a root given as a relative path, or with a
    trailing slash, finds the same entry)."""
    stats = []
    for path in files:
        stat = _stat(path)
        stats.append((str(path.absolute()), stat.st_size, stat.st_mtime_ns))
    return tuple(stats)


def _stat(path: Path) -> os.stat_result:
    """The file's stat, or a UsageError naming it (gone since the root was indexed, or a broken link)."""
    try:
        return path.stat()
    except OSError as error:
        if path.is_symlink():
            raise UsageError(f"{path}: a symbolic link to {os.readlink(path)}, which cannot be read") from None
        raise UsageError(f"{path}: cannot be read ({error.strerror})") from None


class PrepCache:
    """Entries ``<directory>/<dataset>-<part>-<key>/`` holding ``.npy`` arrays, ``files.json`` and ``meta.json``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def slot(self, name: str, part: str, identity: dict[str, Any], files: Iterable[Path]) -> Slot:
        """The slot of dataset `name`'s `part` under the adapter `identity` (name and options), made from `files`."""
        stats = _sources(files)
        digest = hashlib.sha256(
            json.dumps({"format": FORMAT, "part": part, **identity}, sort_keys=True, default=str).encode()
        )
        for path, size, mtime in stats:
            digest.update(f"\n{path}\t{size}\t{mtime}".encode())
        return Slot(self.directory / f"{name}-{part}-{digest.hexdigest()[:20]}", name, part, stats)

    def load(self, slot: Slot, kind: type[P]) -> P | None:
        """The cached part (arrays memory-mapped read-only), or None when there is no usable entry.

        A damaged entry (a file deleted or cut by hand) is removed, so that it is rebuilt. Loading marks the
        entry used (its meta.json's mtime), for `entries`.
        """
        meta_file = slot.folder / "meta.json"
        if not meta_file.exists():
            if slot.folder.exists():  # published entries always have one: this one was damaged
                shutil.rmtree(slot.folder, ignore_errors=True)
            return None
        try:
            meta = json.loads(meta_file.read_text())
            part = kind.restore(lambda name: _read_array(slot.folder, name), meta)
        except (OSError, ValueError, KeyError, TypeError):
            shutil.rmtree(slot.folder, ignore_errors=True)
            return None
        with contextlib.suppress(OSError):  # a read-only cache is still used, just not marked
            os.utime(meta_file)
        return part

    def write(self, slot: Slot, build: Callable[[Allocate], P | None]) -> P | None:
        """Run `build` with an allocator of arrays inside a new entry, then publish the entry atomically.

        `build` fills the arrays it allocates and returns the part, or None when it found problems (then
        nothing is published). Returns the part loaded back from the published entry.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{slot.folder.name}-", dir=self.directory))
        try:
            staging.chmod(umask_mode(0o777))  # the published entry gets the mode mkdir would give

            def allocate(field: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
                return np.lib.format.open_memmap(staging / f"{field}.npy", mode="w+", dtype=dtype, shape=shape)

            part = build(allocate)
            if part is None:
                return None
            _save(staging, slot, part)
            try:
                os.replace(staging, slot.folder)
            except OSError:
                if not (slot.folder / "meta.json").exists():
                    raise  # not a concurrent writer that finished first: a real failure
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.load(slot, type(part))

    def entries(self, name: str) -> list[CacheEntry]:
        """Every folder of dataset `name` in the cache, by name."""
        if not self.directory.is_dir():
            return []
        found = []
        for folder in sorted(self.directory.iterdir()):
            with contextlib.suppress(FileNotFoundError):  # gone meanwhile (a staging folder renamed into place)
                if folder.is_dir() and (entry := _entry(folder, name)) is not None:
                    found.append(entry)
        return found


def _save(staging: Path, slot: Slot, part: Part) -> None:
    """Write the small arrays, files.json and meta.json; the big arrays are already memmaps inside `staging`."""
    for field, value in part.arrays().items():
        if (staging / f"{field}.npy").exists():  # allocated in the entry and filled in place
            if isinstance(value, np.memmap):
                value.flush()
        elif value is not None:
            np.save(staging / f"{field}.npy", value)
    (staging / "files.json").write_text(json.dumps(slot.sources))
    meta = {"format": FORMAT, "name": slot.name, "part": slot.part, "digest": part.hash(), **part.record()}
    # meta.json last: an entry is complete exactly when it has one.
    (staging / "meta.json").write_text(json.dumps(meta))


def _read_array(folder: Path, name: str) -> np.ndarray | None:
    path = folder / f"{name}.npy"
    return np.load(path, mmap_mode="r", allow_pickle=False) if path.exists() else None


def _required(read: Read, name: str) -> np.ndarray:
    array = read(name)
    if array is None:
        raise KeyError(name)  # a damaged entry
    return array


def _entry(folder: Path, name: str) -> CacheEntry | None:
    """`folder` as an entry of dataset `name`, or None when it belongs to another dataset (or to nothing)."""
    if folder.name.startswith("."):
        # a staging folder: ".<dataset>-<part>-<key>-<random>" (earlier formats: ".<dataset>-<key>-<random>")
        ours = re.fullmatch(rf"\.{re.escape(name)}-(test|train-.+)?-?[0-9a-f]{{20}}-\w+", folder.name)
        return _described(folder, ours.group(1) or "test+train", "unfinished") if ours else None
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("name") != name:
        return None
    if meta.get("format") != FORMAT:
        return _described(folder, "test+train", "old format")
    return _described(folder, str(meta.get("part")), "current" if _unchanged(folder / "files.json") else "stale")


def _described(folder: Path, part: str, state: str) -> CacheEntry:
    """The entry at `folder`: its bytes, and when it was last used (its meta.json's mtime, else the folder's)."""
    size = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):  # removed meanwhile (a finished preparation renames its folder)
            size += path.stat().st_size if path.is_file() else 0
    marker = folder / "meta.json"
    return CacheEntry(folder, part, size, (marker if marker.exists() else folder).stat().st_mtime, state)


def _unchanged(listing: Path) -> bool:
    """Whether every file `listing` (an entry's files.json) names still has its size and mtime."""
    try:
        recorded = json.loads(listing.read_text())
    except (OSError, ValueError):
        return False
    for path, size, mtime in recorded:
        try:
            stat = os.stat(path)
        except OSError:
            return False
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
            return False
    return True


def size_text(size: int) -> str:
    """`size` bytes for people, in decimal units (e.g. "5.7 GB")."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def age(seconds_since: float, now: float) -> str:
    """How long before `now` `seconds_since` was, in its largest whole unit (e.g. "3 days ago")."""
    elapsed = max(0.0, now - seconds_since)
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if elapsed >= length:
            count = int(elapsed // length)
            return f"{count} {unit}{'s' * (count > 1)} ago"
    return "just now"


def holding(entries: list[CacheEntry]) -> str:
    """What `entries` hold, in a few words: "6.1 GB in 3 entries (0.4 GB in 1 entry stale)"."""
    stale = [entry for entry in entries if entry.state != "current"]
    return amount(entries) + (f" ({amount(stale)} stale)" if stale else "")


def amount(entries: list[CacheEntry]) -> str:
    """The bytes and number of `entries`: "6.1 GB in 3 entries" ("nothing" for none)."""
    if not entries:
        return "nothing"
    size = size_text(sum(entry.size for entry in entries))
    return f"{size} in {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
