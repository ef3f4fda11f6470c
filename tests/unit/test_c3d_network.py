"""vadbench's C3D equals the public network of DavideA/c3d-pytorch, the PyTorch port of the C3D v1.0 Sports-1M
network whose fc6 features Sultani et al. use.

The fixture data/c3d_reference.json was written by tests/reference/c3d_reference.py from the public code at the
commit it pins: ``C3D()`` with every state_dict entry set by the named rule of tests/reference/fixture_rule.py, on
two seeded [3, 16, 112, 112] clips, in float32 and in float64, its fc6 after the ReLU kept. Here vadbench's
network gets the same entries, loaded strictly from a dict shaped as the public checkpoint less fc7 and fc8
(`HEAD_KEYS`), and its features are compared with the public float64 ones as tests/reference/comparison.py says
(float64: 1e-12 of the largest feature; float32: ten times the public code's own float32 gap, at least 1e-6).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from reference.comparison import failures, from_record
from reference.fixture_rule import named_state_value, video_clips

from vadbench.api.errors import UsageError
from vadbench.extractors.c3d.extractor import C3DConfig, C3DFc6
from vadbench.extractors.c3d.network import C3D, HEAD_KEYS

FIXTURE = json.loads((Path(__file__).parent / "data" / "c3d_reference.json").read_text())


def checkpoint() -> dict[str, torch.Tensor]:
    """The rule's values under the public checkpoint's names, less fc7 and fc8."""
    return {name: named_state_value(name, shape) for name, shape in FIXTURE["public_state"] if name not in HEAD_KEYS}


def clips() -> torch.Tensor:
    sizes = FIXTURE["clips"]
    return video_clips(sizes["stream"], sizes["clips"], sizes["frames"], sizes["size"])


def test_state_dict_names_and_shapes_are_the_public_networks_without_fc7_and_fc8():
    ours = [[name, list(tensor.shape)] for name, tensor in C3D().state_dict().items()]
    public = FIXTURE["public_state"]
    assert {name for name, _ in public} - {name for name, _ in ours} == set(HEAD_KEYS)
    assert ours == [row for row in public if row[0] not in HEAD_KEYS]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_fc6_features_after_relu_equal_the_public_networks(dtype):
    network = C3D()
    network.load_state_dict(checkpoint(), strict=True)
    with torch.no_grad():
        features = network.eval().to(dtype)(clips().to(dtype))
    assert features.shape == (2, 4096) and (features == 0).any()  # post-ReLU: exact zeros, as Sultani's files hold
    assert not failures({"fc6": features}, {"fc6": from_record(FIXTURE["features"])}, dtype)


def test_a_channel_divisor_narrows_every_width_and_other_clip_sizes_are_refused():
    network = C3D(channel_divisor=16).eval()
    with torch.no_grad():
        features = network(torch.randn(2, 3, 16, 112, 112, generator=torch.Generator().manual_seed(0)))
    assert features.shape == (2, 256) and network.fc6.in_features == 32 * 16
    with pytest.raises(ValueError, match=r"expected \[B, 3, 16, 112, 112\]"):
        network(torch.zeros(1, 3, 16, 128, 171))
    with pytest.raises(ValueError, match="channel_divisor 3"):
        C3D(channel_divisor=3)


@pytest.mark.parametrize("layout", ["channels-first", "channels-last", "caffe-blob"])
def test_a_mean_volume_file_is_subtracted_at_caffes_crop_offsets(tmp_path, layout):
    """The [3, 16, 128, 171] BGR volume, cropped at top 8, left 29, subtracted before the network; reversed to RGB
    when the weights take RGB; its [16, 128, 171, 3] and Caffe's [1, 3, 16, 128, 171] forms read the same."""
    volume = np.random.default_rng(0).uniform(80, 110, (3, 16, 128, 171)).astype(np.float32)
    stored = {"channels-first": volume, "channels-last": volume.transpose(1, 2, 3, 0), "caffe-blob": volume[None]}
    np.save(tmp_path / "mean.npy", stored[layout])
    for channels, order in (("bgr", [0, 1, 2]), ("rgb", [2, 1, 0])):
        extractor = C3DFc6(C3DConfig(channels=channels, mean_file=str(tmp_path / "mean.npy"), channel_divisor=16))
        network = extractor.build().eval()
        plain = C3D(channel_divisor=16).eval()
        plain.load_state_dict(network.state_dict(), strict=True)  # the mean is no checkpoint key
        pixels = torch.rand(1, 3, 16, 112, 112, generator=torch.Generator().manual_seed(1)) * 255
        expected_input = pixels - torch.from_numpy(volume[order][:, :, 8:120, 29:141])
        with torch.no_grad():
            torch.testing.assert_close(network(pixels), plain(expected_input))


def test_a_mean_file_of_another_size_is_refused_in_one_line(tmp_path):
    np.save(tmp_path / "mean.npy", np.zeros((3, 16, 112, 112), dtype=np.float32))
    with pytest.raises(UsageError, match=r"mean_file=.*shape \[3, 16, 112, 112\], expected the mean volume"):
        C3DFc6(C3DConfig(mean_file=str(tmp_path / "mean.npy"))).build()
    with pytest.raises(UsageError, match="not a readable .npy array"):
        C3DFc6(C3DConfig(mean_file=str(tmp_path / "missing.npy"))).build()
