"""Built-in method plugin ``ur-dmu``: Dual Memory Units with Uncertainty Regulation.

Zhou, Yu, Yang: "Dual Memory Units with Uncertainty Regulation for Weakly Supervised Video Anomaly
Detection", AAAI 2023 (arXiv 2302.05160). Public code: henrryzh1/UR-DMU. The DIFFERENCES between the
paper, the public code and vadbench are listed in `vadbench.methods.ur_dmu.method`.

No presets: the public code (henrryzh1/UR-DMU at 40cfdf5) trains UCF-Crime and XD-Violence with one model,
loss and optimiser: its ucf_main.py and xd_main.py differ only in the dataset class and list split, the test
batching (one crop per forward, or a 5-crop batch) and the selection metric (AUC, or AP), none of which is a
method option.
"""

from collections.abc import Callable

from vadbench import hookimpl
from vadbench.methods.ur_dmu.method import URDMU, URDMUConfig

__all__ = ["URDMU", "URDMUConfig", "vadbench_register_methods"]


@hookimpl
def vadbench_register_methods(register: Callable[..., None]) -> None:
    register("ur-dmu", URDMU)
