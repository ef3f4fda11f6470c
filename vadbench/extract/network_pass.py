"""The device side of an extraction: uint8 crops in, features out, with the published pixel scaling.

Scaling (and, for networks trained on OpenCV's BGR frames, the channel reversal) happens on the device, in
float32, after the transfer (`vadbench.extract.transforms.normalise`: a quarter of the bytes of float input cross
the bus); ``bf16`` runs the network under bfloat16 autocast (faster on a GPU; the features change slightly, and
their record says so). Features are returned in float32, as the published files hold them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vadbench.api.extractor import Preprocessing
from vadbench.extract.transforms import normalise


class NetworkPass:
    """The network in eval mode on `device`, turning pieces of crops into features."""

    def __init__(self, network: nn.Module, steps: Preprocessing, device: torch.device, precision: str) -> None:
        self.network = network.to(device).eval()
        self.steps = steps
        self.device = device
        self.precision = precision

    def network_input(self, crops: np.ndarray) -> torch.Tensor:
        """uint8 RGB [B, C, L, S, S, 3] to the network's float input [B*C, 3, L, S, S], in its channel order and
        scaled as published."""
        pixels = torch.from_numpy(crops).to(self.device, non_blocking=True)
        batch, count, length, size = pixels.shape[:4]
        pixels = pixels.reshape(batch * count, length, size, size, 3)
        if self.steps.channel_order == "bgr":
            pixels = pixels.flip(-1)
        scaled = normalise(pixels, self.steps.mean, self.steps.std)
        return scaled.permute(0, 4, 1, 2, 3).contiguous()

    @torch.inference_mode()
    def features(self, crops: np.ndarray) -> np.ndarray:
        """[B, C, D] float32 features of a piece of B snippets with C crops each."""
        clips = self.network_input(crops)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            features = self.network(clips)
        return features.float().reshape(crops.shape[0], crops.shape[1], -1).cpu().numpy()
