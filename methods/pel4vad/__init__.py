"""Built-in method plugin ``pel4vad``: Prompt-Enhanced Learning with Temporal Context Aggregation.

Pu, Wu, Yang, Wang: "Learning Prompt-Enhanced Context Features for Weakly-Supervised Video Anomaly
Detection", IEEE TIP 2024 (arXiv 2306.14451). Public code: github.com/yujiangpu20/PEL4VAD (eeb31f4).
The DIFFERENCES between the paper, the public code and vadbench are listed in
`vadbench.methods.pel4vad.method`.

Presets: ``pel4vad`` is the code's UCF-Crime configuration; ``pel4vad-xd`` and ``pel4vad-sh`` its
XD-Violence and ShanghaiTech configurations (``configs.py``), with ``steps`` = 50 epochs of the published
training lists.
"""

from collections.abc import Callable

from vadbench import hookimpl
from vadbench.methods.pel4vad.method import PEL4VAD, PEL4VADConfig

__all__ = ["PRESETS", "PEL4VAD", "PEL4VADConfig", "vadbench_register_methods"]

#: Per-dataset configurations of the public ``configs.py``: name -> (description, options).
PRESETS = {
    "pel4vad-xd": (
        "PEL4VAD, XD-Violence configuration (no TCA norm, t_step 3, fixed smoothing 8)",
        {"steps": 7750, "window": 9, "gamma": 0.06, "beta": 0.02, "norm": False, "t_step": 3,
         "temperature": 0.05, "lamda": 1.0, "smoothing": "fixed", "kappa": 8},
    ),
    "pel4vad-sh": (
        "PEL4VAD, ShanghaiTech configuration (window 5, t_step 3, lamda 9, slide smoothing 3)",
        {"steps": 950, "window": 5, "gamma": 0.08, "beta": 0.1, "norm": True, "t_step": 3,
         "temperature": 0.2, "lamda": 9.0, "smoothing": "slide", "kappa": 3},
    ),
}


@hookimpl
def vadbench_register_methods(register: Callable[..., None]) -> None:
    register("pel4vad", PEL4VAD)
    for name, (description, options) in PRESETS.items():
        register(name, PEL4VAD, description, **options)
