"""The device step of an extraction: uint8 RGB crops to the network's input, in its channel order and scaling."""

from __future__ import annotations

import numpy as np
import torch

from vadbench.api.extractor import Preprocessing
from vadbench.extract.network_pass import NetworkPass


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
