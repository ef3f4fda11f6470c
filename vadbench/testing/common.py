"""What every check shares: the seed and the tolerance."""

from __future__ import annotations

import numpy as np

#: The seed of every check: a failure reproduces.
SEED = 0
#: Largest score change that padding may cause, and that float rounding may cause between executors.
ATOL = 1e-5


def close(found: np.ndarray | float, expected: np.ndarray | float) -> bool:
    """Equal within `ATOL`, relative to the values' size where they exceed 1 (magnitudes may)."""
    return bool(np.all(np.abs(np.subtract(found, expected)) <= ATOL * np.maximum(1.0, np.abs(expected))))
