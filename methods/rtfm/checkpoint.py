"""The checkpoints of RTFM's public code (tianyu0207/RTFM at cf938f4), loaded into `RTFMNet`.

The public ``main.py`` saves ``torch.save(model.state_dict(), ...pkl)`` of its ``Model``: the MTN is
``Aggregate`` (``conv_1``..``conv_3`` the PDC branches, ``conv_4`` the TSA's reduction, ``non_local`` its
non-local block with ``W`` the output projection, ``conv_5`` the fuse conv), then ``fc1``..``fc3``. Every
tensor keeps its shape; only the module paths differ. The public model always has both PDC and TSA, so only
configurations with both load these files (`RTFM.declarations`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

#: Public module path prefix -> `RTFMNet`'s (the first that matches; ``non_local.W.`` before ``non_local.``).
PUBLIC_PREFIXES = (
    ("Aggregate.conv_1.", "mtn.pdc.branches.0."),
    ("Aggregate.conv_2.", "mtn.pdc.branches.1."),
    ("Aggregate.conv_3.", "mtn.pdc.branches.2."),
    ("Aggregate.conv_4.", "mtn.tsa.reduce."),
    ("Aggregate.conv_5.", "mtn.fuse."),
    ("Aggregate.non_local.W.", "mtn.tsa.non_local.project."),
    ("Aggregate.non_local.", "mtn.tsa.non_local."),
    ("fc1.", "classifier.0."),
    ("fc2.", "classifier.3."),
    ("fc3.", "classifier.6."),
)


def vadbench_name(public: str) -> str:
    """The `RTFMNet` name of a public state_dict key; a key of no public module passes unchanged (so that the
    strict load names it)."""
    for theirs, ours in PUBLIC_PREFIXES:
        if public.startswith(theirs):
            return ours + public.removeprefix(theirs)
    return public


def import_public_checkpoint(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict the public code saved, under `RTFMNet`'s names (the `PublicCheckpoint` of RTFM)."""
    return {vadbench_name(name): tensor for name, tensor in state.items()}
