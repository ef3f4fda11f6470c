"""vadbench: a pluggable benchmark suite for weakly-supervised video anomaly detection."""

from typing import Any

import pluggy

__version__ = "0.1.0"

#: Decorate plugin hook implementations with this marker.
hookimpl = pluggy.HookimplMarker("vadbench")

__all__ = ["__version__", "hookimpl", "results"]


def __getattr__(name: str) -> Any:
    """`vadbench.results` (`vadbench.report.store.results`: a run store as a pandas DataFrame), imported when
    first used, so that ``import vadbench`` (every command) imports neither pandas nor the report path."""
    if name == "results":
        from vadbench.report.store import results

        return results
    raise AttributeError(f"module 'vadbench' has no attribute {name!r}")
