"""Sultani et al.'s features: 16-frame clips through C3D (Sports-1M), fc6 after its ReLU, [T, 1, 4096].

The steps are C3D v1.0's feature extraction "with default settings" (Sultani et al.'s words), as its Caffe data
layer and prototxt take them: clips start at frames 0, 16, 32, ... and a last partial clip is dropped
(T = floor(n/16)); frames are resized to 171x128 (OpenCV bilinear in C3D; here PIL bilinear, as every vadbench
extractor resizes), cropped once to 112x112 at Caffe's test-phase offsets (rounded down: top 8, left 29), not
mirrored; the Sports-1M mean *volume* (``sport1m_train16_128_mean.binaryproto``, one value per channel, frame
and pixel of the 16x128x171 clip) is subtracted at the same offsets; pixels stay in 0..255 otherwise. Sultani's
averaging into 32 segments comes after extraction (a method's or dataset's reduction), not here.

Open points, as options: ``channels`` (C3D v1.0 reads frames with OpenCV, so the Caffe network was trained on
BGR; whether the public PyTorch port's conversion reversed conv1's channels is not stated, and its own
``predict.py`` feeds RGB) and ``mean_file`` (the mean volume is the user's file, converted to ``.npy``; without
it no mean is subtracted, and no per-channel approximation of the volume is published to stand in for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from vadbench.api.errors import UsageError
from vadbench.api.extractor import Extractor, Preprocessing
from vadbench.extractors.c3d.network import C3D, CLIP_SIZE, FC6_WIDTH, HEAD_KEYS

#: C3D v1.0's data layer: frames resized to (width, height), then one crop of this size.
RESIZE, CROP = (171, 128), 112
#: The mean volume's size (frames, height, width): that of the resized clips.
MEAN_SIZE = (CLIP_SIZE[0], RESIZE[1], RESIZE[0])


@dataclass(frozen=True)
class C3DConfig:
    """channels: the channel order the weights expect (bgr: C3D's Caffe training; rgb: the port's predict.py);
    mean_file: a ``.npy`` of the Sports-1M mean volume, [3, 16, 128, 171] or [16, 128, 171, 3], channels in C3D's
    BGR order ("": no mean); channel_divisor: divides every width (1 published; up to 64 only for tests)."""

    channels: Literal["bgr", "rgb"] = "bgr"
    mean_file: str = ""
    channel_divisor: Literal[1, 2, 4, 8, 16, 32, 64] = 1


def read_mean_volume(path: Path) -> np.ndarray:
    """The mean volume at `path` as float32 [3, 16, 128, 171] (leading axes of size 1 dropped); refused in one
    line if unreadable or of another size."""
    try:
        volume = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"--set mean_file={path}: not a readable .npy array ({error})") from None
    while volume.ndim > 4 and volume.shape[0] == 1:
        volume = volume[0]
    if volume.shape == (*MEAN_SIZE, 3):
        volume = volume.transpose(3, 0, 1, 2)
    if volume.shape != (3, *MEAN_SIZE):
        raise UsageError(f"--set mean_file={path}: shape {list(volume.shape)}, expected the mean volume "
                         f"[3, 16, 128, 171] or [16, 128, 171, 3]")
    return volume.astype(np.float32)


class MeanSubtractedC3D(C3D):
    """C3D whose input has a mean volume (the crop's part of it) subtracted first, as Caffe's data layer does.
    The volume is a non-persistent buffer: not in the state_dict, so the public checkpoint loads as it is."""

    def __init__(self, mean: torch.Tensor, *, channel_divisor: int = 1) -> None:
        super().__init__(channel_divisor=channel_divisor)
        self.register_buffer("input_mean", mean, persistent=False)

    input_mean: torch.Tensor

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return super().forward(clips - self.input_mean)


class C3DFc6(Extractor):
    """Sultani et al.'s 4096-d C3D fc6 features (DavideA/c3d-pytorch's converted Sports-1M weights, c3d.pickle)."""

    Config = C3DConfig
    config: C3DConfig
    layout = "rtfm"
    head_keys = HEAD_KEYS

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(snippet_frames=CLIP_SIZE[0], snippet_rule="floor", resize=RESIZE, crop_size=CROP,
                             crops="caffe-center", mean=0.0, std=1.0, channel_order=self.config.channels)

    def feature_dim(self) -> int:
        return FC6_WIDTH // self.config.channel_divisor

    def build(self) -> nn.Module:
        if not self.config.mean_file:
            return C3D(channel_divisor=self.config.channel_divisor)
        return MeanSubtractedC3D(self.mean_crop(), channel_divisor=self.config.channel_divisor)

    def mean_crop(self) -> torch.Tensor:
        """The crop's part of the mean volume, [3, 16, 112, 112], in the channel order the network takes."""
        volume = read_mean_volume(Path(self.config.mean_file))
        top, left = (RESIZE[1] - CROP) // 2, (RESIZE[0] - CROP) // 2
        crop = volume[:, :, top : top + CROP, left : left + CROP]
        return torch.from_numpy(np.ascontiguousarray(crop if self.config.channels == "bgr" else crop[::-1]))
