"""Parsers of the official annotation, split and list files: text in, plain structures out.

Pure functions (no file system access) so that they can be tested on strings and property-tested.
Every error is a `UsageError` naming the source file, the line and what was expected. Ranges are
returned 0-based and half-open ``(start, end)``, whatever the source's own convention is; each parser
says which convention it converts from.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vadbench.api.errors import UsageError

Range = tuple[int, int]
NORMAL = "Normal"


@dataclass(frozen=True)
class VideoAnnotation:
    """One test video's class ("Normal" for normal videos) and its anomalous frame ranges."""

    category: str
    ranges: tuple[Range, ...]


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered non-blank lines with surrounding whitespace (and Windows line ends) removed."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def _strip_suffix(name: str, suffix: str = ".mp4") -> str:
    return name[: -len(suffix)] if name.endswith(suffix) else name


def _put(table: dict, key: str, value: object, source: str, number: int) -> None:
    if key in table:
        raise UsageError(f"{source}: line {number}: video {key!r} appears twice")
    table[key] = value


def _int(token: str, source: str, number: int) -> int:
    try:
        return int(token)
    except ValueError:
        raise UsageError(f"{source}: line {number}: expected a frame number, got {token!r}") from None


def _pairs(values: list[int], source: str, number: int) -> tuple[Range, ...]:
    if len(values) % 2:
        raise UsageError(
            f"{source}: line {number}: expected start/end frame pairs, got {len(values)} numbers"
        )
    ranges = []
    for start, end in zip(values[::2], values[1::2], strict=True):
        if start == -1 and end == -1:
            continue
        if start < 0 or end < start:
            raise UsageError(f"{source}: line {number}: bad frame range {start} {end}")
        ranges.append((start, end))
    return tuple(ranges)


def parse_ucf_annotation(text: str, source: str) -> dict[str, VideoAnnotation]:
    """UCF-Crime ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``: ``video.mp4 Class s1 e1 s2 e2``.

    Frames are 0-based; a pair ``-1 -1`` means no event. Ranges are taken half-open ``[s, e)``, the
    convention of the public per-video ground truth (PEL4VAD's ``single_gt``, which it reproduces);
    `vadbench.data.groundtruth.with_convention` reads them inclusive instead.
    """
    table: dict[str, VideoAnnotation] = {}
    for number, line in _lines(text):
        fields = line.split()
        if len(fields) < 2:
            raise UsageError(f"{source}: line {number}: expected 'video.mp4 Class s1 e1 s2 e2', got {line!r}")
        video, category = _strip_suffix(fields[0]), fields[1]
        ranges = _pairs([_int(t, source, number) for t in fields[2:]], source, number)
        if (category == NORMAL) == bool(ranges):
            what = "a Normal video with an event" if ranges else f"a {category} video without any event"
            raise UsageError(f"{source}: line {number}: {what}")
        _put(table, video, VideoAnnotation(category, ranges), source, number)
    if not table:
        raise UsageError(f"{source}: no annotation lines")
    return table


def parse_ucf_mat(data: bytes, source: str) -> tuple[str, VideoAnnotation]:
    """One of RTFM's ``Matlab_formate/<video>.mat``: struct ``Annotation_file`` (VideoName, Anno, EventName).

    ``Anno`` holds one ``[start, end]`` row per event, ``[-1, -1]`` for normal videos; same convention as
    the text annotation.
    """
    from scipy.io import loadmat  # scipy comes with scikit-learn; only UCF's .mat files need it

    try:
        struct = loadmat(io.BytesIO(data), squeeze_me=True, struct_as_record=False)["Annotation_file"]
        name, anno, category = str(struct.VideoName), np.asarray(struct.Anno), str(struct.EventName)
    except Exception as error:  # scipy raises many types for a corrupt or foreign file
        raise UsageError(
            f"{source}: not an RTFM annotation .mat (struct Annotation_file with VideoName, Anno, "
            f"EventName): {type(error).__name__}: {error}"
        ) from None
    values = [int(v) for v in anno.astype(np.int64).ravel()]
    ranges = _pairs(values, source, 1)
    if (category == NORMAL) == bool(ranges):
        raise UsageError(f"{source}: class {category} with {len(ranges)} events")
    return _strip_suffix(name), VideoAnnotation(category, ranges)


def parse_xd_annotation(text: str, source: str) -> dict[str, tuple[Range, ...]]:
    """XD-Violence ``annotations.txt``: ``video[.mp4] s1 e1 [s2 e2 ...]``, violent test videos only.

    Frames are 0-based, half-open ``[s, e)`` (the convention that reproduces PEL4VAD's ``xd-gt``;
    `vadbench.data.groundtruth.with_convention` reads them inclusive instead).
    """
    table: dict[str, tuple[Range, ...]] = {}
    for number, line in _lines(text):
        fields = line.split()
        ranges = _pairs([_int(t, source, number) for t in fields[1:]], source, number)
        if not ranges:
            raise UsageError(f"{source}: line {number}: video {fields[0]!r} has no frame range")
        _put(table, _strip_suffix(fields[0]), ranges, source, number)
    if not table:
        raise UsageError(f"{source}: no annotation lines")
    return table


