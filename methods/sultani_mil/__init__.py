"""Built-in method plugin ``sultani-mil``: deep MIL ranking.

Sultani, Chen, Shah: "Real-world Anomaly Detection in Surveillance Videos", CVPR 2018.
"""

from collections.abc import Callable

from vadbench import hookimpl
from vadbench.methods.sultani_mil.method import SultaniMIL, SultaniMILConfig

__all__ = ["SultaniMIL", "SultaniMILConfig", "vadbench_register_methods"]


@hookimpl
def vadbench_register_methods(register: Callable[..., None]) -> None:
    register("sultani-mil", SultaniMIL)
