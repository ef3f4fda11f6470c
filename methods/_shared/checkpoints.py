"""Renaming the keys of a public code's checkpoint into a vadbench model's: what every method's importer of
its public checkpoints (`vadbench.api.method.Declarations.public_checkpoint`) does.

An importer renames the keys it knows and passes every other key through unchanged, so that the strict load
after it (`vadbench.engine.checkpoints.load_state`) names in one line what does not fit, and a checkpoint of
another method is refused there rather than by a KeyError here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

#: In a public prefix, what stands for a layer number (carried over to the same place of our prefix).
LAYER = "{n}"


def prefix_pattern(prefix: str) -> re.Pattern[str]:
    """A public prefix (``selfatt.layers.{n}.0.norm.``) as a pattern matching the beginning of a key."""
    return re.compile(re.escape(prefix).replace(re.escape(LAYER), r"(?P<n>\d+)"))


def renamed(state: Mapping[str, torch.Tensor], prefixes: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """`state` with the beginning of each key renamed by the first of `prefixes` (public prefix -> ours, where
    ``{n}`` stands for a layer number) that matches it; a key that none matches keeps its name."""
    patterns = [(prefix_pattern(public), ours) for public, ours in prefixes.items()]

    def name(key: str) -> str:
        for pattern, ours in patterns:
            found = pattern.match(key)
            if found:
                return ours.replace(LAYER, found.groupdict().get("n") or "") + key[found.end():]
        return key

    return {name(key): value for key, value in state.items()}
