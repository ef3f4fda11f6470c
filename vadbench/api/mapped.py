"""Reading a memory-mapped array without keeping it in the process's memory, and `Rows` of one.

The arrays the contracts exchange (`TrainSet.features`, `TestSet.features`) are often read-only memory
maps of ``.npy`` files: the preparation cache (`vadbench.data.prepcache`) hands its big arrays over this
way, and what reads them (hashing, batching, scoring) reads them through this module; a subset of such
an array is `Rows` of it, read only where asked. Every page of a map that a process has touched counts in
its resident memory (RSS, ``ru_maxrss``) for as long as it stays mapped, even though it is a clean page of
a file that the kernel may drop: gathering training batches from a map over many steps, or scoring every
test video, would make the whole array resident (26 GB for PEL4VAD's 200-snippet crops of UCF-Crime).
`release` unmaps the pages a process has touched (``madvise(MADV_DONTNEED)``): the bytes stay in the OS
page cache, shared by every process that maps the file (the workers of a local grid), and the next read
of a page maps it again from there, with the same bytes. Code that reads a map a piece at a time releases
it after each piece, and so holds one piece at a time, not the array.

For a shared map of a file being written (a cache entry being filled), releasing keeps the written
bytes: they are in the page cache, which writes them back to the file.
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np


class Rows:
    """Rows `index` of `base` (an array of N rows, typically a read-only memory map), read only where asked.

    `TrainSet.subset` hands its videos over this way instead of copying them: a held-out split (`val`) or an
    abnormal subset of a memory-mapped training set (26 GB of PEL4VAD's 200-snippet UCF-Crime crops) costs
    nothing until a batch reads its rows. It offers what the engine does with a training set's features:
    the shape, a row or rows (an int, a slice or an index array, optionally followed by indices into the
    rows), ``reshape(-1, *rest)`` that splits every row into rows of `rest` (crops as samples), and
    ``numpy.asarray`` (a copy, for small sets).
    """

    def __init__(self, base: np.ndarray, index: np.ndarray) -> None:
        self.base = base
        self.index = np.asarray(index, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.base.shape[1:])

    @property
    def ndim(self) -> int:
        return self.base.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, (int, np.integer)):
            return self.base[int(self.index[first])][rest]  # a view of the one row
        return self.base[self.index[first]][(slice(None), *rest)]  # a copy of the rows asked for

    def reshape(self, *shape: int) -> Rows:
        if shape[0] != -1:
            raise ValueError(f"Rows.reshape splits rows: the first size must be -1, got {shape}")
        split = int(np.prod(self.base.shape[1:], dtype=np.int64)) // int(np.prod(shape[1:], dtype=np.int64))
        base = self.base.reshape(-1, *shape[1:])
        return Rows(base, (self.index[:, None] * split + np.arange(split)).reshape(-1))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return np.asarray(self.base[self.index], dtype=dtype)


def mapping_of(array: np.ndarray | Rows) -> mmap.mmap | None:
    """The memory map under `array` (a ``numpy.memmap``, any view of one, or `Rows` of one), or None for
    ordinary memory."""
    base: object = array if isinstance(array, np.ndarray) else array.base  # `Rows`: the array they read
    while isinstance(base, np.ndarray):
        base = base.base
    return base if isinstance(base, mmap.mmap) else None


def release(array: np.ndarray | Rows) -> None:
    """Unmap from this process every page of the shared memory map under `array` (nothing for an array in
    ordinary memory, or a copy-on-write map, whose written pages exist nowhere else).

    The whole map is released, not only `array`'s part: it is one call whose cost grows with the pages
    touched since the last release, so callers release after each piece they read or write.
    """
    mapping = mapping_of(array)
    if mapping is None or getattr(array, "mode", "r") == "c" or len(mapping) == 0 or not hasattr(mmap, "MADV_DONTNEED"):
        return  # (Windows has no madvise: there the pages stay mapped)
    mapping.madvise(mmap.MADV_DONTNEED)
