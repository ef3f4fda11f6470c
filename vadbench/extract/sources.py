"""The inputs of `vadbench extract`: which videos and frame folders to read, and their frames in order.

An INPUT is a video file, a folder of frame images, a folder of frame folders and videos, or a
list file naming such inputs. Every source gets the output name its feature files will carry, and
`read_frames` streams its frames as uint8 RGB arrays (never a whole video in memory: UCF-Crime videos
have 10,000+ frames).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from vadbench.api.errors import UsageError

#: Container extensions read as videos (compared in lower case).
VIDEO_EXTENSIONS = frozenset(
    {".3gp", ".avi", ".flv", ".m2ts", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".ogv", ".ts",
     ".webm", ".wmv"}
)
#: Image extensions read as frames (compared in lower case).
IMAGE_EXTENSIONS = frozenset({".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff"})
#: Extensions of list files: one input per line.
LIST_EXTENSIONS = frozenset({".list", ".txt"})

_EXPECTED = (
    f"expected a video ({' '.join(sorted(VIDEO_EXTENSIONS))}), a folder of frame images "
    f"({' '.join(sorted(IMAGE_EXTENSIONS))}), a folder of such folders and videos, or a list file (.txt .list)"
)


@dataclass(frozen=True)
class Source:
    """One clip to extract: `name` is the output name of its feature files.

    A video's name is its file name without the LAST extension (XD-Violence names hold dots:
    ``Bad.Boys.1995__#01-11-55_01-12-30_label_G-0-0.mp4`` gives ``Bad.Boys.1995__#01-11-55_01-12-30_label_G-0-0``);
    a frame folder's name is the folder's name.
    """

    name: str
    path: Path
    kind: Literal["video", "frames"]


def find_sources(inputs: Sequence[str | Path]) -> list[Source]:
    """The sources named by `inputs`, in the order given; every problem is a UsageError naming the path.

    - a video file (a known container extension, any case): one source;
    - a folder holding frame images: one source (its subfolders are not looked at);
    - a folder holding no images but subfolders that do (UCSD's ``Test/Test001/*.tif``): one source
      per such subfolder, in the natural order of their names. Every subfolder that holds images counts,
      so UCSD's ``Test/Test001_gt`` mask folders would be extracted too: name the clips one by one,
      with a shell pattern (``Test/Test[0-9][0-9][0-9]``) or in a list file to leave them out;
    - a list file (.txt, .list): one input (video or folder) per line, relative paths relative to the
      list file's folder; blank lines and lines starting with ``#`` are skipped; lists do not nest.

    Hidden files and folders (names starting with ``.``) are never sources nor frames. Two sources
    with the same output name are refused: their feature files would overwrite each other.
    """
    sources = []
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() in LIST_EXTENSIONS and path.is_file():
            sources += _listed(path)
        else:
            sources += _sources_at(path, _EXPECTED)
    _refuse_duplicates(sources)
    return sources


def read_frames(source: Source) -> Iterator[np.ndarray]:
    """The frames of `source` in order, each a uint8 ``[H, W, 3]`` RGB array, read one at a time.

    Frame folders: the images in the natural order of the numbers in their names (``2.jpg`` before
    ``10.jpg``), opened with PIL and converted to RGB (grey frames, like UCSD's .tif, become three equal
    channels), as Tushar-N's loader opens frames. Videos: every decoded frame of the first video stream,
    at the stream's own rate (no frame is dropped or repeated to reach a target rate), converted to RGB24
    by FFmpeg through PyAV. Errors (one line naming the file): a video that cannot be opened or decoded
    or has no video stream, an empty frame folder, an unreadable image, a frame whose size differs from
    the first frame's.
    """
    frames = _video_frames(source.path) if source.kind == "video" else _folder_frames(source.path)
    first: tuple[int, int] | None = None
    for origin, frame in frames:
        size = (frame.shape[1], frame.shape[0])
        if first is None:
            first = size
        elif size != first:
            raise UsageError(
                f"{origin}: frame size {size[0]}x{size[1]} differs from the first frame's {first[0]}x{first[1]}"
            )
        yield frame


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key putting the numbers in `name` in numeric order (``2.jpg`` before ``10.jpg``), ties by name.

    Splitting on digit runs alternates text and number, so two keys compare text with text and number
    with number at every position.
    """
    parts = re.split(r"([0-9]+)", name)
    return [int(part) if index % 2 else part for index, part in enumerate(parts)], name


def frame_images(folder: Path) -> list[Path]:
    """The frame images directly in `folder`, in natural order (hidden files and other files skipped)."""
    images = [path for path in folder.iterdir() if _visible(path) and path.is_file() and _is_image(path)]
    return sorted(images, key=lambda path: natural_key(path.name))


def _listed(list_file: Path) -> list[Source]:
    """The sources of the inputs named in `list_file`, one per line."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{list_file}: cannot read the list file: {error}") from None
    sources = []
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if entry and not entry.startswith("#"):
            expected = f"line {number} of {list_file}: expected a video or a folder of frame images"
            sources += _sources_at(list_file.parent / entry, expected)
    return sources


def _sources_at(path: Path, expected: str) -> list[Source]:
    """The sources of one video or folder input (`expected` explains a wrong one)."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder ({expected})")
    if path.is_dir():
        return _folder_sources(path)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return [Source(path.stem, path, "video")]
    raise UsageError(f"{path}: not a known video or list file ({expected})")


