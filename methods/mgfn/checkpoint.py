"""The checkpoints of MGFN's public code (carolchenyx/MGFN. at 98e9389), loaded into `MGFNNet`.

The public ``main.py`` saves ``torch.save(model.state_dict(), ...pkl)`` of its ``mgfn``: ``to_tokens`` and
``to_mag`` (the feature and magnitude embeddings), ``stages.S.0`` (stage S's layers, each
``[conv3, block, feed-forward]``) and ``stages.S.1`` (the transition after it: channel norm, 1x1 conv),
``to_logits.0`` (the final LayerNorm) and ``fc``. The public channel norms keep their scale and shift as
``g`` and ``b`` of shape (1, d, 1); `ChannelNorm` holds them as ``weight`` and ``bias`` of shape (d,) (26
tensors at the published depths 3, 3, 2). Every other tensor keeps its name's leaf and its shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

#: Public module path -> `MGFNNet`'s, matched whole, the first that matches.
PUBLIC_MODULES = (
    (r"to_tokens", "embed"),
    (r"to_mag", "embed_magnitude"),
    (r"to_logits\.0", "norm"),
    (r"fc", "head"),
    (r"stages\.(\d+)\.1\.0", r"transitions.\1.norm"),
    (r"stages\.(\d+)\.1\.1", r"transitions.\1.project"),
    (r"stages\.(\d+)\.0\.layers\.(\d+)\.0", r"stages.\1.layers.\2.local"),
    (r"stages\.(\d+)\.0\.layers\.(\d+)\.1\.norm", r"stages.\1.layers.\2.block.norm"),
    (r"stages\.(\d+)\.0\.layers\.(\d+)\.1\.to_qkv", r"stages.\1.layers.\2.block.qkv"),
    (r"stages\.(\d+)\.0\.layers\.(\d+)\.1\.to_v", r"stages.\1.layers.\2.block.value"),
    (r"stages\.(\d+)\.0\.layers\.(\d+)\.1\.rel_pos", r"stages.\1.layers.\2.block.local"),
    (r"stages\.(\d+)\.0\.layers\.(\d+)\.1\.to_out", r"stages.\1.layers.\2.block.out"),
    (r"stages\.(\d+)\.0\.layers\.(\d+)\.2\.0", r"stages.\1.layers.\2.feed_forward.norm"),
    (r"stages\.(\d+)\.0\.layers\.(\d+)\.2\.1", r"stages.\1.layers.\2.feed_forward.expand"),
    (r"stages\.(\d+)\.0\.layers\.(\d+)\.2\.4", r"stages.\1.layers.\2.feed_forward.project"),
)
#: The public channel norm's parameters -> `ChannelNorm`'s.
CHANNEL_NORM = {"g": "weight", "b": "bias"}


def vadbench_name(public: str) -> str:
    """The `MGFNNet` name of a public state_dict key: its module path mapped, a channel norm's ``g`` and ``b``
    named ``weight`` and ``bias``; a key of no public module passes unchanged (so that the strict load names it)."""
    module, _, leaf = public.rpartition(".")
    for pattern, replacement in PUBLIC_MODULES:
        match = re.fullmatch(pattern, module)
        if match is not None:
            return f"{match.expand(replacement)}.{CHANNEL_NORM.get(leaf, leaf)}"
    return public


def imported(public: str, tensor: torch.Tensor) -> tuple[str, torch.Tensor]:
    """The `MGFNNet` name and value of one public state_dict entry: a channel norm's (1, d, 1) ``g`` or ``b``
    becomes a (d,) ``weight`` or ``bias``."""
    name = vadbench_name(public)
    leaf = public.rpartition(".")[2]
    if name != public and leaf in CHANNEL_NORM and tensor.dim() == 3 and tensor.shape[0] == tensor.shape[2] == 1:
        tensor = tensor.reshape(-1)
    return name, tensor


def import_public_checkpoint(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict the public code saved, under `MGFNNet`'s names and shapes (the `PublicCheckpoint` of
    MGFN)."""
    return dict(imported(name, tensor) for name, tensor in state.items())
