"""Safe .npy reading: every malformed feature file is refused with a message naming it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from vadbench.api.errors import UsageError
from vadbench.data.npy import VideoFiles, VideoShape, load_npy, npy_header, probe_video, read_video


def rtfm(path, array):
    np.save(path, array)
    return VideoFiles("v", 1, (path,))


def wu(tmp_path, arrays):
    paths = []
    for crop, array in enumerate(arrays):
        paths.append(tmp_path / f"v__{crop}.npy")
        np.save(paths[-1], array)
    return VideoFiles("v", 1, tuple(paths), per_crop=True)


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match=r"v_i3d.npy: file not found"):
        npy_header(tmp_path / "v_i3d.npy")


def test_truncated_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "v_i3d.npy"
    np.save(path, np.zeros((4, 2, 8), np.float32))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(UsageError, match=r"v_i3d.npy: truncated: \d+ bytes, the header promises \d+"):
        probe_video(VideoFiles("v", 1, (path,)))


def test_object_array_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "v_i3d.npy"
    np.save(path, np.array([np.zeros(3), "x"], dtype=object), allow_pickle=True)
    with pytest.raises(UsageError, match=r"v_i3d.npy: holds a pickled object array"):
        load_npy(path)


def test_a_pickle_named_npy_is_refused(tmp_path):
    path = tmp_path / "v_i3d.npy"
    path.write_bytes(pickle.dumps({"features": [1.0]}))
    with pytest.raises(UsageError, match=r"v_i3d.npy: not a .npy array file"):
        load_npy(path)


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (np.zeros((4, 8), np.float32), "has 2 dimensions, expected 3 (one file per video: [T, C, D])"),
        (np.zeros((4, 2, 8), np.int64), "dtype int64, expected float features"),
        (np.zeros((0, 2, 8), np.float32), "T = 0 snippets"),
    ],
)
def test_bad_shapes_and_dtypes_are_refused(tmp_path, array, needle):
    with pytest.raises(UsageError, match="v_i3d.npy") as error:
        probe_video(rtfm(tmp_path / "v_i3d.npy", array))
    assert needle in str(error.value)


def test_crops_of_different_shapes_name_the_odd_crop(tmp_path):
    video = wu(
        tmp_path, [np.zeros((4, 8), np.float32), np.zeros((4, 8), np.float32), np.zeros((5, 8), np.float32)]
    )
    with pytest.raises(UsageError, match=r"v__2.npy: shape \(5, 8\) differs from crop 0 v__0.npy \(4, 8\)"):
        probe_video(video)


def test_crop_files_are_stacked_in_crop_order(tmp_path):
    arrays = [np.full((3, 8), crop, np.float64) for crop in range(5)]
    video = wu(tmp_path, arrays)
    shape = probe_video(video)
    assert shape == VideoShape(3, 5, 8)
    features = read_video(video, shape)
    assert features.dtype == np.float32 and features.shape == (3, 5, 8)
    assert features[:, :, 0].tolist() == [[0, 1, 2, 3, 4]] * 3


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_name_the_crop_file_holding_them(tmp_path, bad):
    arrays = [np.ones((4, 8), np.float32) for _ in range(3)]
    arrays[1][2, 5] = bad
    video = wu(tmp_path, arrays)
    with pytest.raises(UsageError, match=r"v__1.npy: 1 NaN or Inf values \(first at snippet 2\)"):
        read_video(video, probe_video(video))


def test_audio_is_appended_to_every_crop_and_both_streams_cut_to_the_shorter(tmp_path):
    video = rtfm(tmp_path / "v_i3d.npy", np.zeros((6, 5, 8), np.float16))
    np.save(tmp_path / "v__vggish.npy", np.arange(5 * 4, dtype=np.float32).reshape(5, 4))
    video = VideoFiles("v", 1, video.files, audio=tmp_path / "v__vggish.npy")
    shape = probe_video(video)
    assert shape == VideoShape(5, 5, 12, trimmed=1)
    features = read_video(video, shape)
    assert features.shape == (5, 5, 12)
    assert (features[:, 3, 8:] == np.arange(20).reshape(5, 4)).all()
