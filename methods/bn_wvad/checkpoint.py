"""BN-WVAD's public checkpoints: the state dict main.py saves (``torch.save(net.state_dict(), ...)`` of the public
``WSAD``, cool-xuan/BN-WVAD at 4fa3a5d), renamed into `BNWVADNet`'s names.

The head's BatchNorm running means and variances are the detector (its anchors and scales at test time):
they are buffers of the state dict and load with the parameters, under the same renaming.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from vadbench.methods._shared.checkpoints import renamed
from vadbench.methods._shared.transformer import public_layer_prefixes

#: The public WSAD's names (models/model.py, models/normal_head.py) -> `BNWVADNet`'s, as prefixes.
PUBLIC_NAMES = {
    "embedding.conv_1.0.": "embedding.",
    **public_layer_prefixes("selfatt.layers", "layers"),
    "normal_head.": "head.",
}


def public_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A public BN-WVAD checkpoint's tensors (BatchNorm statistics included) under `BNWVADNet`'s names (other
    keys unchanged)."""
    return renamed(state, PUBLIC_NAMES)
