"""The public RTFM code's training data path, rebuilt as the baseline of the speed benchmarks.

Its per-step work, as the public code (tianyu0207/RTFM at cf938f4) does it: draw `batch` normal and `batch` abnormal
videos, read each one's full-length features (T, C, D) from its own .npy file, mean-pool every crop
to 32 segments in a Python loop over the segments (an empty segment takes its boundary row), stack
the batch, move it to the device, and take one eager fp32 step whose loss is read back (the public
code logs it every step). Written from that behaviour; no code was copied.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vadbench.api.method import Method, TrainBatch
from vadbench.api.types import TRAIN_SEGMENTS


def write_videos(folder: Path, videos: Iterable[np.ndarray]) -> list[Path]:
    """One ``<index>.npy`` per full-length video (T, C, D), as the public code's feature folders hold them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, video in enumerate(videos):
        path = folder / f"{index:05d}.npy"
        np.save(path, video)
        paths.append(path)
    return paths


def pool_crop_in_python(features: np.ndarray, segments: int = TRAIN_SEGMENTS) -> np.ndarray:
    """(T, D) snippets -> (segments, D), one np.mean per segment, as the public code pools."""
    bounds = np.linspace(0, len(features), segments + 1).astype(int)
    pooled = np.zeros((segments, features.shape[1]), dtype=np.float32)
    for i in range(segments):
        if bounds[i] != bounds[i + 1]:
            pooled[i] = features[bounds[i] : bounds[i + 1]].mean(axis=0)
        else:
            pooled[i] = features[bounds[i]]
    return pooled


def load_pooled(path: Path) -> np.ndarray:
    """Read one video file and pool each of its crops: (T, C, D) on disk -> (C, 32, D)."""
    video = np.load(path, allow_pickle=False)
    return np.stack([pool_crop_in_python(video[:, crop]) for crop in range(video.shape[1])])


class ReferenceLoop:
    """Training steps of `method` fed by per-step file reads and Python pooling (the public code's path)."""

    def __init__(
        self, method: Method, model: nn.Module, normal: Sequence[Path], abnormal: Sequence[Path],
        batch: int, device: torch.device, seed: int = 0,
    ) -> None:
        self.method, self.model, self.device = method, model, device
        self.normal, self.abnormal = list(normal), list(abnormal)
        self.batch = min(batch, len(self.normal), len(self.abnormal))
        self.optimizer = method.optimizer(model.parameters())
        self.rng = np.random.default_rng(seed)
        self.data_seconds = 0.0

    def batch_of(self, paths: list[Path]) -> torch.Tensor:
        """`batch` videos drawn from `paths`, read and pooled, on the device: (batch, C, 32, D)."""
        chosen = self.rng.choice(len(paths), size=self.batch, replace=False)
        pooled = np.stack([load_pooled(paths[i]) for i in chosen])
        return torch.from_numpy(pooled).to(self.device)

    def step(self) -> float:
        """One step; returns the loss (read back, which also waits for the device)."""
        start = time.perf_counter()
        normal, abnormal = self.batch_of(self.normal), self.batch_of(self.abnormal)
        self.data_seconds += time.perf_counter() - start
        self.model.train()
        loss = self.method.loss(self.model, TrainBatch.balanced(normal, abnormal))["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss)
