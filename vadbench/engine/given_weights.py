"""Models with weights from outside a training run: a run's saved weights (`vadbench.engine.saved_models`), a
checkpoint in vadbench's own format, or one a method's public code saved (through the method's importer), and
the scores they give, through the same scoring path as a trained run (`vadbench.engine.scoring`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vadbench.api.errors import UsageError
from vadbench.engine.checkpoints import load_state, public_model, read_state, sha256
from vadbench.engine.saved_models import SavedModel
from vadbench.engine.scoring import score_videos
from vadbench.plugins.manager import Plugins


@dataclass(frozen=True)
class FeatureVideos:
    """Videos held in memory, each (T, C, D), as the scoring path reads a test set (`Videos`)."""

    features: Sequence[np.ndarray]

    @property
    def lengths(self) -> np.ndarray:
        return np.asarray([len(video) for video in self.features])

    def video(self, i: int) -> np.ndarray:
        return self.features[i]


def checkpoint_model(plugins: Plugins, name: str, options: Mapping[str, Any], path: Path, crops: int,
                     feature_dim: int) -> SavedModel:
    """Method `name`'s model for `crops` x `feature_dim` features with the weights of checkpoint `path`: saved by
    vadbench (its model's own keys) or by the method's public code (through `Declarations.public_checkpoint`)."""
    method = plugins.methods.create(name, options)
    model = method.build(crops, feature_dim)
    state = read_state(path, "--checkpoint")
    own_keys = {key for key in model.state_dict() if not key.endswith("num_batches_tracked")}
    public = method.declarations().public_checkpoint is not None and not own_keys <= set(state)
    if public:  # the public code's names: through the method's importer
        model = public_model(method, name, path, crops, feature_dim, read=state)
    else:
        load_state(model, state, f"--checkpoint {path}: not a checkpoint of {name} for {crops} crops of "
                   f"{feature_dim} dimensions with these options")
    record = {"method": name, "method_options": dict(options), "crops": crops, "feature_dim": feature_dim,
              "checkpoint": str(path), "checkpoint_sha256": sha256(path),
              "checkpoint_format": "public" if public else "vadbench", "feature_set": None}
    return SavedModel(name, method, model.eval(), record)


@dataclass(frozen=True)
class VideoScores:
    """Per-snippet scores of each named video, and the frames each snippet stands for."""

    names: list[str]
    scores: list[np.ndarray]
    snippet_frames: int = 16
    notes: dict[str, Any] = field(default_factory=dict)

    def frame_scores(self, index: int) -> np.ndarray:
        """One score per frame: each snippet's score repeated for its frames, as the metrics expand them."""
        return np.repeat(self.scores[index], self.snippet_frames)


def score_features(given: SavedModel, names: Sequence[str], features: Sequence[np.ndarray],
                   device: torch.device) -> VideoScores:
    """Scores of `features` (each (T, C, D)) with `given`'s model; features of another shape than the model's are
    refused in one line naming the video."""
    for name, video in zip(names, features, strict=True):
        if video.ndim != 3 or video.shape[1:] != (given.crops, given.feature_dim):
            raise UsageError(f"{name}: features of shape {tuple(video.shape)}, the weights take [T, {given.crops}, "
                             f"{given.feature_dim}] (feature set {given.record.get('feature_set') or 'unknown'})")
    scores = score_videos(given.method, given.model.to(device), FeatureVideos(list(features)), device)
    return VideoScores(list(names), scores)
