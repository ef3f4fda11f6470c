"""XD-Violence adapter.

P. Wu, J. Liu, Y. Shi, Y. Sun, F. Shao, Z. Wu, Z. Yang. "Not only Look, but also Listen: Learning
Multimodal Violence Detection under Weak Supervision." ECCV 2020. 4,754 videos from films, sports,
surveillance and more: 3,954 training (1,905 violent) and 800 test videos (500 violent), six violence
classes, with audio. Primary metric: frame-level average precision.
"""

from vadbench import hookimpl
from vadbench.datasets.xd_violence.adapter import XDViolence


@hookimpl
def vadbench_register_datasets(register):
    register("xd-violence", XDViolence)
