"""Reading a memory-mapped array without keeping it in the process's memory.

The arrays the contracts exchange (`TrainSet.features`, `TestSet.features`, `Rows` of them) are often
read-only memory maps of ``.npy`` files: the preparation cache (`vadbench.data.prepcache`) hands its big
arrays over this way, and everything that reads them (hashing, batching, scoring) reads them through this
module. Every page of a map that a process has touched counts in its resident memory
(RSS, ``ru_maxrss``) for as long as it stays mapped, even though it is a clean page of a file that the
kernel may drop: gathering training batches from a map over many steps, or scoring every test video,
would make the whole array resident (26 GB for PEL4VAD's 200-snippet crops of UCF-Crime). `release`
unmaps the pages a process has touched (``madvise(MADV_DONTNEED)``): the bytes stay in the OS page cache,
shared by every process that maps the file (the workers of a local grid), and the next read of a page
maps it again from there, with the same bytes. Code that reads a map a piece at a time releases it after
each piece, and so holds one piece at a time, not the array.

For a shared map of a file being written (a cache entry being filled), releasing keeps the written
bytes: they are in the page cache, which writes them back to the file.
"""

from __future__ import annotations

import mmap
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # api/types hashes arrays with `release`: imported for the annotations only
    from vadbench.api.types import Rows


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
