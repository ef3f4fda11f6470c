"""Which videos make up a split, and where their feature files are: the split's list file, else its official ids.

A split's videos come from a feature list file (the option's, else a published list pair found under the root)
or, without one, from the official split files with each id looked up under the root. Published roots often
hold several list pairs (RTFM's, Wu's, DeepMIL's), so the pair whose files are actually there is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vadbench.api.errors import UsageError
from vadbench.data.annotations import parse_feature_list
from vadbench.data.check import Problems
from vadbench.data.file_index import FileIndex, find_video, layout_of, read_text, resolve_listed

#: The order of a split's videos when no list file names them.
OFFICIAL_ORDER = "the official split files"


@dataclass(frozen=True)
class Located:
    """A video id and its feature files, found through a list or by id."""

    video_id: str
    files: tuple[Path, ...]
    per_crop: bool


@dataclass
class SplitVideos:
    """One split as resolved: the videos whose files were found, every id named, and the order's source."""

    videos: list[Located] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    order: str = "nothing"
    #: False when the list or split file could not be read: then no id is known, and cross-checks
    #: of annotations against the ids would only repeat that problem.
    complete: bool = False


def locate_split(
    index: FileIndex,
    problems: Problems,
    split: Literal["train", "test"],
    chosen_list: Path | None,
    known_lists: tuple[tuple[str, str], ...],
    official_ids: Callable[[], list[str]],
    layout: str,
) -> SplitVideos:
    """The `split`'s videos from its list file (`chosen_list`, else a published pair of `known_lists`), else from
    `official_ids` looked up by id under the root, in the `layout` ("auto": each video's own).

    A video whose files are missing is a problem and not among the videos, but stays among the ids
    (so that annotations naming it are not reported as naming an unknown video).
    """
    result = SplitVideos()
    try:
        listed = chosen_list or _published_list(index, split, known_lists)
        if listed is None:
            result.order = OFFICIAL_ORDER
            result.ids = official_ids()
            result.complete = True
            for video_id in result.ids:
                with problems.collect():
                    files, per_crop = find_video(index, video_id, layout)
                    result.videos.append(Located(video_id, files, per_crop))
            return result
        result.order = str(listed)
        entries = parse_feature_list(read_text(listed), str(listed))
    except UsageError as error:
        problems.add(str(error))
        return result
    result.ids = [entry.video_id for entry in entries]
    result.complete = True
    for entry in entries:
        with problems.collect():
            if layout not in ("auto", layout_of(entry)):
                raise UsageError(
                    f"{listed}: line {entry.line}: {entry.names[0]} is not in the {layout} layout "
                    f"that --set layout={layout} chose"
                )
            files = resolve_listed(index, entry, str(listed))
            result.videos.append(Located(entry.video_id, files, entry.per_crop))
    return result


def abnormal_first(ids: list[str], abnormal: Callable[[str], bool]) -> list[str]:
    """`ids` with the abnormal videos first, each group in its original order (the published lists' order)."""
    return [i for i in ids if abnormal(i)] + [i for i in ids if not abnormal(i)]


def _published_list(index: FileIndex, split: str, known_lists: tuple[tuple[str, str], ...]) -> Path | None:
    """The list file of `split` from a published pair under the root, None when no pair is there.

    Of several published pairs, the first whose first listed files are there (the user's features);
    when none is, the first pair anyway, so that the missing files are reported against it.
    """
    present = []
    for names in known_lists:
        pair = [index.find(name) for name in names]
        if pair[0] is not None and pair[1] is not None:
            present.append((pair[0], pair[1]))
    if not present:
        return None
    usable = [pair for pair in present if all(_first_entry_found(index, path) for path in pair)]
    return (usable or present)[0][0 if split == "train" else 1]


def _first_entry_found(index: FileIndex, path: Path) -> bool:
    """Whether the first file a list names is under the root (which tells the user's lists apart)."""
    try:
        entries = parse_feature_list(read_text(path), str(path))
    except UsageError:
        return True  # a broken list is reported when it is read
    return all(index.find(name) is not None for name in entries[0].names[:1])
