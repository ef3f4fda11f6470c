"""The device side of an extraction: uint8 crops in, features out, with the published pixel scaling.

Scaling (and, for networks trained on OpenCV's BGR frames, the channel reversal) happens on the device, in
float32, after the transfer (`vadbench.extract.transforms.normalise`: a quarter of the bytes of float input cross
the bus); ``bf16`` runs the network under bfloat16 autocast (faster on a GPU; the features change slightly, and
their record says so). Features are returned in float32, as the published files hold them.

On the CPU the network and its input are in the channels-last memory layout (``torch.channels_last_3d``): the
crops arrive channels-last already, so the input needs no copy, and oneDNN's convolutions run without
reordering every activation map. With the BatchNorms folded (`Extractor.inference_network`) the
published-width I3D-ResNet50 takes 0.21 s a clip on one thread at 40 clips a forward, against 0.46 s unfolded,
in torch's default layout, at one ten-crop snippet a forward (benchmarks/extract_speed.py); channels-last alone
took Wu et al.'s Inception I3D from 0.74 to 0.46 s a clip. On one thread torch takes oneDNN's convolution for
the pointwise (1x1x1) layers only from 16 clips a forward, and its slower generic convolution below that: keep
``batch x crops`` at 16 or more on a CPU. The GPU path keeps torch's default layout (not measured here).
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
        self.memory_format = torch.channels_last_3d if device.type == "cpu" else torch.contiguous_format
        # torch's stubs of Module.to omit memory_format, which it accepts (the layout of its 4-D and 5-D weights).
        layout = network.to(memory_format=self.memory_format)  # type: ignore[call-overload]
        self.network = layout.to(device).eval()
        self.steps = steps
        self.device = device
        self.precision = precision

    def network_input(self, crops: np.ndarray) -> torch.Tensor:
        """uint8 RGB [B, C, L, S, S, 3] to the network's float input [B*C, 3, L, S, S], in its channel order, scaled
        as published, in the network's memory layout (channels-last: the axis order of the crops, so no copy)."""
        pixels = torch.from_numpy(crops).to(self.device, non_blocking=True)
        batch, count, length, size = pixels.shape[:4]
        pixels = pixels.reshape(batch * count, length, size, size, 3)
        if self.steps.channel_order == "bgr":
            pixels = pixels.flip(-1)
        scaled = normalise(pixels, self.steps.mean, self.steps.std)
        return scaled.permute(0, 4, 1, 2, 3).contiguous(memory_format=self.memory_format)

    @torch.inference_mode()
    def features(self, crops: np.ndarray) -> np.ndarray:
        """[B, C, D] float32 features of a piece of B snippets with C crops each."""
        clips = self.network_input(crops)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            features = self.network(clips)
        return features.float().reshape(crops.shape[0], crops.shape[1], -1).cpu().numpy()
