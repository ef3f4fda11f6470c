"""A run's trained weights, kept beside its result (`vadbench run --save-model`) and brought back as a model.

``model.pt`` is `torch.save` of the evaluated model's state dict, tensors only, so that it loads with
``weights_only=True`` (no code runs when it is read); ``model.json`` beside it says what the weights are: the
method and its options (with the registry's defaults they rebuild the model), its revision, the data it was
trained on (dataset, fingerprint, feature set, crops C and dimension D) and the run key. A model is written
before the run's ``result.json``, which marks the run finished, so a finished run that asked for its weights
has them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vadbench.api.errors import UsageError
from vadbench.api.method import Method
from vadbench.api.types import RunResult
from vadbench.data.atomic import atomic_write
from vadbench.engine.checkpoints import load_state, read_state
from vadbench.plugins.manager import Plugins

MODEL_FILE = "model.pt"
MODEL_RECORD = "model.json"


def write_model(folder: Path, result: RunResult) -> None:
    """`result`'s weights and their record into the run folder `folder` (each file atomically)."""
    spec, config = result.spec, result.config
    record = {
        "key": spec.key, "method": spec.method, "method_options": spec.method_options,
        "method_revision": spec.method_revision, "dataset": spec.dataset, "data": spec.data,
        "feature_set": config.get("benchmark.feature_set"), "crops": config.get("benchmark.crops"),
        "feature_dim": config.get("benchmark.feature_dim"), "parameters": config.get("parameters"),
        "format": "torch.save of a state dict of tensors; torch.load(path, weights_only=True) reads it",
    }
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / MODEL_FILE, lambda stream: torch.save(result.weights, stream))
    text = json.dumps(record, indent=2, sort_keys=True).encode()
    atomic_write(folder / MODEL_RECORD, lambda stream: stream.write(text))


def has_model(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file() and (folder / MODEL_RECORD).is_file()


@dataclass(frozen=True)
class SavedModel:
    """A model with its weights, and what they were trained on: the record of ``model.json``."""

    name: str
    method: Method
    model: nn.Module
    record: dict[str, Any]

    @property
    def crops(self) -> int:
        return int(self.record["crops"])

    @property
    def feature_dim(self) -> int:
        return int(self.record["feature_dim"])


def saved_model(plugins: Plugins, folder: Path) -> SavedModel:
    """The model stored in run folder `folder` by ``--save-model``, in eval mode; one-line errors name what is
    missing (a run without saved weights, a method not installed, a method whose code changed since)."""
    if not (folder / MODEL_RECORD).is_file():
        raise UsageError(f"--run {folder}: no saved weights ({MODEL_FILE}, {MODEL_RECORD}); run it again with "
                         "vadbench run --save-model")
    try:
        record = json.loads((folder / MODEL_RECORD).read_text())
        name, options, revision = record["method"], record["method_options"], int(record["method_revision"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{folder / MODEL_RECORD}: unreadable record of saved weights ({error})") from None
    method = plugins.methods.create(name, options)
    if type(method).revision != revision:
        raise UsageError(f"--run {folder}: saved by {name} revision {revision}, installed is revision "
                         f"{type(method).revision} (its model may differ); train it again")
    model = method.build(int(record["crops"]), int(record["feature_dim"]))
    load_state(model, read_state(folder / MODEL_FILE, "--run"), f"--run {folder}: {MODEL_FILE} does not fit {name}")
    return SavedModel(name, method, model.eval(), record)