_UCSD_LINE = re.compile(r"gt_frame\s*=\s*\[([^\]]*)\]")
_UCSD_RANGE = re.compile(r"^(\d+)(?::(\d+))?$")


def parse_ucsd_m(text: str, source: str) -> list[tuple[Range, ...]]:
    """UCSD ``UCSDped*.m``: ``TestVideoFile{end+1}.gt_frame = [61:180, ...];`` one line per test clip.

    The MATLAB ranges are 1-based and inclusive; ``a:b`` becomes ``(a - 1, b)``, a lone ``a`` one frame.
    """
    clips = []
    for number, line in _lines(text):
        if "gt_frame" not in line:
            continue
        match = _UCSD_LINE.search(line)
        if match is None:
            raise UsageError(f"{source}: line {number}: expected 'gt_frame = [a:b, ...]', got {line!r}")
        ranges = []
        for part in filter(None, (p.strip() for p in match.group(1).split(","))):
            bounds = _UCSD_RANGE.match(part)
            if bounds is None:
                raise UsageError(f"{source}: line {number}: expected a 1-based range a:b, got {part!r}")
            first = int(bounds.group(1))
            last = int(bounds.group(2) or first)
            if first < 1 or last < first:
                raise UsageError(f"{source}: line {number}: bad range {part!r} (1-based, first <= last)")
            ranges.append((first - 1, last))
        clips.append(tuple(ranges))
    if not clips:
        raise UsageError(f"{source}: no 'TestVideoFile{{end+1}}.gt_frame = [...]' lines")
    return clips


def parse_id_list(text: str, source: str) -> list[str]:
    """A split file of one video id per line (ShanghaiTech ``SH_Train.txt``); refuses duplicates."""
    return _unique([(number, line) for number, line in _lines(text)], source)


def parse_ucf_train_split(text: str, source: str) -> list[str]:
    """UCF-Crime ``Anomaly_Train.txt``: ``Class/Video_x264.mp4`` per line -> video ids."""
    return _unique(
        [(n, _strip_suffix(line.replace("\\", "/").split("/")[-1])) for n, line in _lines(text)], source
    )


def _unique(numbered: list[tuple[int, str]], source: str) -> list[str]:
    seen: dict[str, None] = {}
    for number, video in numbered:
        _put(seen, video, None, source, number)
    if not seen:
        raise UsageError(f"{source}: the list is empty")
    return list(seen)


@dataclass(frozen=True)
class ListedVideo:
    """One video of a feature list file: its id and the file names of its features in crop order."""

    video_id: str
    names: tuple[str, ...]
    per_crop: bool
    line: int


_CROP_FILE = re.compile(r"^(?P<video>.+)__(?P<crop>\d+)\.npy$")


def parse_feature_list(text: str, source: str) -> list[ListedVideo]:
    """A feature list (RTFM ``ucf-i3d.list``, Wu ``rgb.list``...): one file path per line.

    Only the file name counts (the authors' absolute ``G:\\...`` or ``/home/...`` prefixes are dropped).
    ``<id>_i3d.npy`` (or any ``<id>.npy``) is one file per video; ``<id>__<crop>.npy`` lines of one video
    are consecutive and grouped into one entry, crops in list order. A video listed twice is refused.
    """
    videos: list[ListedVideo] = []
    seen: dict[str, int] = {}
    for number, line in _lines(text):
        name = re.split(r"[\\/]", line.split()[0])[-1]
        crop = _CROP_FILE.match(name)
        if crop is not None:
            video = crop.group("video")
            if videos and videos[-1].per_crop and videos[-1].video_id == video:
                last = videos[-1]
                if name in last.names:
                    raise UsageError(f"{source}: line {number}: {name} listed twice")
                videos[-1] = ListedVideo(video, (*last.names, name), True, last.line)
                continue
        elif name.endswith(".npy"):
            video = name[: -len("_i3d.npy")] if name.endswith("_i3d.npy") else name[: -len(".npy")]
        else:
            raise UsageError(f"{source}: line {number}: expected a .npy feature file, got {name!r}")
        if video in seen:
            raise UsageError(f"{source}: line {number}: video {video!r} already listed on line {seen[video]}")
        seen[video] = number
        videos.append(ListedVideo(video, (name,), crop is not None, number))
    if not videos:
        raise UsageError(f"{source}: the list is empty")
    return videos
