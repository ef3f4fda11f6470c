"""Built-in method plugin ``rtfm``: Robust Temporal Feature Magnitude learning.

Tian, Pang, Chen, Singh, Verjans, Carneiro: "Weakly-supervised Video Anomaly Detection with Robust
Temporal Feature Magnitude Learning", ICCV 2021 (arXiv 2101.10030).
"""

from collections.abc import Callable

from vadbench import hookimpl
from vadbench.methods.rtfm.method import RTFM, RTFMConfig

__all__ = ["ABLATIONS", "RTFM", "RTFMConfig", "vadbench_register_methods"]


#: The ablation variants of the paper's Table 5: name -> (use_pdc, use_tsa, use_fm, description).
#: Without PDC and TSA the MTN is one 1x1 conv; without FM the model is trained with Sultani et al.'s
#: MIL ranking objective instead of top-k feature-magnitude learning.
ABLATIONS = {
    "rtfm-baseline": (False, False, False, "RTFM ablation: 1x1 conv for PDC and TSA, MIL ranking loss"),
    "rtfm-pdc": (True, False, False, "RTFM ablation: PDC only, MIL ranking loss"),
    "rtfm-tsa": (False, True, False, "RTFM ablation: TSA only, MIL ranking loss"),
    "rtfm-pdc-tsa": (True, True, False, "RTFM ablation: PDC and TSA, MIL ranking loss"),
    "rtfm-fm": (False, False, True, "RTFM ablation: 1x1 conv for PDC and TSA, feature magnitudes"),
    "rtfm-pdc-fm": (True, False, True, "RTFM ablation: PDC only, feature magnitudes"),
    "rtfm-tsa-fm": (False, True, True, "RTFM ablation: TSA only, feature magnitudes"),
}


@hookimpl
def vadbench_register_methods(register: Callable[..., None]) -> None:
    register("rtfm", RTFM)
    for name, (use_pdc, use_tsa, use_fm, description) in ABLATIONS.items():
        register(name, RTFM, description, use_pdc=use_pdc, use_tsa=use_tsa, use_fm=use_fm)
