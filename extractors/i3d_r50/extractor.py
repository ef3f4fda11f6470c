"""RTFM's features: 16-frame snippets of a video through Tushar-N's I3D-ResNet50, ten crops each, [T, 10, 2048].

The steps are those RTFM's author posted (tianyu0207/RTFM issue 21) and the network code they name: the last
partial snippet loop-padded (T = ceil(n/16), which the released ShanghaiTech test features have), PIL bilinear
resize of the shorter side to 256, torchvision's ``TenCrop(224)`` order, pixels 0..255 scaled as
``(x - 114.75) / 57.375``, the 2048-d average pool after layer4. What no source settles is an option:
``pixels`` (the posted pipeline's ``ToTensor`` gives 0..1 before that scaling; whether a later step multiplied
by 255 was never shown), ``non_local`` (which of the two public checkpoints RTFM used was never stated) and
``crops`` (``center``: the one centre crop of RTFM's ``SH_Test_center_crop_i3d`` files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from vadbench.api.extractor import Extractor, Preprocessing
from vadbench.extractors.i3d_r50.network import HEAD_KEYS, I3DResNet50, fold_batchnorm

_MEAN, _STD = 114.75, 57.375


@dataclass(frozen=True)
class I3DR50Config:
    """non_local: the non-local variant (its own checkpoint); width: the network's base width (64 published;
    smaller only for tests); pixels: the range of the pixels before the scaling; crops: ten, or the centre one."""

    non_local: bool = False
    width: int = 64
    pixels: Literal["0-255", "0-1"] = "0-255"
    crops: Literal["ten", "center"] = "ten"

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"width must be at least 1, got {self.width}")


class I3DR50(Extractor):
    """RTFM's 2048-d ten-crop I3D-ResNet50 features (Tushar-N/pytorch-resnet3d weights)."""

    Config = I3DR50Config
    config: I3DR50Config
    layout = "rtfm"
    head_keys = HEAD_KEYS

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(
            snippet_frames=16, snippet_rule="ceil-loop", resize=256, crop_size=224,
            crops="torchvision-ten" if self.config.crops == "ten" else "center",
            mean=_MEAN * self._pixel_unit, std=_STD * self._pixel_unit,
        )

    @property
    def _pixel_unit(self) -> float:
        """255 when the scaling was applied to pixels in 0..1: ``(x / 255 - m) / s`` is ``(x - 255 m) / (255 s)``."""
        return 1.0 if self.config.pixels == "0-255" else 255.0

    def feature_dim(self) -> int:
        return 32 * self.config.width

    def build(self) -> nn.Module:
        return I3DResNet50(non_local=self.config.non_local, width=self.config.width)

    def inference_network(self, network: nn.Module) -> nn.Module:
        """The network with its BatchNorms folded into the convolutions (same features to float32 rounding)."""
        assert isinstance(network, I3DResNet50)
        return fold_batchnorm(network)
