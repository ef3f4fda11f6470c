"""`vadbench extract`, the command a user types, from frame folders and videos to a leaderboard: a tiny UCSD-shaped
root (frame folders of grey .tif frames, as UCSD ships them, and two short videos) extracted with random weights at
a reduced width, then `vadbench data check` and `vadbench run` on the result, in both file layouts; bad inputs in
one line each with exit code 2, the other videos still extracted and no half-written file; re-runs that skip
finished videos and refuse to mix extractions; `--compare` against a feature file.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vadbench.cli import main
from vadbench.plugins.manager import get_plugins

#: Reduced widths: the same code paths at a fraction of the cost (128-d features).
R50 = ["--extractor", "i3d-r50", "--set", "width=4", "--set", "crops=center"]
WU = ["--extractor", "i3d-wu", "--set", "channel_divisor=8", "--set", "crops=5"]
#: Frame counts: test clips of 40 frames (3 snippets under ceil-loop, 2 under floor-minus-one), training clips 24.
TEST_FRAMES, TRAIN_FRAMES, SIZE = 40, 24, (36, 24)


def write_frames(folder: Path, count: int, seed: int, size: tuple[int, int] = SIZE, suffix: str = ".tif") -> Path:
    """`count` grey frames 001.tif ... (numbered as UCSD's), random content seeded by `seed`."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for index in range(1, count + 1):
        pixels = rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{index:03d}{suffix}")
    return folder


def write_video(path: Path, count: int, seed: int, size: tuple[int, int] = (48, 32)) -> Path:
    """A short MPEG-4 video of `count` random colour frames."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for _ in range(count):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8),
                                               format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def ucsd_videos(folder: Path) -> Path:
    """Ped2's 12 test and 16 training clips (two of them videos) and a list file naming them all."""
    inputs = []
    for clip in range(1, 13):
        inputs.append(write_frames(folder / "Test" / f"Test{clip:03d}", TEST_FRAMES, seed=clip))
    for clip in range(1, 15):
        inputs.append(write_frames(folder / "Train" / f"Train{clip:03d}", TRAIN_FRAMES, seed=100 + clip))
    for clip in (15, 16):
        inputs.append(write_video(folder / "Train" / f"Train{clip:03d}.avi", TRAIN_FRAMES, seed=100 + clip))
    listing = folder / "clips.txt"
    listing.write_text("".join(f"{path.relative_to(folder)}\n" for path in inputs))
    return listing


def ucsd_annotation(root: Path) -> None:
    """A Ped2 annotation whose anomalies fall inside the 40-frame test clips (a copy under the root wins)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"TestVideoFile{{end+1}}.gt_frame = [{5 + clip}:{20 + clip}];\n" for clip in range(12))
    (root / "UCSDped2.m").write_text("TestVideoFile = {};\n" + lines)


def random_weights(path: Path, extractor: list[str]) -> Path:
    """A checkpoint like the public ones: the network's random weights plus a classifier head."""
    plugins = get_plugins()
    options = dict(text.split("=", 1) for text in extractor[3::2])
    chosen = plugins.extractors.create(extractor[1], options)
    torch.manual_seed(0)
    state = chosen.build().state_dict()
    torch.save({**state, **{key: torch.zeros(3) for key in chosen.head_keys}}, path)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return ucsd_videos(tmp_path_factory.mktemp("ucsd") / "UCSDped2")


@pytest.mark.parametrize(("extractor", "layout_files"), [
    pytest.param(R50, "Test001_i3d.npy", id="i3d-r50"),
    pytest.param(WU, "Test001__4.npy", id="i3d-wu", marks=pytest.mark.slow),  # 17 s: the Inception's 224-pixel crops
])
def test_ucsd_from_frames_to_leaderboard(tmp_path, clips, extractor, layout_files, capsys):
    root = tmp_path / "features"
    ucsd_annotation(root)
    weights = random_weights(tmp_path / "weights.pt", extractor)
    assert main(["extract", *extractor, "--weights", str(weights), "--out", str(root), str(clips)]) == 0
    assert (root / layout_files).is_file()
    record = json.loads((root / "vadbench-extract.json").read_text())
    assert len(record["videos"]) == 28 and record["videos"]["Train015"]["frames"] == TRAIN_FRAMES
    assert record["weights"]["sha256"] == __import__("hashlib").sha256(weights.read_bytes()).hexdigest()
    assert main(["data", "check", "ucsd-ped2", "--root", str(root)]) == 0
    capsys.readouterr()
    store = tmp_path / "runs"
    code = main(["run", "--dataset", "ucsd-ped2", "--root", str(root), "--method", "rtfm", "--seeds", "0",
                 "--steps", "2", "--set", "rtfm.batch_size=2", "--out", str(store)])
    table = capsys.readouterr().out
    assert code == 0 and "rtfm" in table.lower() and "AUC" in table


def test_snippet_counts_follow_each_extractors_rule(tmp_path, clips):
    """ceil-loop (i3d-r50): 40 frames -> 3 snippets, 24 -> 2; floor-minus-one (i3d-wu): 40 -> 2, 24 -> 1."""
    for extractor, counts in ((R50, (3, 2)), (WU, (2, 1))):
        out = tmp_path / extractor[1]
        weights = random_weights(tmp_path / f"{extractor[1]}.pt", extractor)
        inputs = [str(clips.parent / "Test" / "Test001"), str(clips.parent / "Train" / "Train015.avi")]
        assert main(["extract", *extractor, "--weights", str(weights), "--out", str(out), *inputs]) == 0
        videos = json.loads((out / "vadbench-extract.json").read_text())["videos"]
        assert (videos["Test001"]["snippets"], videos["Train015"]["snippets"]) == counts


def test_bad_videos_are_reported_and_the_others_still_extracted(tmp_path, capsys):
    good = write_frames(tmp_path / "in" / "good", 20, seed=1)
    empty = tmp_path / "in" / "empty"
    empty.mkdir()
    short = write_frames(tmp_path / "in" / "short", 10, seed=2)
    mixed = write_frames(tmp_path / "in" / "mixed", 20, seed=3)
    Image.fromarray(np.zeros((30, 40), dtype=np.uint8), mode="L").save(mixed / "007.tif")
    broken = tmp_path / "in" / "broken.mp4"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    weights = random_weights(tmp_path / "w.pt", R50)
    code = main(["extract", *R50, "--weights", str(weights), "--out", str(out),
                 *(str(path) for path in (empty, good, short, mixed, broken))])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("vadbench: error:")]
    assert code == 2
    assert len(errors) == 4, errors
    for name in ("empty", "short", "mixed", "broken"):
        assert sum(name in line for line in errors) == 1, (name, errors)
    assert sorted(path.name for path in out.iterdir()) == ["good_i3d.npy", "vadbench-extract.json"]


