"""Safe reading of feature files in the published layouts, with errors that name the file.

Public WSVAD features come as ``.npy`` files in two layouts: RTFM's one file per video ``[T, C, D]``
(``<id>_i3d.npy``) and Wu et al.'s one file per crop ``[T, D]`` (``<id>__<crop>.npy``); XD-Violence adds
one VGGish audio file per video ``[T, 128]`` (``<id>__vggish.npy``). Files are never unpickled
(``allow_pickle=False``): the header is read first, so a pickled, object, truncated or non-float file is
refused with a message before any data is touched, and headers alone give every video's shape cheaply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadbench.api.errors import UsageError


@dataclass(frozen=True)
class VideoFiles:
    """Where one video's features are: one ``[T, C, D]`` file, or one ``[T, D]`` file per crop.

    audio: an optional ``[T, A]`` file concatenated to every crop (XD-Violence VGGish). category: the video's
    class; other_categories: the further classes it shows, in order (ShanghaiTech's second action).
    """

    video_id: str
    label: int
    files: tuple[Path, ...]
    per_crop: bool = False
    audio: Path | None = None
    category: str = "Normal"
    other_categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class VideoShape:
    """Shape of a video after layout assembly; `trimmed` is how many snippets an audio mismatch cut."""

    snippets: int
    crops: int
    dim: int
    trimmed: int = 0


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header; refuses missing, pickled, object and truncated files."""
    shape, dtype, _ = _read_npy(path, with_data=False)
    return shape, dtype


def load_npy(path: Path) -> np.ndarray:
    """The array in `path`, after the checks of `npy_header` (one open and one header parse per file)."""
    _, _, array = _read_npy(path, with_data=True)
    assert array is not None
    return array


def _read_npy(path: Path, with_data: bool) -> tuple[tuple[int, ...], np.dtype, np.ndarray | None]:
    try:
        with open(path, "rb") as handle:
            try:
                version = np.lib.format.read_magic(handle)
            except ValueError:
                raise UsageError(f"{path}: not a .npy array file (pickled or another format?)") from None
            reader = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            try:
                shape, fortran_order, dtype = reader(handle)
            except ValueError as error:
                raise UsageError(f"{path}: unreadable .npy header ({error})") from None
            if dtype.hasobject:
                raise UsageError(
                    f"{path}: holds a pickled object array; vadbench only loads plain numeric arrays "
                    "(allow_pickle=False), re-save it with numpy as a float array"
                )
            count = int(np.prod(shape, dtype=np.int64))
            expected = handle.tell() + count * dtype.itemsize
            size = os.fstat(handle.fileno()).st_size
            if size < expected:
                raise UsageError(f"{path}: truncated: {size} bytes, the header promises {expected}")
            array = None
            if with_data:
                flat = np.fromfile(handle, dtype=dtype, count=count)
                array = flat.reshape(shape, order="F" if fortran_order else "C")
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except (IsADirectoryError, PermissionError) as error:
        raise UsageError(f"{path}: cannot be read ({error.strerror})") from None
    return tuple(int(n) for n in shape), dtype, array


def _check_float_array(path: Path, shape: tuple[int, ...], dtype: np.dtype, ndim: int, layout: str) -> None:
    if len(shape) != ndim:
        raise UsageError(f"{path}: shape {shape} has {len(shape)} dimensions, expected {ndim} ({layout})")
    if not np.issubdtype(dtype, np.floating):
        raise UsageError(f"{path}: dtype {dtype}, expected float features")
    if shape[0] < 1:
        raise UsageError(f"{path}: T = 0 snippets; every video needs at least one")


def probe_video(video: VideoFiles) -> VideoShape:
    """The video's (T, C, D) from file headers only; raises UsageError naming the first bad file."""
    if video.per_crop:
        shapes = []
        for path in video.files:
            shape, dtype = npy_header(path)
            _check_float_array(path, shape, dtype, 2, "one crop per file: [T, D]")
            shapes.append(shape)
        for path, shape in zip(video.files[1:], shapes[1:], strict=True):
            if shape != shapes[0]:
                raise UsageError(
                    f"{path}: shape {shape} differs from crop 0 {video.files[0].name} {shapes[0]}"
                )
        snippets, crops, dim = shapes[0][0], len(video.files), shapes[0][1]
    else:
        (path,) = video.files
        shape, dtype = npy_header(path)
        _check_float_array(path, shape, dtype, 3, "one file per video: [T, C, D]")
        snippets, crops, dim = shape
    if video.audio is None:
        return VideoShape(snippets, crops, dim)
    shape, dtype = npy_header(video.audio)
    _check_float_array(video.audio, shape, dtype, 2, "audio: [T, A]")
    # One rule for the audio/RGB length mismatch: both are cut to the shorter (the snippets overlap).
    both = min(snippets, shape[0])
    return VideoShape(both, crops, dim + shape[1], trimmed=max(snippets, shape[0]) - both)


def read_video(video: VideoFiles, shape: VideoShape) -> np.ndarray:
    """The video's features (T, C, D) as float32 (audio appended to every crop); refuses NaN/Inf."""
    if video.per_crop:
        arrays = [load_npy(path)[: shape.snippets] for path in video.files]
        features = np.stack(arrays, axis=1).astype(np.float32, copy=False)
    else:
        features = np.asarray(load_npy(video.files[0])[: shape.snippets], dtype=np.float32)
    _check_finite(features, video.files)
    if video.audio is not None:
        audio = np.asarray(load_npy(video.audio)[: shape.snippets], dtype=np.float32)
        _check_finite(audio, (video.audio,))
        tiled = np.broadcast_to(audio[:, None, :], (shape.snippets, shape.crops, audio.shape[1]))
        features = np.concatenate([features, tiled], axis=2)
    return features


def _check_finite(features: np.ndarray, files: tuple[Path, ...], rows: int = 1024) -> None:
    """A UsageError naming the file of the first NaN or Inf value, if any (checked `rows` snippets at a time:
    a mask of a whole long video would be a gigabyte)."""
    if all(np.isfinite(features[first : first + rows]).all() for first in range(0, len(features), rows)):
        return
    bad = ~np.isfinite(features)
    # Name the crop file that holds the first bad value (the only file when there is one per video).
    where = np.argwhere(bad)[0]
    path = files[where[1]] if len(files) > 1 else files[0]
    raise UsageError(f"{path}: {int(bad.sum())} NaN or Inf values (first at snippet {where[0]})")
