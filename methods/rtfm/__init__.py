"""Built-in method plugin ``rtfm``: Robust Temporal Feature Magnitude learning.

Tian, Pang, Chen, Singh, Verjans, Carneiro: "Weakly-supervised Video Anomaly Detection with Robust
Temporal Feature Magnitude Learning", ICCV 2021 (arXiv 2101.10030).
"""

from collections.abc import Callable

from vadbench import hookimpl
from vadbench.methods.rtfm.method import RTFM, RTFMConfig

__all__ = ["RTFM", "RTFMConfig", "vadbench_register_methods"]


@hookimpl
def vadbench_register_methods(register: Callable[..., None]) -> None:
    register("rtfm", RTFM)
