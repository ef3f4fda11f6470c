"""Sultani et al.'s 4096-d features: C3D (Sports-1M) fc6 after its ReLU, one centre crop per 16-frame clip."""

from vadbench import hookimpl
from vadbench.extractors.c3d.extractor import C3DFc6


@hookimpl
def vadbench_register_extractors(register):
    register("c3d", C3DFc6)