def _folder_sources(folder: Path) -> list[Source]:
    """A frame folder; else the frame folders and videos just inside `folder`; else (nothing there) an empty frame
    folder, refused when it is read, so that the other inputs are still extracted."""
    if frame_images(folder):
        return [Source(folder.resolve().name, folder, "frames")]
    inside = sorted((path for path in folder.iterdir() if _visible(path)), key=lambda path: natural_key(path.name))
    sources = [Source(path.name, path, "frames") if path.is_dir() else Source(path.stem, path, "video")
               for path in inside if (path.is_dir() and frame_images(path))
               or (path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS)]
    return sources or [Source(folder.resolve().name, folder, "frames")]


def _refuse_duplicates(sources: list[Source]) -> None:
    """Two sources with one output name would write the same feature files."""
    seen: dict[str, Source] = {}
    for source in sources:
        other = seen.setdefault(source.name, source)
        if other is not source:
            raise UsageError(f"{source.path}: its output name {source.name!r} is also that of {other.path}")


def _folder_frames(folder: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(image, RGB frame) for each frame image of `folder`."""
    try:
        from PIL import Image
    except ImportError:
        raise UsageError(f"{folder}: reading frame images needs Pillow: pip install 'vadbench[extract]'") from None
    images = frame_images(folder)
    if not images:
        raise UsageError(f"{folder}: no frame images ({' '.join(sorted(IMAGE_EXTENSIONS))})")
    for path in images:
        try:
            with Image.open(path) as image:
                frame = np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as error:
            raise UsageError(f"{path}: cannot read the image: {error}") from None
        yield str(path), frame


def _video_frames(video: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(video and frame number, RGB frame) for each decoded frame of `video`'s first video stream."""
    try:
        import av
    except ImportError:
        raise UsageError(f"{video}: video decoding needs PyAV: pip install 'vadbench[extract]'") from None
    try:
        container = av.open(str(video))
    except (av.FFmpegError, OSError) as error:
        raise UsageError(f"{video}: cannot open the video: {error}") from None
    with container:
        if not container.streams.video:
            raise UsageError(f"{video}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        decoded = 0
        try:
            for frame in container.decode(stream):
                decoded += 1
                yield f"{video} (frame {decoded})", frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, OSError) as error:
            raise UsageError(f"{video}: cannot decode the video after frame {decoded}: {error}") from None


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS
