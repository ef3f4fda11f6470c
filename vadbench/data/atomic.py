"""Files that readers see whole or not at all: written under a temporary name in the same folder and renamed
into place (atomic on one file system), with the mode that the process's umask gives.

The run store writes its files this way and the preparation cache its entries' folders, so that an
interrupted or concurrent writer never leaves half a file, and a store or cache shared by a group stays
readable by the group.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write via a temporary file in the same folder and rename it into place (with the umask's mode)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, umask_mode(0o666))
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def umask_mode(mode: int) -> int:
    """`mode` (0o666 for a file, 0o777 for a folder) less the process umask: what `open` or `mkdir` give.

    `tempfile` makes private files and folders (0600, 0700), so whatever is renamed into place from one
    needs this mode, or a store or cache shared by a group (umask 002) could be read by its owner only.
    """
    umask = os.umask(0o077)  # reading the umask means setting it; 0o077 is the safe value meanwhile
    os.umask(umask)
    return mode & ~umask
