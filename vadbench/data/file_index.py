"""Finding files under a data root by name, whatever folders the user keeps them in.

Published list files hold the authors' absolute paths (``G:\\UCF_Train_ten_crop_i3d\\...``,
``/home/yu/...``); only the file names are meaningful, so the root is indexed once by file name and
every lookup is by name. A name found twice under the root is ambiguous and reported, never guessed.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from vadbench.api.errors import UsageError
from vadbench.data.annotations import ListedVideo


class FileIndex:
    """Every file under `root` by name; hidden folders (the preparation cache among them) are skipped.

    Symbolic links are followed (features often live on another disk), but each real folder is walked
    once: a link loop, or two links to one folder, must not make every file in it look ambiguous.
    """

    def __init__(self, root: Path, skip: Path | None = None) -> None:
        self.root = root
        self._paths: dict[str, list[Path]] = defaultdict(list)
        skipped = skip.resolve() if skip is not None else None
        walked: set[str] = set()
        for folder, dirs, files in os.walk(root, followlinks=True):
            real = os.path.realpath(folder)
            if real in walked:
                dirs[:] = []
                continue
            walked.add(real)
            dirs[:] = sorted(
                d for d in dirs if not d.startswith(".") and Path(folder, d).resolve() != skipped
            )
            for name in files:
                self._paths[name].append(Path(folder, name))

    def find(self, name: str) -> Path | None:
        """The one file called `name`, None when absent; UsageError when the name is ambiguous."""
        paths = self._paths.get(name, [])
        if len(paths) > 1:
            shown = ", ".join(str(p) for p in paths[:3])
            raise UsageError(f"{name} is found {len(paths)} times under {self.root} ({shown}); keep one")
        return paths[0] if paths else None

    def require(self, name: str, why: str) -> Path:
        """Like `find`, but a missing file is an error that says what the file is for."""
        path = self.find(name)
        if path is None:
            raise UsageError(f"{name} not found under {self.root} ({why})")
        return path

    def names(self, keep: Callable[[str], bool]) -> list[str]:
        """Sorted file names that `keep` accepts."""
        return sorted(name for name in self._paths if keep(name))

    def paths(self, name: str) -> list[Path]:
        """Every file called `name` (for files that are told apart by their folder, like masks)."""
        return list(self._paths.get(name, []))


def resolve_listed(index: FileIndex, video: ListedVideo, source: str) -> tuple[Path, ...]:
    """The files of a list entry, looked up by name under the root."""
    paths = []
    for name in video.names:
        path = index.find(name)
        if path is None:
            raise UsageError(f"{source}: line {video.line}: {name} not found under {index.root}")
        paths.append(path)
    return tuple(paths)


def find_video(index: FileIndex, video_id: str, layout: str) -> tuple[tuple[Path, ...], bool]:
    """Feature files of `video_id` without a list: ``<id>_i3d.npy`` (rtfm) or ``<id>__0.npy``... (wu).

    layout "auto" takes whichever exists and refuses a video present in both layouts.
    Returns the files and whether they are one per crop.
    """
    rtfm = index.find(f"{video_id}_i3d.npy") if layout in ("auto", "rtfm") else None
    crops: list[Path] = []
    if layout in ("auto", "wu"):
        while (path := index.find(f"{video_id}__{len(crops)}.npy")) is not None:
            crops.append(path)
    if rtfm is not None and crops:
        raise UsageError(
            f"video {video_id} has features in both layouts under {index.root} ({rtfm.name} and "
            f"{crops[0].name}); choose one with --set layout=rtfm or --set layout=wu"
        )
    if rtfm is not None:
        return (rtfm,), False
    if crops:
        return tuple(crops), True
    wanted = {"auto": f"{video_id}_i3d.npy or {video_id}__0.npy", "rtfm": f"{video_id}_i3d.npy"}
    raise UsageError(
        f"no features for video {video_id}: {wanted.get(layout, f'{video_id}__0.npy')} "
        f"not found under {index.root}"
    )


def read_text(path: Path) -> str:
    """A small text file (list, split or annotation), with a UsageError naming it when unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise UsageError(f"{path}: cannot be read ({error.strerror})") from None


def layout_of(video: ListedVideo) -> str:
    """The `layout` option value that names a list entry's layout."""
    return "wu" if video.per_crop else "rtfm"
