"""Class prompt vectors, a side input of methods that learn from text (PEL4VAD's CLIP embeddings).

A dataset supplies one vector per class index (row 0: normal, then `Benchmark.class_names` in order) from
a ``.npy`` file the user points at (dataset option ``prompts``), since nothing may be downloaded or
computed from a text encoder at run time. Without one, a method that declares it needs prompts
(``Declarations.side_inputs``) gets the stand-in below, and its result records ``benchmark.prompts = stand-in``
so tables mark it: the stand-in carries no language, only one fixed direction per class name.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.types import Benchmark, prompted_fingerprint
from vadbench.data.npy import load_npy

#: Width of the stand-in vectors: CLIP ViT-B/16's text embedding, what PEL4VAD's published files hold.
STAND_IN_DIM = 512


def stand_in_prompts(class_names: tuple[str, ...], dim: int = STAND_IN_DIM) -> np.ndarray:
    """(K, dim) unit vectors, one per class name, each drawn from a generator seeded by the name's SHA-256:
    the same name always gets the same vector, on every machine and in every dataset."""
    rows = []
    for name in class_names:
        seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
        row = np.random.default_rng(seed).standard_normal(dim)
        rows.append(row / np.linalg.norm(row))
    return np.asarray(rows, np.float32).reshape(len(class_names), dim)


def load_prompts(path: str, class_names: tuple[str, ...]) -> np.ndarray:
    """The (K, P) prompt vectors of `path`, checked against the dataset's K classes (one-line errors)."""
    if not class_names:
        raise UsageError(f"dataset option prompts: the dataset has no classes to give {path} prompt vectors for")
    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"dataset option prompts: {file} is not a file (expected a .npy of shape (K, P))")
    array = np.asarray(load_npy(file))
    if array.ndim != 2 or len(array) != len(class_names):
        raise UsageError(
            f"{file}: expected prompt vectors of shape ({len(class_names)}, P), one row per class "
            f"({', '.join(class_names)}), got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise UsageError(f"{file}: prompt vectors must be finite floating-point numbers")
    return np.ascontiguousarray(array, np.float32)


def with_prompts(benchmark: Benchmark, path: str) -> Benchmark:
    """`benchmark` with the prompt vectors of `path` (none when `path` is empty). A fingerprint already
    known (from the preparation cache) is extended by them, as `Benchmark.fingerprint` extends its own."""
    if not path:
        return benchmark
    prompts = load_prompts(path, benchmark.class_names)
    meta = {**benchmark.meta, "prompts": Path(path).name}
    if "fingerprint" in meta:
        meta["fingerprint"] = prompted_fingerprint(meta["fingerprint"], prompts)
    return dataclasses.replace(benchmark, prompts=prompts, meta=meta)

