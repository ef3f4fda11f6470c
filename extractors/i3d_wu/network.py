"""The Inception I3D (RGB) whose Mixed_5c output, average-pooled, is Wu et al.'s 1024-d feature.

Wu et al.'s XD-Violence and UCF-Crime features come from ``InceptionI3d.extract_features`` of
piergiaj/pytorch-i3d at commit 05783d11f9632b25fe3d50395a9c9bb51f848d6d (``pytorch_i3d.py``): every endpoint
from Conv3d_1a_7x7 through Mixed_5c, then ``AvgPool3d(kernel [2, 7, 7], stride 1)``. This module computes the
same thing and names its state exactly as that model does (``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_3b.b1b.bn.running_var``, ...), so that the public checkpoint ``rgb_imagenet.pt`` without its classifier
(`HEAD_KEYS`) loads into it with ``strict=True``. What the public code does that a plain port could miss:

- every convolution and max-pool pads dynamically as TensorFlow's "SAME": the total padding along a dimension
  of size s is max(k - stride, 0) if s is a multiple of the stride, else max(k - s mod stride, 0), the smaller
  half in front (``Unit3D.compute_pad``, ``MaxPool3dSamePadding.compute_pad``); the constructor's ``padding``
  arguments are ignored;
- max-pools pad with zeros (``F.pad``), not with -inf (their inputs follow a ReLU, so the two agree);
- convolutions have no bias; each is followed by ``BatchNorm3d(eps=0.001, momentum=0.01)`` and a ReLU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: The keys of the public checkpoint beyond the network: the Kinetics classifier (a 1x1x1 convolution with
#: bias, 1024 -> 400), which ``extract_features`` does not run.
HEAD_KEYS = ("logits.conv3d.weight", "logits.conv3d.bias")

#: The inception blocks in order, with their branch widths (b0, b1a, b1b, b2a, b2b, b3b) as the public code
#: builds them; a block's output width is b0 + b1b + b2b + b3b.
INCEPTION_WIDTHS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
#: The final average pool's kernel (time, height, width).
POOL_KERNEL = (2, 7, 7)
#: Each dimension's total stride before the final pool (time, height, width): a SAME-padded layer of stride s
#: turns a size n into ceil(n / s), so the pooled map is 1x1x1 exactly when ceil(n / stride) equals the kernel:
#: 9 to 16 frames of 193 to 224 pixels a side.
TOTAL_STRIDE = (8, 32, 32)


def same_padding(sizes: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """The ``F.pad`` argument (last dimension first) of the public code's SAME padding for (t, h, w) `sizes`."""
    pad = []
    for size, k, s in zip(reversed(sizes), reversed(kernel), reversed(stride), strict=True):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pad += [total // 2, total - total // 2]
    return pad


def pooled_size(sizes: tuple[int, ...]) -> tuple[int, ...]:
    """The (t, h, w) size of the final average pool's output for a clip of (T, H, W) `sizes`."""
    return tuple(math.ceil(n / s) - k + 1 for n, s, k in zip(sizes, TOTAL_STRIDE, POOL_KERNEL, strict=True))


class Unit3D(nn.Module):
    """SAME-padded convolution without bias, BatchNorm (eps 0.001, momentum 0.01), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.kernel, self.stride = (kernel,) * 3, (stride,) * 3
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, bias=False)
        self.bn = nn.BatchNorm3d(out_channels, eps=0.001, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride))
        return F.relu(self.bn(self.conv3d(x)))


class MaxPool3DSame(nn.Module):
    """Zero-padded (SAME) max-pool, as the public ``MaxPool3dSamePadding``."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class Inception(nn.Module):
    """Four branches concatenated: 1x1; 1x1 then 3x3x3; 1x1 then 3x3x3; 3x3x3 max-pool (stride 1) then 1x1."""

    def __init__(self, in_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = widths
        self.b0 = Unit3D(in_channels, b0)
        self.b1a = Unit3D(in_channels, b1a)
        self.b1b = Unit3D(b1a, b1b, kernel=3)
        self.b2a = Unit3D(in_channels, b2a)
        self.b2b = Unit3D(b2a, b2b, kernel=3)
        self.b3a = MaxPool3DSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, b3b)
        self.out_channels = b0 + b1b + b2b + b3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3D(nn.Module):
    """piergiaj's ``InceptionI3d(in_channels=3)`` through Mixed_5c with ``extract_features``'s average pool.

    ``channel_divisor`` divides every channel count (1: the published network, 1024-d features; 8: a 128-d
    network of the same shape for fast end-to-end tests; it must divide every width, so 1, 2, 4 or 8). Call
    ``eval()`` before extracting: in training mode BatchNorm normalises by the batch, as the public model does.
    """

    def __init__(self, *, channel_divisor: int = 1) -> None:
        super().__init__()
        widths = [64, 192, *(w for block in INCEPTION_WIDTHS.values() for w in block)]
        if channel_divisor < 1 or math.gcd(*widths) % channel_divisor:
            raise ValueError(f"channel_divisor {channel_divisor}: expected a divisor of {math.gcd(*widths)}")
        d = channel_divisor
        self.Conv3d_1a_7x7 = Unit3D(3, 64 // d, kernel=7, stride=2)
        self.MaxPool3d_2a_3x3 = MaxPool3DSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64 // d, 64 // d)
        self.Conv3d_2c_3x3 = Unit3D(64 // d, 192 // d, kernel=3)
        self.MaxPool3d_3a_3x3 = MaxPool3DSame((1, 3, 3), (1, 2, 2))
        channels = 192 // d
        for name, block in INCEPTION_WIDTHS.items():
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPool3DSame((3, 3, 3), (2, 2, 2))
            elif name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPool3DSame((2, 2, 2), (2, 2, 2))
            inception = Inception(channels, tuple(width // d for width in block))
            self.add_module(name, inception)
            channels = inception.out_channels
        self.feature_width = channels

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, H, W] clips with pixels in [-1, 1] -> [B, 1024 // channel_divisor] features.

        The public ``extract_features`` returns [B, 1024, t, h, w]; Wu et al.'s features are its 1x1x1 case, so
        other sizes, where the pooled map is larger or the pool does not fit, are refused.
        """
        if clips.dim() != 5 or clips.shape[1] != 3 or pooled_size(tuple(clips.shape[2:])) != (1, 1, 1):
            raise ValueError(f"clips of size {list(clips.shape)}: expected [B, 3, T, H, W] with 9 <= T <= 16 and "
                             "193 <= H, W <= 224 (the pooled map after Mixed_5c must be 1x1x1)")
        x = clips
        for layer in self.children():
            x = layer(x)
        return F.avg_pool3d(x, POOL_KERNEL, stride=1).flatten(1)
