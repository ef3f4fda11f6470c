"""`vadbench extract --extractor c3d`: frame folders to Sultani-style C3D fc6 files, one [T, 1, D] file per video with
T = floor(n/16) (C3D's clips at frames 0, 16, 32, ...; a last partial clip dropped), at a reduced width."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vadbench.cli import main
from vadbench.extractors.c3d.extractor import C3DConfig, C3DFc6
from vadbench.extractors.c3d.network import HEAD_KEYS

#: A 256-d C3D of the published shape (every width divided by 16).
C3D = ["--extractor", "c3d", "--set", "channel_divisor=16"]


def write_frames(folder: Path, count: int, seed: int) -> Path:
    """`count` random colour frames 001.png ... of 48x36 pixels (resized to 171x128 by the extractor)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for index in range(1, count + 1):
        Image.fromarray(rng.integers(0, 256, (36, 48, 3), dtype=np.uint8)).save(folder / f"{index:03d}.png")
    return folder


def random_weights(path: Path) -> Path:
    """A checkpoint like the public c3d.pickle at the reduced width: random conv1..fc6, plus fc7 and fc8."""
    torch.manual_seed(0)
    state = C3DFc6(C3DConfig(channel_divisor=16)).build().state_dict()
    torch.save({**state, **{key: torch.zeros(3) for key in HEAD_KEYS}}, path)
    return path


@pytest.mark.parametrize("channels", ["bgr", "rgb"])
def test_frame_folders_give_floor_n_over_16_clips_of_fc6_features(tmp_path, channels):
    counts = {"short": 16, "middle": 40, "long": 47}
    inputs = [str(write_frames(tmp_path / "in" / name, count, seed=count)) for name, count in counts.items()]
    weights = random_weights(tmp_path / "c3d.pt")
    out = tmp_path / "out"
    assert main(["extract", *C3D, "--set", f"channels={channels}", "--weights", str(weights), "--out", str(out),
                 *inputs]) == 0
    record = json.loads((out / "vadbench-extract.json").read_text())
    assert record["preprocessing"]["crops"] == "caffe-center"
    assert record["preprocessing"]["channel_order"] == channels
    for name, count in counts.items():
        features = np.load(out / f"{name}_i3d.npy")
        assert features.shape == (count // 16, 1, 256) and features.dtype == np.float32
        assert (features >= 0).all()  # fc6 after its ReLU
        assert record["videos"][name]["snippets"] == count // 16


def test_the_features_are_the_networks_on_the_resized_caffe_centre_crops(tmp_path):
    """The first clip's file row equals the network on its frames resized to 171x128 and cropped at (8, 29), in BGR."""
    folder = write_frames(tmp_path / "in" / "clip", 16, seed=7)
    weights = random_weights(tmp_path / "c3d.pt")
    assert main(["extract", *C3D, "--weights", str(weights), "--out", str(tmp_path / "out"), str(folder)]) == 0
    frames = [np.asarray(Image.open(folder / f"{index:03d}.png").convert("RGB").resize((171, 128), Image.BILINEAR))
              for index in range(1, 17)]
    clip = torch.from_numpy(np.stack(frames)[:, 8:120, 29:141, ::-1].copy()).float().permute(3, 0, 1, 2)
    network = C3DFc6(C3DConfig(channel_divisor=16)).build().eval()
    state = torch.load(weights, weights_only=True)
    network.load_state_dict({key: value for key, value in state.items() if key not in HEAD_KEYS})
    with torch.no_grad():
        expected = network(clip[None])
    np.testing.assert_allclose(np.load(tmp_path / "out" / "clip_i3d.npy")[0], expected.numpy(), rtol=1e-5, atol=1e-5)
