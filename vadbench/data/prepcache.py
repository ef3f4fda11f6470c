"""The preparation cache: a benchmark's compact arrays, written once per data root and memory-mapped after.

Opening thousands of feature files (16,100 for UCF-Crime in Wu's layout) dominates a run's start; the
first use of a root writes one entry instead: training videos already pooled ``[N, C, 32, D]``, test
features concatenated ``[sum T, C, D]`` with offsets, labels and ground truth. An entry's key hashes the
adapter's options and the size and mtime of every source file, so an edited, added or replaced file
makes a new entry rather than a stale result. An entry also keeps the benchmark's content fingerprint
(`Benchmark.fingerprint`, part of the run key), so that only its first use reads every byte to hash it.
Entries are built in a temporary folder and renamed into
place (atomic on one file system), so an interrupted or concurrent first use never leaves half an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.types import Benchmark, TestSet, TrainSet
from vadbench.report.store import umask_mode

#: Bump when the entry layout changes, so that old entries are never misread (2: the fingerprint; 3: the
#: training videos' classes; 4: their class sets).
FORMAT = 4

Allocate = Callable[[str, tuple[int, ...], Any], np.ndarray]


def cache_key(identity: dict[str, Any], files: Iterable[Path]) -> str:
    """Hash of the adapter identity (name and options) and each source file's absolute path, size and mtime
    (absolute: a root given as a relative path, or with a trailing slash, finds the same entry)."""
    digest = hashlib.sha256(json.dumps({"format": FORMAT, **identity}, sort_keys=True, default=str).encode())
    for path in files:
        stat = _stat(path)
        digest.update(f"\n{path.absolute()}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _stat(path: Path) -> os.stat_result:
    """The file's stat, or a UsageError naming it (gone since the root was indexed, or a broken link)."""
    try:
        return path.stat()
    except OSError as error:
        if path.is_symlink():
            raise UsageError(f"{path}: a symbolic link to {os.readlink(path)}, which cannot be read") from None
        raise UsageError(f"{path}: cannot be read ({error.strerror})") from None


class PrepCache:
    """Entries ``<directory>/<dataset>-<key>/`` holding ``.npy`` arrays and a ``meta.json``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def entry(self, name: str, key: str) -> Path:
        return self.directory / f"{name}-{key}"

    def load(self, name: str, key: str) -> Benchmark | None:
        """The cached benchmark (arrays memory-mapped read-only), or None when there is no usable entry.

        A damaged entry (a file deleted or cut by hand) is removed, so that it is rebuilt.
        """
        folder = self.entry(name, key)
        if not (folder / "meta.json").exists():
            return None
        try:
            return self._read(folder)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(folder, ignore_errors=True)
            return None

    @staticmethod
    def _read(folder: Path) -> Benchmark:
        meta = json.loads((folder / "meta.json").read_text())

        def array(field: str) -> np.ndarray:
            return np.load(folder / f"{field}.npy", mmap_mode="r", allow_pickle=False)

        def optional(field: str) -> np.ndarray | None:
            return np.asarray(array(field)) if (folder / f"{field}.npy").exists() else None

        train = TrainSet(
            array("train_features"), np.asarray(array("train_labels")), tuple(meta["train_ids"]),
            optional("train_lengths"), optional("train_classes"), optional("train_class_sets"),
        )
        test = TestSet(
            features=array("test_features"),
            offsets=np.asarray(array("test_offsets")),
            labels=np.asarray(array("test_labels")),
            frame_labels=array("frame_labels"),
            video_ids=tuple(meta["test_ids"]),
            classes=tuple(meta["classes"]),
        )
        return Benchmark(
            meta["name"],
            train,
            test,
            meta["primary_metric"],
            {**meta["meta"], "cache": str(folder), "fingerprint": meta["fingerprint"]},
            class_names=tuple(meta["class_names"]),
        )

    def write(self, name: str, key: str, build: Callable[[Allocate], Benchmark | None]) -> Benchmark | None:
        """Run `build` with an allocator of arrays inside a new entry, then publish the entry atomically.

        `build` fills the arrays it allocates and returns the benchmark, or None when it found problems
        (then nothing is published). Returns the benchmark loaded back from the published entry.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-{key}-", dir=self.directory))
        try:
            staging.chmod(umask_mode(0o777))  # the published entry gets the mode mkdir would give

            def allocate(field: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
                return np.lib.format.open_memmap(
                    staging / f"{field}.npy", mode="w+", dtype=dtype, shape=shape
                )

            benchmark = build(allocate)
            if benchmark is None:
                return None
            self._save(staging, benchmark)
            try:
                os.replace(staging, self.entry(name, key))
            except OSError:
                if not (self.entry(name, key) / "meta.json").exists():
                    raise  # not a concurrent writer that finished first: a real failure
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.load(name, key)

    @staticmethod
    def _save(staging: Path, benchmark: Benchmark) -> None:
        """Write the small arrays and meta.json; the big arrays are already memmaps inside `staging`."""
        train, test = benchmark.train, benchmark.test
        for field, value in (
            ("train_features", train.features),
            ("test_features", test.features),
            ("frame_labels", test.frame_labels),
        ):
            if (staging / f"{field}.npy").exists():  # allocated in the entry and filled in place
                if isinstance(value, np.memmap):
                    value.flush()
            else:
                np.save(staging / f"{field}.npy", value)
        np.save(staging / "train_labels.npy", train.labels)
        for field, optional in (
            ("train_lengths", train.lengths), ("train_classes", train.classes), ("train_class_sets", train.class_sets)
        ):
            if optional is not None:
                np.save(staging / f"{field}.npy", optional)
        np.save(staging / "test_labels.npy", test.labels)
        np.save(staging / "test_offsets.npy", test.offsets)
        meta = {
            "name": benchmark.name,
            "primary_metric": benchmark.primary_metric,
            "meta": benchmark.meta,
            "train_ids": list(train.video_ids),
            "test_ids": list(test.video_ids),
            "classes": list(test.classes),
            "class_names": list(benchmark.class_names),
            "fingerprint": benchmark.fingerprint(),
        }
        # meta.json last: an entry is complete exactly when it has one.
        (staging / "meta.json").write_text(json.dumps(meta, default=str))
