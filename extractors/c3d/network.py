"""The C3D network (Sports-1M) whose fc6 output after its ReLU is Sultani et al.'s 4096-d clip feature.

Sultani et al. ran C3D v1.0 (Caffe) and kept the ``fc6-1`` blob, on which ``relu6`` works in place, so the saved
feature is post-ReLU. The public PyTorch port of that network, DavideA/c3d-pytorch at commit
1111ccf0de77cf1ba9f1027f7f065e889fc97169 (``C3D_model.py``, whose converted Sports-1M weights are ``c3d.pickle``),
names its state ``conv1`` ... ``conv5b`` and ``fc6`` to ``fc8``; this module computes the same layers up to fc6
under the same names, so that the port's checkpoint without fc7 and fc8 (`HEAD_KEYS`) loads with
``strict=True``. What the public code does that a plain port could miss:

- every convolution is 3x3x3 with padding 1 and a bias, followed by a ReLU;
- pool1 pools space only (kernel and stride (1, 2, 2)); pool2 to pool5 pool time and space (kernel and stride 2);
- pool5 pads height and width by one (``padding=(0, 1, 1)``: 7x7 maps become 4x4), so a 16x112x112 clip gives
  512 x 1 x 4 x 4 = 8192 values, flattened in that (channel, time, height, width) order before fc6.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: The keys of the public checkpoint beyond fc6: fc7 and the Sports-1M classifier fc8 (487 classes).
HEAD_KEYS = ("fc7.weight", "fc7.bias", "fc8.weight", "fc8.bias")
#: The convolutions in order, with their output widths, and the pool that follows each (None: none).
CONVOLUTIONS = {"conv1": 64, "conv2": 128, "conv3a": 256, "conv3b": 256, "conv4a": 512, "conv4b": 512,
                "conv5a": 512, "conv5b": 512}
POOL_AFTER = {"conv1": ((1, 2, 2), (0, 0, 0)), "conv2": ((2, 2, 2), (0, 0, 0)), "conv3b": ((2, 2, 2), (0, 0, 0)),
              "conv4b": ((2, 2, 2), (0, 0, 0)), "conv5b": ((2, 2, 2), (0, 1, 1))}
#: fc6's width and the size (time, height, width) of pool5's output for the clips C3D takes.
FC6_WIDTH, POOL5_SIZE = 4096, (1, 4, 4)
#: The clip C3D takes: 16 frames of 112x112 crops.
CLIP_SIZE = (16, 112, 112)


class C3D(nn.Module):
    """DavideA/c3d-pytorch's ``C3D`` through fc6 and its ReLU.

    ``channel_divisor`` divides every width, fc6's included (1: the published network, 4096-d features; 16: a
    256-d network of the same shape for fast tests; it must divide 64, the smallest width).
    """

    def __init__(self, *, channel_divisor: int = 1) -> None:
        super().__init__()
        widths = [*CONVOLUTIONS.values(), FC6_WIDTH]
        if channel_divisor < 1 or math.gcd(*widths) % channel_divisor:
            raise ValueError(f"channel_divisor {channel_divisor}: expected a divisor of {math.gcd(*widths)}")
        channels = 3
        for name, width in CONVOLUTIONS.items():
            self.add_module(name, nn.Conv3d(channels, width // channel_divisor, kernel_size=3, padding=1))
            channels = width // channel_divisor
        self.fc6 = nn.Linear(channels * math.prod(POOL5_SIZE), FC6_WIDTH // channel_divisor)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """[B, 3, 16, 112, 112] clips, as the weights expect them (channel order, mean subtracted) -> [B, 4096]
        post-ReLU fc6 features (4096 // channel_divisor)."""
        if clips.dim() != 5 or tuple(clips.shape[1:]) != (3, *CLIP_SIZE):
            raise ValueError(f"clips of size {list(clips.shape)}: expected [B, 3, 16, 112, 112]")
        x = clips
        for name in CONVOLUTIONS:
            x = F.relu(getattr(self, name)(x))
            if name in POOL_AFTER:
                kernel, padding = POOL_AFTER[name]
                x = F.max_pool3d(x, kernel, stride=kernel, padding=padding)
        return F.relu(self.fc6(x.flatten(1)))
