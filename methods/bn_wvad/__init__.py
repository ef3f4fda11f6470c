"""Built-in method plugin ``bn-wvad``: BatchNorm-based weakly supervised video anomaly detection.

Zhou, Qu, Xu, Shen, Song, Shen: "BatchNorm-based Weakly Supervised Video Anomaly Detection", arXiv
2311.15367 (IEEE TCSVT 2024, doi 10.1109/TCSVT.2024.3450734); public
code github.com/cool-xuan/BN-WVAD (read at commit 4fa3a5dfb139d5c97a0511016110f15058d7c235). The
objective, the scoring and the DIFFERENCES from the paper and the public code are in
`vadbench.methods.bn_wvad.method`.
"""

from collections.abc import Callable

from vadbench import hookimpl
from vadbench.methods.bn_wvad.method import BNWVAD, BNWVADConfig

__all__ = ["BNWVAD", "BNWVADConfig", "vadbench_register_methods"]


@hookimpl
def vadbench_register_methods(register: Callable[..., None]) -> None:
    # One registration: the public code has XD-Violence settings only (see DIFFERENCES), so no presets.
    register("bn-wvad", BNWVAD)
