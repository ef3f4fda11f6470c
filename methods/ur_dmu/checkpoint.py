"""UR-DMU's public checkpoints: the state dict ucf_main.py and xd_main.py save (``torch.save(net.state_dict(),
...)`` of the public ``WSAD``, henrryzh1/UR-DMU at 40cfdf5), renamed into `URDMUNet`'s names.

The tensors load as they are: only their names differ (the test branch uses every one of them but
``encoder_var``, which the training branch reads and which loads too).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from vadbench.methods._shared.checkpoints import renamed
from vadbench.methods._shared.transformer import public_layer_prefixes

#: The public WSAD's names (model.py, memory.py) -> `URDMUNet`'s, as prefixes.
PUBLIC_NAMES = {
    "embedding.conv_1.0.": "embedding.conv.",
    **public_layer_prefixes("selfatt.layers", "transformer"),
    "Amemory.memory_block": "abnormal_memory.items",
    "Nmemory.memory_block": "normal_memory.items",
    "encoder_mu.0.": "encoder_mu.",
    "encoder_var.0.": "encoder_var.",
    "cls_head.mlp.": "classifier.",
}


def public_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A public UR-DMU checkpoint's tensors under `URDMUNet`'s names (other keys unchanged)."""
    return renamed(state, PUBLIC_NAMES)
