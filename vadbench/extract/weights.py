"""The user's weights file for an extractor: the public checkpoints under their own key names (a converted
Tushar-N ``.pth``, piergiaj's ``rgb_imagenet.pt``), less the classifier head the extractor declares, checked key
by key (`vadbench.engine.checkpoints`). Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from vadbench.engine.checkpoints import load_state, read_state


def load_weights(network: nn.Module, path: Path, head_keys: tuple[str, ...], extractor: str) -> None:
    """Load `path` into `network` strictly, after dropping the checkpoint's `head_keys`; refuse a mismatch."""
    state = {key: value for key, value in read_state(path, "--weights").items() if key not in head_keys}
    load_state(network, state, f"--weights {path}: not weights of {extractor} with these options")
