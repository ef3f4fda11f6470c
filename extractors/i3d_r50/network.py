"""The I3D-ResNet50 ("I3Res50") whose pooled layer4 output is RTFM's 2048-d snippet feature.

RTFM names Tushar-N/pytorch-resnet3d as its feature network. The public code at commit
8d3e1da2c2bb77831ea40113ea2914b8c7ba733b (models/resnet.py, a port of the Caffe2 I3D of
facebookresearch/video-nonlocal-net) builds it; this module builds the same network with the same
state_dict names and shapes, so that the public converted checkpoints (``i3d_r50_kinetics.pth``,
``i3d_r50_nl_kinetics.pth``) load into it unchanged once their classifier head (`HEAD_KEYS`) is dropped.
Checkpoints written by the public converter hold no ``num_batches_tracked`` entries; torch's BatchNorm fills
those in when a plain dict is loaded, so such a file still loads with ``strict=True``.

What the public code at that commit does, and this module therefore does:

- stem: Conv3d(3, 64, kernel (5, 7, 7), stride (2, 2, 2), padding (2, 3, 3), no bias), BatchNorm3d, ReLU,
  MaxPool3d(kernel (2, 3, 3), stride (2, 2, 2), no padding);
- four stages of 3, 4, 6, 3 bottleneck blocks of 64, 128, 256, 512 inner channels (4x that out), with a
  MaxPool3d(kernel (2, 1, 1), stride (2, 1, 1)) between the first and the second stage;
- a bottleneck's first convolution is temporal, kernel (3, 1, 1) padded (1, 0, 0), where the stage's pattern
  says so ([1, 1, 1], [1, 0, 1, 0], [1, 0, 1, 0, 1, 0], [0, 1, 0]) and pointwise otherwise; its second one,
  kernel (1, 3, 3) padded (0, 1, 1), carries the stage's spatial stride (1, 2, 2, 2) in the first block; its
  third is pointwise; the first block of each stage projects its input with a strided pointwise
  Conv3d + BatchNorm3d ("downsample"); no convolution of a bottleneck has a bias; the ReLU follows the sum;
  the ReLUs and the sum run in place, as there (``nn.ReLU(inplace=True)``, ``out += residual``: a quarter of a
  forward's CPU time on one thread is the kernel handing fresh memory to each new activation map);
- the non-local variant (``i3_res50_nl``) appends a non-local block ("nl") to every second block of the
  second and third stages (blocks 1 and 3 of layer2, 1, 3 and 5 of layer3), after the block's final ReLU;
- every BatchNorm has torch's defaults (eps 1e-5, momentum 0.1); in eval mode they use their running
  statistics, as in the public evaluation (``net.eval()``);
- the feature is the AdaptiveAvgPool3d((1, 1, 1)) output after layer4, before the public head's dropout and
  400-way ``fc`` (Tushar-N's own advice for features, pytorch-resnet3d issue 12), which this module omits.

For a [3, 16, 224, 224] clip the time axis goes 16 -> 8 (stem convolution) -> 4 (first pool) -> 2 (second
pool), the spatial ones 224 -> 112 (stem convolution) -> 55 (first pool) -> 28 -> 14 -> 7 (layer2..4): layer4
gives [2048, 2, 7, 7].
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

#: What a public converted checkpoint holds beyond this network: the Kinetics-400 classifier.
HEAD_KEYS = ("fc.weight", "fc.bias")

#: Bottleneck blocks per stage, and for each block whether its first convolution is temporal (the public
#: code's ``temp_conv`` lists).
TEMPORAL_PATTERN = ((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0))
#: Inner channels of each stage, in units of `width` (the published network: width 64).
STAGE_PLANES = (1, 2, 4, 8)
#: Spatial stride of each stage's first block.
STAGE_STRIDES = (1, 2, 2, 2)
#: Stages (1-based, as layer1..layer4) that hold non-local blocks in the non-local variant.
NON_LOCAL_STAGES = (2, 3)
EXPANSION = 4
#: (convolution, BatchNorm) attribute pairs of one module where the BatchNorm reads the convolution's output and
#: nothing else does: the stem and bottleneck convolutions, the projection (``downsample.0``, ``.1``) and the
#: non-local block's ``out``, ``bn``.
CONV_BN_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("0", "1"), ("out", "bn"))


def conv_bn(in_channels: int, out_channels: int, kernel: tuple[int, int, int], stride: tuple[int, int, int],
            padding: tuple[int, int, int]) -> tuple[nn.Conv3d, nn.BatchNorm3d]:
    """A bias-free convolution and the BatchNorm after it (torch's default eps and momentum)."""
    conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False)
    return conv, nn.BatchNorm3d(out_channels)


