"""The user's weights file: loaded without running any of its code, checked key by key against the network, and
named by its SHA-256 in the record of the features made with it.

Nothing is downloaded: the public checkpoints are the user's files, loaded under their own key names (a
converted Tushar-N ``.pth``, piergiaj's ``rgb_imagenet.pt``). ``weights_only=True`` unpickles tensors and
plain containers only, so a checkpoint cannot run code. A file for another network, or for another width or
variant, is refused in one line that says which keys are missing or extra and which shapes differ.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from vadbench.api.errors import UsageError

_SHOWN = 3


def sha256(path: Path) -> str:
    """The file's SHA-256 (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file: a state_dict, or a dict holding one under ``state_dict``."""
    if not path.is_file():
        raise UsageError(f"--weights {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"--weights {path}: not a PyTorch checkpoint that loads with weights_only=True ({first})") \
            from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise UsageError(f"--weights {path}: expected a state_dict (names to tensors), got {type(state).__name__}")
    return {str(key): value for key, value in state.items()}


def load_weights(network: nn.Module, path: Path, head_keys: tuple[str, ...], extractor: str) -> None:
    """Load `path` into `network` strictly, after dropping the checkpoint's `head_keys`; refuse a mismatch."""
    state = {key: value for key, value in read_state(path).items() if key not in head_keys}
    expected = network.state_dict()
    # Checkpoints saved before PyTorch 0.4 have no BatchNorm step counts, which inference never reads.
    missing = [key for key in expected if key not in state and not key.endswith("num_batches_tracked")]
    extra = [key for key in state if key not in expected]
    shapes = [f"{key} {tuple(state[key].shape)} (network {tuple(value.shape)})"
              for key, value in expected.items() if key in state and state[key].shape != value.shape]
    problems = [f"{len(found)} {what}: {', '.join(found[:_SHOWN])}{', ...' if len(found) > _SHOWN else ''}"
                for what, found in (("keys missing", missing), ("unexpected keys", extra), ("shapes differ", shapes))
                if found]
    if problems:
        raise UsageError(f"--weights {path}: not weights of {extractor} with these options: {'; '.join(problems)}")
    network.load_state_dict({**expected, **{key: value.to(expected[key].dtype) for key, value in state.items()}},
                            strict=True)
