"""vadbench: a pluggable benchmark suite for weakly-supervised video anomaly detection."""

import pluggy

__version__ = "0.1.0"

#: Decorate plugin hook implementations with this marker.
hookimpl = pluggy.HookimplMarker("vadbench")

__all__ = ["__version__", "hookimpl"]
