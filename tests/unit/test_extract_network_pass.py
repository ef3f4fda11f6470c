"""The device side of an extraction's network pass: the channel order and scaling of its input, the channels-last
layout on the CPU, and the folded network, which keep the features."""

from __future__ import annotations

import copy

import numpy as np
import torch

from vadbench.api.extractor import Preprocessing
from vadbench.extract.network_pass import NetworkPass
from vadbench.extract.transforms import normalise
from vadbench.extractors.i3d_r50.extractor import I3DR50, I3DR50Config


def crops(batch: int = 2, count: int = 3) -> np.ndarray:
    """Seeded uint8 crops [B, C, 16, 32, 32, 3]."""
    return np.random.default_rng(0).integers(0, 256, size=(batch, count, 16, 32, 32, 3), dtype=np.uint8)


def test_the_cpu_input_is_channels_last_without_a_copy_of_the_scaled_pixels():
    extractor = I3DR50(I3DR50Config(width=4))
    network_pass = NetworkPass(extractor.build(), extractor.preprocessing(), torch.device("cpu"), "fp32")
    clips = network_pass.network_input(crops())
    assert clips.shape == (6, 3, 16, 32, 32)
    assert clips.is_contiguous(memory_format=torch.channels_last_3d)
    assert clips.permute(0, 2, 3, 4, 1).is_contiguous()


def test_features_of_the_folded_channels_last_network_equal_the_plain_networks():
    extractor = I3DR50(I3DR50Config(width=4))
    network = extractor.build().eval()
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    steps = extractor.preprocessing()
    pieces = crops()
    with torch.inference_mode():
        pixels = torch.from_numpy(pieces).reshape(6, 16, 32, 32, 3)
        expected = network(normalise(pixels, steps.mean, steps.std).permute(0, 4, 1, 2, 3).contiguous())
    network_pass = NetworkPass(extractor.inference_network(copy.deepcopy(network)), steps, torch.device("cpu"), "fp32")
    features = network_pass.features(pieces)
    assert features.shape == (2, 3, 128) and features.dtype == np.float32
    gap = np.abs(features.reshape(6, 128) - expected.numpy()).max() / np.abs(expected.numpy()).max()
    assert gap < 1e-5


def network_input(steps: Preprocessing, crops: np.ndarray) -> torch.Tensor:
    return NetworkPass(torch.nn.Identity(), steps, torch.device("cpu"), "fp32").network_input(crops)


def test_bgr_networks_get_the_channels_reversed_before_the_per_channel_scaling():
    """[B, C, L, S, S, 3] uint8 RGB -> [B*C, 3, L, S, S]; ``bgr`` puts blue first, then subtracts the mean."""
    crops = np.random.default_rng(0).integers(0, 256, (2, 1, 4, 5, 5, 3), dtype=np.uint8)
    rgb = network_input(Preprocessing(mean=100.0, std=2.0), crops)
    bgr = network_input(Preprocessing(mean=100.0, std=2.0, channel_order="bgr"), crops)
    expected = (torch.from_numpy(crops).double().reshape(2, 4, 5, 5, 3).permute(0, 4, 1, 2, 3) - 100) / 2
    assert rgb.shape == (2, 3, 4, 5, 5)
    torch.testing.assert_close(rgb.double(), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(bgr.double(), expected.flip(1), rtol=0, atol=1e-6)
