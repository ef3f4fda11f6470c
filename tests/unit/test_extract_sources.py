"""Inputs of `vadbench extract`: finding videos, frame folders and list files, and reading their frames."""

from __future__ import annotations

import sys
import weakref
from pathlib import Path

import numpy as np
import pytest

from vadbench.api.errors import UsageError
from vadbench.extract.sources import Source, find_sources, natural_key, read_frames

av = pytest.importorskip("av")
Image = pytest.importorskip("PIL.Image")


def clip(frames: int, width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    """Random uint8 RGB frames [frames, height, width, 3]."""
    return np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def write_video(path: Path, frames: np.ndarray, codec: str = "ffv1", pix_fmt: str = "bgr0") -> Path:
    """Encode `frames` with PyAV (ffv1 is lossless: decoding gives the frames back exactly)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_folder(folder: Path, frames: np.ndarray, names: list[str] | None = None) -> Path:
    """One lossless image per frame, named 1.png, 2.png... unless `names` says otherwise."""
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / (names[index] if names else f"{index + 1}.png"))
    return folder


# Finding sources


def test_a_video_is_named_after_its_file_without_the_last_extension(tmp_path):
    video = tmp_path / "Bad.Boys.1995__#01-11-55_01-12-30_label_G-0-0.MP4"
    video.write_bytes(b"not decoded here")
    assert find_sources([video]) == [Source("Bad.Boys.1995__#01-11-55_01-12-30_label_G-0-0", video, "video")]


def test_a_frame_folder_is_one_source_named_after_the_folder(tmp_path):
    folder = write_folder(tmp_path / "01_0014", clip(2))
    (folder / "nested").mkdir()
    assert find_sources([str(folder)]) == [Source("01_0014", folder, "frames")]


def test_a_folder_of_frame_folders_gives_one_source_per_subfolder_in_natural_order(tmp_path):
    test = tmp_path / "Test"
    for name in ("Test10", "Test2", "Test1", ".hidden"):
        write_folder(test / name, clip(1), ["001.tif"])
    (test / "empty").mkdir()
    (test / "notes.txt").write_text("not an input\n")
    found = find_sources([test])
    assert [source.name for source in found] == ["Test1", "Test2", "Test10"]
    assert {source.kind for source in found} == {"frames"}


def test_a_list_file_names_inputs_relative_to_its_folder(tmp_path):
    write_folder(tmp_path / "data" / "frames" / "clip_a", clip(1))
    (tmp_path / "data" / "v.avi").write_bytes(b"x")
    absolute = tmp_path / "elsewhere.mp4"
    absolute.write_bytes(b"x")
    listing = tmp_path / "data" / "inputs.list"
    listing.write_text(f"# clips\nframes/clip_a\n\n  v.avi  \n{absolute}\n")
    assert [source.name for source in find_sources([listing])] == ["clip_a", "v", "elsewhere"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda root: root / "missing.mp4", "missing.mp4: no such file or folder"),
        (lambda root: _touch(root / "frame.jpg"), "frame.jpg: not a known video or list file"),
        (lambda root: _touch(root / "table.csv"), "table.csv: not a known video or list file"),
    ],
)
def test_a_wrong_input_is_one_line_naming_it(tmp_path, make, expected):
    with pytest.raises(UsageError, match=expected) as raised:
        find_sources([make(tmp_path)])
    assert "\n" not in str(raised.value)


def test_a_folder_of_videos_and_frame_folders_gives_each(tmp_path):
    _touch(tmp_path / "videos" / "b.mp4")
    _touch(tmp_path / "videos" / "a.avi")
    _touch(tmp_path / "videos" / "notes.txt")
    _touch(tmp_path / "videos" / "c" / "001.jpg")
    assert [(source.name, source.kind) for source in find_sources([tmp_path / "videos"])] == [
        ("a", "video"), ("b", "video"), ("c", "frames")]


def test_a_wrong_line_of_a_list_file_names_the_list_and_the_line(tmp_path):
    listing = tmp_path / "inputs.txt"
    listing.write_text("# header\nnowhere.mp4\n")
    with pytest.raises(UsageError, match=r"nowhere.mp4: no such file or folder \(line 2 of .*inputs.txt"):
        find_sources([listing])


def test_lists_do_not_nest(tmp_path):
    _touch(tmp_path / "inner.txt")
    (tmp_path / "outer.txt").write_text("inner.txt\n")
    with pytest.raises(UsageError, match="inner.txt: not a known video or list file"):
        find_sources([tmp_path / "outer.txt"])


def test_two_inputs_with_one_output_name_are_refused(tmp_path):
    first = _touch(tmp_path / "a" / "clip.mp4")
    second = _touch(tmp_path / "b" / "clip.avi")
    with pytest.raises(UsageError, match=rf"{second}: its output name 'clip' is also that of {first}"):
        find_sources([first, second])


def test_natural_order_compares_the_numbers_in_names():
    names = ["10.jpg", "2.jpg", "img_100.png", "img_20.png", "001.tif", "1.tif", "0.jpg"]
    expected = ["0.jpg", "001.tif", "1.tif", "2.jpg", "10.jpg", "img_20.png", "img_100.png"]
    assert sorted(names, key=natural_key) == expected


# Reading frames


def test_frame_folder_frames_come_in_natural_order(tmp_path):
    frames = clip(12)
    folder = write_folder(tmp_path / "clip", frames)  # 1.png ... 12.png: 10.png sorts before 2.png as text
    (folder / "Thumbs.db").write_bytes(b"x")
    (folder / ".1.png").write_bytes(b"hidden")
    read = list(read_frames(Source("clip", folder, "frames")))
    assert np.array_equal(np.stack(read), frames)


def test_grey_frames_become_three_equal_channels(tmp_path):
    folder = tmp_path / "Test001"
    folder.mkdir()
    grey = np.random.default_rng(1).integers(0, 256, (2, 158, 238), dtype=np.uint8)
    for index, frame in enumerate(grey):
        Image.fromarray(frame, mode="L").save(folder / f"{index + 1:03d}.tif")
    read = np.stack(list(read_frames(Source("Test001", folder, "frames"))))
    assert read.shape == (2, 158, 238, 3) and read.dtype == np.uint8
    assert all(np.array_equal(read[..., channel], grey) for channel in range(3))


def test_a_lossless_video_decodes_to_its_frames(tmp_path):
    frames = clip(20, width=90, height=60)
    video = write_video(tmp_path / "clip.mkv", frames)
    assert np.array_equal(np.stack(list(read_frames(Source("clip", video, "video")))), frames)


def test_an_mpeg4_video_decodes_every_frame(tmp_path):
    frames = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, None, :, None], 48, axis=1)
    frames = np.repeat(np.repeat(frames, 3, axis=3), 17, axis=0)
    video = write_video(tmp_path / "clip.mp4", frames, codec="mpeg4", pix_fmt="yuv420p")
    read = np.stack(list(read_frames(Source("clip", video, "video"))))
    assert read.shape == frames.shape and read.dtype == np.uint8
    assert np.abs(read.astype(int) - frames).mean() < 3


@pytest.mark.parametrize("kind", ["video", "frames"])
def test_frames_are_streamed_not_held(tmp_path, kind):
    """A frame already handed out is not kept alive by the reader (UCF-Crime videos have 10,000+ frames)."""
    frames = clip(40)
    path = write_video(tmp_path / "clip.mkv", frames) if kind == "video" else write_folder(tmp_path / "clip", frames)
    handed_out: list[weakref.ref[np.ndarray]] = []
    most_alive = 0
    for frame in read_frames(Source("clip", path, kind)):
        handed_out.append(weakref.ref(frame))
        del frame
        most_alive = max(most_alive, sum(ref() is not None for ref in handed_out))
    assert len(handed_out) == 40
    assert most_alive <= 2


def test_a_video_that_cannot_be_opened_is_one_line(tmp_path):
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"\x00" * 1000)
    with pytest.raises(UsageError, match=f"{video}: cannot open the video"):
        list(read_frames(Source("broken", video, "video")))


def test_a_video_without_a_video_stream_is_refused(tmp_path):
    sound = tmp_path / "sound.mkv"
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        samples.sample_rate = 8000
        container.mux(stream.encode(samples))
        container.mux(stream.encode())
    with pytest.raises(UsageError, match=f"{sound}: no video stream"):
        list(read_frames(Source("sound", sound, "video")))


def test_a_missing_pyav_names_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(UsageError, match=r"needs PyAV: pip install 'vadbench\[extract\]'"):
        list(read_frames(Source("clip", tmp_path / "clip.mp4", "video")))


def test_an_empty_frame_folder_is_refused_when_read(tmp_path):
    """Found as a (frame folder) source, so that the other inputs of the command are still extracted."""
    folder = _mkdir(tmp_path / "clip")
    assert find_sources([folder]) == [Source("clip", folder, "frames")]
    with pytest.raises(UsageError, match=f"{folder}: no frame images"):
        list(read_frames(Source("clip", folder, "frames")))


def test_an_unreadable_image_is_named(tmp_path):
    folder = write_folder(tmp_path / "clip", clip(2))
    (folder / "3.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UsageError, match=f"{folder / '3.jpg'}: cannot read the image"):
        list(read_frames(Source("clip", folder, "frames")))


def test_a_frame_of_another_size_is_named_with_both_sizes(tmp_path):
    folder = write_folder(tmp_path / "clip", clip(3))
    Image.fromarray(clip(1, width=32)[0]).save(folder / "4.png")
    with pytest.raises(UsageError, match=f"{folder / '4.png'}: frame size 32x48 differs from the first frame's 64x48"):
        list(read_frames(Source("clip", folder, "frames")))


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path
