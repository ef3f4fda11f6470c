"""Built-in method plugin ``ur-dmu``: Dual Memory Units with Uncertainty Regulation.

Zhou, Yu, Yang: "Dual Memory Units with Uncertainty Regulation for Weakly Supervised Video Anomaly
Detection", AAAI 2023 (arXiv 2302.05160). Public code: henrryzh1/UR-DMU. The DIFFERENCES between the
paper, the public code and vadbench are listed in `vadbench.methods.ur_dmu.method`.

No presets: the public code trains UCF-Crime and XD-Violence with one model, loss and optimiser
(METHODS.md section 1.9); its per-dataset differences (list split, test batching, selection metric) are
not method options.
"""

from collections.abc import Callable

from vadbench import hookimpl
from vadbench.methods.ur_dmu.method import URDMU, URDMUConfig

__all__ = ["URDMU", "URDMUConfig", "vadbench_register_methods"]


@hookimpl
def vadbench_register_methods(register: Callable[..., None]) -> None:
    register("ur-dmu", URDMU)
