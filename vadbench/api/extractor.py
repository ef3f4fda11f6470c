"""The extractor contract: a frozen video network and the published steps that feed it, so that `vadbench extract`
turns videos into the feature files the dataset adapters read.

An extractor declares two things: its `Preprocessing` (how many frames make a snippet and what happens to the
last partial one, the resize, the crops and their order, the pixel scaling) and its network (`Extractor.build`:
a module mapping normalised clips ``[B, 3, L, S, S]`` to features ``[B, D]``, whose ``state_dict`` names are
those of the public checkpoints). `vadbench.extract` owns everything else: decoding, snippets, batching,
devices, loading and checking the user's weights, writing the files and their record, so every extractor
gets the same guarantees. The features of the published files were made by steps that their authors did not
always state; an extractor gives the open points as options (named in its ``Config``) rather than guessing.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from torch import nn

#: How a video of n frames becomes snippets of L frames: ``ceil-loop`` T = ceil(n/L), the last partial
#: snippet padded by repeating its own frames from its first; ``floor`` T = floor(n/L), the last partial
#: snippet dropped; ``floor-minus-one`` T = floor((n-1)/L), the last frame dropped first (to match the n-1
#: frames of optical flow), then the last partial snippet.
SnippetRule = Literal["ceil-loop", "floor", "floor-minus-one"]
#: The crops of each frame, in the order of the crop axis of the written features: ``torchvision-ten``
#: torchvision's ``TenCrop`` (tl, tr, bl, br, centre, then those of the mirrored frame); ``center-first-ten``
#: and ``center-first-five`` the centre, then the corners, then (ten) the mirrored ones; ``center`` one crop;
#: ``caffe-center`` one crop at Caffe's test-phase offsets (rounded down, where torchvision rounds half to even).
CropOrder = Literal["torchvision-ten", "center-first-ten", "center-first-five", "center", "caffe-center"]
#: The channel order the network was trained on: ``rgb`` as decoded, ``bgr`` as OpenCV reads frames (Caffe's C3D).
ChannelOrder = Literal["rgb", "bgr"]
#: The feature files: ``rtfm`` one ``<video>_i3d.npy`` of shape [T, C, D]; ``wu`` one ``<video>__<k>.npy``
#: of shape [T, D] per crop k.
FileLayout = Literal["rtfm", "wu"]


@dataclass(frozen=True)
class Preprocessing:
    """The published steps from decoded RGB frames (uint8, 0..255) to the network's input.

    resize: an int resizes the shorter side to it (aspect kept, the longer side by torchvision's ``Resize(int)``
    rule), a (width, height) pair to that size; both PIL bilinear. Each crop's pixels x (0..255) become
    ``(x - mean) / std``, `mean` and `std` in pixel units: every published value range is one such pair
    (``x / 255 * 2 - 1`` is mean 127.5, std 127.5). `channel_order` ``bgr`` reverses the channels before that
    scaling, for networks trained on frames read by OpenCV.
    """

    snippet_frames: int = 16
    snippet_rule: SnippetRule = "ceil-loop"
    resize: int | tuple[int, int] = 256
    crop_size: int = 224
    crops: CropOrder = "torchvision-ten"
    mean: float = 0.0
    std: float = 1.0
    channel_order: ChannelOrder = "rgb"

    @property
    def crop_count(self) -> int:
        return {"torchvision-ten": 10, "center-first-ten": 10, "center-first-five": 5, "center": 1,
                "caffe-center": 1}[self.crops]


class Extractor(abc.ABC):
    """Base class of feature extractors. Subclasses set ``Config`` (a frozen dataclass of all options, the open
    points of the published pipeline among them), `layout` and `head_keys`, and implement `preprocessing`,
    `feature_dim` and `build`; they may override `inference_network`."""

    Config: ClassVar[type]
    #: The file layout of the features this network was published with (``--layout`` may choose the other).
    layout: ClassVar[FileLayout]
    #: The keys a public checkpoint holds beyond the network (its classifier head): dropped when loading.
    head_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any) -> None:
        self.config = config

    @abc.abstractmethod
    def preprocessing(self) -> Preprocessing:
        """The steps from frames to network input, as the published pipeline took them under these options."""

    @abc.abstractmethod
    def feature_dim(self) -> int:
        """D, the width of one crop's feature."""

    @abc.abstractmethod
    def build(self) -> nn.Module:
        """A fresh network (random weights): ``[B, 3, L, S, S]`` float, normalised, to ``[B, D]``; its
        ``state_dict`` names and shapes are those of the public checkpoint less `head_keys`."""

    def inference_network(self, network: nn.Module) -> nn.Module:
        """The loaded `network`, in eval mode, as extraction runs it: by default itself. An extractor may return a
        faster equivalent (e.g. BatchNorm folded into the convolution before it) whose features equal the
        network's to float32 rounding; its ``state_dict`` need not keep the checkpoint's names."""
        return network