class NonLocal(nn.Module):
    """The embedded-Gaussian non-local block of the public code, with its names (theta, phi, g, out, bn).

    Queries (``theta``) come from every position, keys (``phi``) and values (``g``) from the input
    max-pooled by (1, 2, 2); the attention is softmax(theta^T phi / sqrt(inner)); the attended values go
    through ``out`` (pointwise, with bias) and ``bn`` and are added to the input. The four convolutions are
    pointwise with a bias; the inner width is half the channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = channels // 2
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Conv3d(channels, inner, 1)
        self.g = nn.Conv3d(channels, inner, 1)
        self.out = nn.Conv3d(inner, channels, 1)
        self.bn = nn.BatchNorm3d(channels)
        self.pool = nn.MaxPool3d((1, 2, 2), stride=(1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(x)
        query = self.theta(x)
        key, value = self.phi(pooled).flatten(2), self.g(pooled).flatten(2)
        inner = query.shape[1]
        attention = torch.softmax(query.flatten(2).transpose(1, 2) @ key * inner**-0.5, dim=-1)
        attended = (value @ attention.transpose(1, 2)).view(query.shape)
        return self.bn(self.out(attended)) + x


class Bottleneck(nn.Module):
    """One bottleneck block: (temporal or pointwise) 1x1 -> 1x3x3 (strided) -> 1x1, plus the shortcut,
    then ReLU, then the optional non-local block ``nl``."""

    def __init__(self, in_channels: int, planes: int, *, temporal: bool, stride: int, non_local: bool) -> None:
        super().__init__()
        out_channels = planes * EXPANSION
        self.conv1, self.bn1 = conv_bn(in_channels, planes, (1 + 2 * temporal, 1, 1), (1, 1, 1),
                                       (int(temporal), 0, 0))
        self.conv2, self.bn2 = conv_bn(planes, planes, (1, 3, 3), (1, stride, stride), (0, 1, 1))
        self.conv3, self.bn3 = conv_bn(planes, out_channels, (1, 1, 1), (1, 1, 1), (0, 0, 0))
        projects = stride != 1 or in_channels != out_channels
        self.downsample = (nn.Sequential(*conv_bn(in_channels, out_channels, (1, 1, 1), (1, stride, stride),
                                                  (0, 0, 0))) if projects else None)
        self.nl = NonLocal(out_channels) if non_local else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu_(self.bn1(self.conv1(x)))
        out = torch.relu_(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        out = torch.relu_(out.add_(shortcut))
        return out if self.nl is None else self.nl(out)


def make_stage(in_channels: int, planes: int, pattern: tuple[int, ...], stride: int, *,
               non_local: bool) -> nn.Sequential:
    """One stage: a block per entry of its temporal pattern, the first one strided (and projecting), a
    non-local block after every second one if `non_local` (blocks 1, 3, 5, as the public code places them)."""
    blocks = []
    for index, temporal in enumerate(pattern):
        blocks.append(Bottleneck(in_channels, planes, temporal=bool(temporal), stride=stride if index == 0 else 1,
                                 non_local=non_local and index % 2 == 1))
        in_channels = planes * EXPANSION
    return nn.Sequential(*blocks)


class I3DResNet50(nn.Module):
    """I3D-ResNet50 up to the pooled layer4 output: clips [B, 3, T, H, W] (normalised) -> features [B, 32*width].

    ``non_local`` builds the public ``i3_res50_nl`` instead of ``i3_res50``. ``width`` scales every channel
    count (64: the published network, 2048-d features; a small width runs the same layout quickly). Use it in
    eval mode (BatchNorm on its running statistics).
    """

    def __init__(self, *, non_local: bool = False, width: int = 64) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv_bn(3, width, (5, 7, 7), (2, 2, 2), (2, 3, 3))
        self.maxpool1 = nn.MaxPool3d((2, 3, 3), stride=(2, 2, 2))
        self.maxpool2 = nn.MaxPool3d((2, 1, 1), stride=(2, 1, 1))
        stages = []
        channels = width
        for stage, (pattern, planes, stride) in enumerate(
                zip(TEMPORAL_PATTERN, STAGE_PLANES, STAGE_STRIDES, strict=True), start=1):
            stages.append(make_stage(channels, planes * width, pattern, stride,
                                     non_local=non_local and stage in NON_LOCAL_STAGES))
            channels = planes * width * EXPANSION
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.feature_dim = channels

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.maxpool1(torch.relu_(self.bn1(self.conv1(clips))))
        x = self.maxpool2(self.layer1(x))
        x = self.layer4(self.layer3(self.layer2(x)))
        return self.avgpool(x).flatten(1)


def fold_batchnorm(network: I3DResNet50) -> I3DResNet50:
    """`network` (in eval mode) with every BatchNorm folded into the convolution before it, in place.

    An eval-mode BatchNorm is an affine map per channel, so ``bn(conv(x))`` is one convolution with scaled weights
    and a bias (torch's ``fuse_conv_bn_eval``); the BatchNorm becomes an identity. The features equal the
    unfolded network's to float32 rounding, and a pass over every activation map is saved per convolution:
    BatchNorm took 19% of a channels-last forward of 16 clips on one CPU thread (torch's profiler). The
    state_dict loses the BatchNorm entries, so fold only after loading the weights.
    """
    if network.training:
        raise ValueError("fold_batchnorm needs the network in eval mode (BatchNorm on its running statistics)")
    for module in list(network.modules()):
        for conv_name, bn_name in CONV_BN_PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, nn.Conv3d) and isinstance(bn, nn.BatchNorm3d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return network
