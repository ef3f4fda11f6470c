"""Range checks shared by the built-in methods' ``Config.__post_init__``.

Errors name the option, because the registry shows them to a user who typed ``name=value``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def check_options(
    config: Any,
    *,
    positive: Iterable[str] = (),
    non_negative: Iterable[str] = (),
    probability: Iterable[str] = (),
    choices: Mapping[str, Iterable[str]] | None = None,
) -> None:
    """Raise ValueError naming the first option of `config` outside its allowed range."""
    for name in positive:
        if not getattr(config, name) > 0:
            raise ValueError(f"option {name!r} must be > 0, got {getattr(config, name)!r}")
    for name in non_negative:
        if not getattr(config, name) >= 0:
            raise ValueError(f"option {name!r} must be >= 0, got {getattr(config, name)!r}")
    for name in probability:
        if not 0 <= getattr(config, name) < 1:
            raise ValueError(f"option {name!r} must be in [0, 1), got {getattr(config, name)!r}")
    for name, allowed in (choices or {}).items():
        value, allowed = getattr(config, name), tuple(allowed)
        if value not in allowed:
            raise ValueError(f"option {name!r} must be one of {', '.join(allowed)}, got {value!r}")


def check_input_shape(crops: int, feature_dim: int) -> None:
    """Refuse feature shapes no model can be built for (``Method.build`` arguments)."""
    if crops < 1 or feature_dim < 1:
        raise ValueError(f"need at least one crop and one feature dimension, got C={crops}, D={feature_dim}")
