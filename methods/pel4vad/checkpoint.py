"""PEL4VAD's public checkpoints: the state dict main.py saves (``torch.save(model.state_dict(), ...)`` of the public
``XModel``, yujiangpu20/PEL4VAD at eeb31f4, as its released ``ckpt/*.pkl``), renamed into `PEL4VADNet`'s names.

The tensors load as they are: only their names differ (the classifier and the logit scale keep theirs).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from vadbench.methods._shared.checkpoints import renamed

#: The public XModel's names (model.py, modules.py, layers.py) -> `PEL4VADNet`'s, as prefixes.
PUBLIC_NAMES = {
    "self_attention.self_attn.q.": "attention.query.",
    "self_attention.self_attn.k.": "attention.key.",
    "self_attention.self_attn.v.": "attention.value.",
    "self_attention.self_attn.o.": "attention.out.",
    "self_attention.self_attn.alpha": "attention.alpha",
    "self_attention.loc_adj.": "distance.",
    "self_attention.norm.": "norm.",
    "self_attention.linear1.": "linear1.",
    "self_attention.linear2.": "linear2.",
}


def public_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A public PEL4VAD checkpoint's tensors under `PEL4VADNet`'s names (other keys unchanged)."""
    return renamed(state, PUBLIC_NAMES)
