"""A method plugin for the executor tests: Sultani MIL that fails its first `failures` attempts.

Attempts are counted as files in the folder `state`, so the count is shared by the driver and every
worker process. Workers load this module as a plugin through ``VADBENCH_PLUGINS=flaky_plugin``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from vadbench import hookimpl
from vadbench.methods.sultani_mil import SultaniMIL, SultaniMILConfig


@dataclass(frozen=True)
class FlakyConfig(SultaniMILConfig):
    """state: folder counting the attempts; failures: attempts that fail; crash: fail by killing the process."""

    state: str = ""
    failures: int = 1
    crash: bool = False


class Flaky(SultaniMIL):
    """Sultani MIL that fails its first attempts (executor tests)."""

    Config = FlakyConfig
    config: FlakyConfig

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        state = Path(self.config.state)
        attempt = len(list(state.iterdir())) + 1
        (state / f"attempt-{attempt}").touch()
        if attempt <= self.config.failures:
            if self.config.crash:
                os._exit(3)  # a lost worker: no exception, no result
            raise RuntimeError(f"flaky: attempt {attempt} fails on purpose")
        return super().build(crops, feature_dim)


@hookimpl
def vadbench_register_methods(register: Callable[..., None]) -> None:
    register("flaky", Flaky)
