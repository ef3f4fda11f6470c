"""RTFM's 2048-d features: the I3D-ResNet50 of Tushar-N/pytorch-resnet3d, avgpool after layer4."""

from vadbench import hookimpl
from vadbench.extractors.i3d_r50.extractor import I3DR50


@hookimpl
def vadbench_register_extractors(register):
    register("i3d-r50", I3DR50)
