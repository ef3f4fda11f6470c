"""Weights files: read without running any code in them, and loaded into a model only when every key and shape
fits, so that a wrong file is one line that says what differs rather than a traceback or a silent partial load.

``weights_only=True`` unpickles tensors and plain containers only, so a checkpoint cannot run code; a file
that needs more (a pickled model object, custom classes) is refused. The public codes save their weights in a
few wrappings, all accepted: a bare state_dict, one under a ``state_dict`` entry, and DataParallel's
``module.`` prefixes. Used by `vadbench extract --weights` and by the weights of methods.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from vadbench.api.errors import UsageError
from vadbench.api.method import Method, PublicCheckpoint

#: Keys named in a refusal, per kind of difference.
_SHOWN = 3


def sha256(path: Path) -> str:
    """The file's SHA-256 (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state(path: Path, option: str) -> dict[str, torch.Tensor]:
    """The tensors of the checkpoint at `path` (named by `option` in errors), unwrapped: a state_dict, or one under
    a ``state_dict`` entry, with DataParallel's ``module.`` prefixes removed."""
    if not path.is_file():
        raise UsageError(f"{option} {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's UnpicklingError (code it refuses to run), zip, EOF and format errors
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{option} {path}: not a PyTorch checkpoint that loads with weights_only=True, i.e. without "
                         f"running code ({first})") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise UsageError(f"{option} {path}: expected a state_dict (names to tensors), got {type(state).__name__}")
    keys = [str(key) for key in state]
    strip = bool(keys) and all(key.startswith("module.") for key in keys)
    return {(key.removeprefix("module.") if strip else key): value for key, value in zip(keys, state.values(),
                                                                                           strict=True)}


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], what: str,
               origin: Mapping[str, str] | None = None) -> None:
    """Load `state` into `model` strictly, or refuse in one line beginning with `what` (the file and whose weights
    were expected) naming the keys missing, the keys unexpected and the shapes that differ, the last two by the
    file's own names (`origin`: the file's key of each key of an imported `state`). BatchNorm step counts may be
    missing (checkpoints saved before PyTorch 0.4 have none; inference never reads them)."""
    expected = model.state_dict()
    origin = origin or {}

    def named(key: str) -> str:
        return key if origin.get(key, key) == key else f"{origin[key]} (as {key})"

    missing = [key for key in expected if key not in state and not key.endswith("num_batches_tracked")]
    extra = [origin.get(key, key) for key in state if key not in expected]
    shapes = [f"{named(key)} {tuple(state[key].shape)} (model {tuple(value.shape)})"
              for key, value in expected.items() if key in state and state[key].shape != value.shape]
    problems = [f"{len(found)} {kind}: {', '.join(found[:_SHOWN])}{', ...' if len(found) > _SHOWN else ''}"
                for kind, found in (("keys missing", missing), ("unexpected keys", extra), ("shapes differ", shapes))
                if found]
    if problems:
        raise UsageError(f"{what}: {'; '.join(problems)}")
    model.load_state_dict({**expected, **{key: value.to(expected[key].dtype) for key, value in state.items()}},
                          strict=True)


def imported(importer: PublicCheckpoint, state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor],
                                                                                  dict[str, str]]:
    """`importer`'s state dict of `state`, and the key of `state` that each of its keys came from (importers rename
    key by key), so that a refusal can name the file's keys."""
    origin = {new: key for key, value in state.items() for new in importer({key: value})}
    return importer(state), origin


def public_model(method: Method, name: str, path: Path, crops: int, feature_dim: int,
                 read: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """The model of `method` (registered as `name`) for `crops` crops of `feature_dim` dimensions, in eval mode,
    with the weights of a checkpoint that the method's public code saved, through its declared importer (`read`:
    the file's tensors when the caller has read them already)."""
    importer = method.declarations().public_checkpoint
    if importer is None:
        raise UsageError(f"--checkpoint {path}: method {name!r} declares no public checkpoint format")
    model = method.build(crops, feature_dim)
    state, origin = imported(importer, read if read is not None else read_state(path, "--checkpoint"))
    load_state(model, state, f"--checkpoint {path}: not a checkpoint of {name} for {crops} crops of {feature_dim} "
               "dimensions in its public code's format (with these options)", origin)
    return model.eval()
