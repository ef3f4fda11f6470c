"""Shared fixtures: small benchmarks and a plugin set that loads only the built-ins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

#: The real annotation and split files (absent outside the development workspace: tests skip).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

#: Synthetic options small enough for a run in about a second on a laptop CPU.
TINY_SYNTHETIC = {
    "train_normal": 8, "train_abnormal": 8, "test_normal": 6, "test_abnormal": 6,
    "min_length": 12, "max_length": 24, "feature_dim": 16, "crops": 2, "mu": 4, "steps": 20,
}


@pytest.fixture
def tiny_synthetic_args() -> list[str]:
    """`--set` arguments that shrink the synthetic benchmark for CLI tests."""
    return [arg for key, value in TINY_SYNTHETIC.items() for arg in ("--set", f"dataset.{key}={value}")]


@pytest.fixture
def contract_plugin(monkeypatch):
    """The plugin of tests/contract_v2_plugin.py, loaded as a third-party plugin is."""
    monkeypatch.setenv("VADBENCH_PLUGINS", "contract_v2_plugin")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    from vadbench.plugins.manager import get_plugins

    get_plugins.cache_clear()
    import contract_v2_plugin

    contract_v2_plugin.SEEN["batches"].clear()
    contract_v2_plugin.SEEN["lr"].clear()
    contract_v2_plugin.SEEN["prompts"].clear()
    yield contract_v2_plugin
    get_plugins.cache_clear()


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread for a test module (its tests ask for it with ``pytestmark``): tiny tensors gain
    nothing from threads, on a shared 2-core machine their spin-waits cost seconds, and sums compared
    with a public code's reference depend on the thread count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