@pytest.mark.parametrize("problem", ["missing", "not a checkpoint", "other width"])
def test_wrong_weights_are_refused_in_one_line_before_any_file(tmp_path, capsys, problem):
    clip = write_frames(tmp_path / "clip", 16, seed=1)
    weights = tmp_path / "w.pt"
    if problem == "not a checkpoint":
        weights.write_text("not weights")
    elif problem == "other width":
        random_weights(weights, ["--extractor", "i3d-r50", "--set", "width=8", "--set", "crops=center"])
    out = tmp_path / "out"
    code = main(["extract", *R50, "--weights", str(weights), "--out", str(out), str(clip)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(weights) in err[0], err
    if problem == "other width":
        assert "shapes differ" in err[0] and "conv1.weight" in err[0]
    assert not out.exists()


def test_a_rerun_skips_finished_videos_and_other_weights_are_refused(tmp_path, capsys):
    clip = write_frames(tmp_path / "clip", 20, seed=1)
    out = tmp_path / "out"
    weights = random_weights(tmp_path / "w.pt", R50)
    assert main(["extract", *R50, "--weights", str(weights), "--out", str(out), str(clip)]) == 0
    written = (out / "clip_i3d.npy").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["extract", *R50, "--weights", str(weights), "--out", str(out), str(clip)]) == 0
    assert "1 of 1 videos already" in capsys.readouterr().err
    assert (out / "clip_i3d.npy").stat().st_mtime_ns == written
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    torch.save(get_plugins().extractors.create("i3d-r50", {"width": 4, "crops": "center"}).build().state_dict(), other)
    assert main(["extract", *R50, "--weights", str(other), "--out", str(out), str(clip)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another extraction" in err[0] and "weights" in err[0]


def test_compare_with_a_published_file(tmp_path, capsys):
    clip = write_frames(tmp_path / "clip", 40, seed=1)
    out = tmp_path / "out"
    extractor = ["--extractor", "i3d-r50", "--set", "width=4"]
    weights = random_weights(tmp_path / "w.pt", extractor)
    assert main(["extract", *extractor, "--weights", str(weights), "--out", str(out), str(clip)]) == 0
    published = out / "clip_i3d.npy"
    capsys.readouterr()
    assert main(["extract", *extractor, "--weights", str(weights), "--compare", str(published), str(clip)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("snippets: extracted 3, clip_i3d.npy 3")
    rows = [line.split() for line in lines[2:]]
    assert [int(row[0]) for row in rows] == list(range(10))
    assert all(float(row[1]) > 0.9999 and float(row[3]) < 1e-4 for row in rows), lines
    swapped = np.load(published)[:, ::-1]
    np.save(tmp_path / "swapped.npy", swapped)
    assert main(["extract", *extractor, "--weights", str(weights), "--compare", str(tmp_path / "swapped.npy"),
                 str(clip)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert all(float(row[3]) > 1e-3 for row in rows)


@pytest.mark.slow
def test_decoding_workers_give_the_same_files(tmp_path, clips):
    weights = random_weights(tmp_path / "w.pt", R50)
    inputs = [str(clips.parent / "Test" / f"Test00{clip}") for clip in (1, 2, 3)]
    for workers in ("0", "2"):
        assert main(["extract", *R50, "--weights", str(weights), "--workers", workers, "--batch", "2",
                     "--out", str(tmp_path / workers), *inputs]) == 0
    for clip in (1, 2, 3):
        name = f"Test00{clip}_i3d.npy"
        assert np.array_equal(np.load(tmp_path / "0" / name), np.load(tmp_path / "2" / name))


def test_bf16_features_are_close_to_fp32_and_recorded_apart(tmp_path):
    """``--precision bf16`` (autocast) changes the features slightly; the record says so, and a folder of fp32
    features refuses them."""
    clip = write_frames(tmp_path / "clip", 32, seed=1)
    weights = random_weights(tmp_path / "w.pt", R50)
    base = ["extract", *R50, "--weights", str(weights), "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "fp32"), str(clip)]) == 0
    assert main([*base, "--precision", "bf16", "--out", str(tmp_path / "bf16"), str(clip)]) == 0
    assert json.loads((tmp_path / "bf16" / "vadbench-extract.json").read_text())["precision"] == "bf16"
    full, half = (np.load(tmp_path / folder / "clip_i3d.npy") for folder in ("fp32", "bf16"))
    assert half.dtype == np.float32 and not np.array_equal(full, half)
    np.testing.assert_allclose(half, full, rtol=0.05, atol=0.05 * np.abs(full).max())
    assert main([*base, "--precision", "bf16", "--out", str(tmp_path / "fp32"), str(clip)]) == 2
