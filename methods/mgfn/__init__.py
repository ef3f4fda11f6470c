"""Built-in method plugin ``mgfn``: Magnitude-Contrastive Glance-and-Focus Network.

Chen, Liu, Zhang, Fok, Qi, Wu: "MGFN: Magnitude-Contrastive Glance-and-Focus Network for
Weakly-Supervised Video Anomaly Detection", AAAI 2023 (arXiv 2211.15098). See
`vadbench.methods.mgfn.method` for the objective and the DIFFERENCES from the paper and the public code.
"""

from collections.abc import Callable

from vadbench import hookimpl
from vadbench.methods.mgfn.method import MGFN, MGFNConfig

__all__ = ["MGFN", "MGFNConfig", "vadbench_register_methods"]


@hookimpl
def vadbench_register_methods(register: Callable[..., None]) -> None:
    register("mgfn", MGFN)
    register(
        "mgfn-original",
        MGFN,
        "MGFN with the authors' original regularisers (sparsity and smoothness on the abnormal scores), "
        "the version behind the paper's numbers",
        regularisers="original",
    )
