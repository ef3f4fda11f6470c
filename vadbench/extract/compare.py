"""How close one video's features are to a published feature file of the same video (`vadbench extract
--compare FILE`): per crop, the cosine similarity of each snippet's features and the relative difference
``|ours - theirs| / |theirs|`` over the snippets both have, and the two snippet counts.

A user holding the released files checks their weights, their decoder and the open points of a published
pipeline this way before extracting a whole dataset: matching features give cosines near 1 and a relative
difference near 0 for every crop; a wrong crop order shows as crops that match only in another position.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.data.npy import load_npy

_CROP = re.compile(r"__(\d+)\.npy$")


def published_crops(path: Path, crops: int) -> tuple[np.ndarray, list[int]]:
    """The published features as [T, C', D] and which of our crops each of the C' is: a [T, C, D] file holds
    all crops in our order; a [T, D] file ``<video>__<k>.npy`` holds crop k."""
    if not path.is_file():
        raise UsageError(f"--compare {path}: no such file")
    array = load_npy(path)
    if array.ndim == 3:
        if array.shape[1] != crops:
            raise UsageError(f"--compare {path}: has {array.shape[1]} crops, the extraction makes {crops}")
        return array, list(range(crops))
    if array.ndim != 2:
        raise UsageError(f"--compare {path}: expected [T, C, D] or [T, D] features, got shape {array.shape}")
    match = _CROP.search(path.name)
    if match is None and crops != 1:
        raise UsageError(f"--compare {path}: a [T, D] file must be named <video>__<crop>.npy to say which crop")
    crop = int(match.group(1)) if match else 0
    if crop >= crops:
        raise UsageError(f"--compare {path}: crop {crop}, the extraction makes crops 0..{crops - 1}")
    return array[:, None, :], [crop]


def comparison_lines(ours: np.ndarray, path: Path) -> list[str]:
    """The comparison of `ours` [T, C, D] with the file at `path`, as printable lines."""
    theirs, crops = published_crops(path, ours.shape[1])
    if theirs.shape[2] != ours.shape[2]:
        raise UsageError(f"--compare {path}: features of dimension {theirs.shape[2]}, the extraction makes "
                         f"{ours.shape[2]}")
    count = min(len(ours), len(theirs))
    lines = [f"snippets: extracted {len(ours)}, {path.name} {len(theirs)} (compared: the first {count})",
             "crop  cosine mean  cosine min  relative difference"]
    for column, crop in enumerate(crops):
        a = ours[:count, crop].astype(np.float64)
        b = theirs[:count, column].astype(np.float64)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cosine = np.einsum("td,td->t", a, b) / np.where(norms > 0, norms, 1.0)
        relative = np.linalg.norm(a - b) / max(float(np.linalg.norm(b)), np.finfo(np.float64).tiny)
        lines.append(f"{crop:>4}  {cosine.mean():>11.4f}  {cosine.min():>10.4f}  {relative:>19.4f}")
    return lines
