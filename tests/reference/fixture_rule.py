"""The values and the record format of the RTFM, MGFN, I3D-ResNet50 and C3D equality fixtures (no vadbench import).

Used by the generator scripts beside this file, which give the public code these values, and by the unit
tests, which give vadbench the same ones. No value comes from a random generator:

- u(k, j) = h / 2**32 with h = (j * 2654435761 + k * 40503) mod 2**32; h ^= h >> 15;
  h = (h * 1597334677) mod 2**32; h ^= h >> 13 (int64 arithmetic), for tensor number k and flat index j.
- Parameters and buffers, k = the tensor's index in the public model's state_dict (buffers included), by
  kind: "weight" (conv and linear weights) (2u - 1) sqrt(3 / fan_in) with fan_in = numel / shape[0];
  "norm_weight" (normalisation scales) 1 + 0.2 (u - 0.5); "bias" (biases and normalisation shifts)
  0.1 (2u - 1); "running_mean" 0.1 (2u - 1); "running_var" 0.5 + u; "count" (num_batches_tracked) 0.
- I3D-ResNet50 and C3D (networks whose state_dicts differ by variant, or hold a head that is not loaded): the
  same values with k = crc32 of the entry's name (UTF-8) instead of its index, and the kind from the name:
  "weight" of a tensor of two or more dimensions (convolutions, linear) "weight", of a vector "norm_weight";
  "bias", "running_mean", "running_var" themselves; "num_batches_tracked" "count".
- Video clips (3, frames, size, size), already normalised as the extractor normalises pixels:
  (255 u(k, flat index) - 114.75) / 57.375, i.e. uniform pixels 0..255.
- Snippet features (videos, crops, steps, dim) = 2 u(k, flat index) + 0.5 label * [2 <= t < 5].
- Selection masks (rows, steps): kept where u(k, flat index) >= p, value 1 / (1 - p), else 0.

Every value is computed in float64 and rounded to float32; a float64 run uses the same (float32) numbers.
A checkpoint's content is identified by `state_digest` (names, dtypes, shapes and bytes of its tensors).
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Mapping

import torch

#: Outputs with at most this many entries are stored whole; larger ones are sampled (see `record`).
WHOLE = 256
#: The same for parameters, their gradients and updates, and BatchNorm statistics (many small tensors).
WHOLE_STATE = 8
#: Evenly spaced entries sampled from a large tensor (its largest entry and its last one are added).
SAMPLES = 8
KINDS = ("weight", "norm_weight", "bias", "running_mean", "running_var", "count")


def uniform(k: int, count: int) -> torch.Tensor:
    """u(k, j) for j = 0 .. count - 1, float64 in [0, 1)."""
    j = torch.arange(count, dtype=torch.int64)
    mask = (1 << 32) - 1
    h = (j * 2654435761 + k * 40503) & mask
    h = h ^ (h >> 15)
    h = (h * 1597334677) & mask
    h = h ^ (h >> 13)
    return h.double() / 2.0**32


def state_value(kind: str, k: int, shape: tuple[int, ...] | list[int]) -> torch.Tensor:
    """The value of the k-th state_dict entry of the public model, of the given kind and shape."""
    shape = tuple(shape)
    count = math.prod(shape)
    if kind == "count":
        return torch.zeros(shape, dtype=torch.int64)
    u = uniform(k, count)
    if kind == "weight":
        value = (2 * u - 1) * math.sqrt(3.0 / (count // shape[0]))
    elif kind == "norm_weight":
        value = 1 + 0.2 * (u - 0.5)
    elif kind == "running_var":
        value = 0.5 + u
    elif kind in ("bias", "running_mean"):
        value = 0.1 * (2 * u - 1)
    else:
        raise ValueError(f"unknown kind {kind!r}, expected one of {KINDS}")
    return value.float().reshape(shape)


def named_kind(name: str, shape: tuple[int, ...] | list[int]) -> str:
    """The kind of a state_dict entry from its name and shape (for networks of convolutions and norms)."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return "count"
    if leaf == "weight":
        return "weight" if len(shape) > 1 else "norm_weight"
    return leaf


def named_state_value(name: str, shape: tuple[int, ...] | list[int]) -> torch.Tensor:
    """The value of the state_dict entry `name`, whatever its position (k = crc32 of the name)."""
    return state_value(named_kind(name, shape), zlib.crc32(name.encode()), shape)


def video_clips(k: int, clips: int, frames: int, size: int) -> torch.Tensor:
    """(clips, 3, frames, size, size) float32 clips of uniform pixels 0..255, normalised by 114.75 / 57.375."""
    u = uniform(k, clips * 3 * frames * size * size)
    return ((255 * u - 114.75) / 57.375).float().reshape(clips, 3, frames, size, size)


def snippet_features(k: int, labels: list[int], crops: int, steps: int, dim: int) -> torch.Tensor:
    """(videos, crops, steps, dim) float32 features; abnormal videos (label 1) get a bump at t = 2, 3, 4."""
    videos = len(labels)
    x = 2 * uniform(k, videos * crops * steps * dim).reshape(videos, crops, steps, dim)
    bump = torch.zeros(steps, dtype=torch.float64)
    bump[2:5] = 0.5
    return (x + torch.tensor(labels, dtype=torch.float64)[:, None, None, None] * bump[:, None]).float()


def selection_mask(k: int, rows: int, steps: int, p: float) -> torch.Tensor:
    """(rows, steps) float32 dropout-like mask: 1 / (1 - p) where kept, else 0."""
    keep = uniform(k, rows * steps).reshape(rows, steps) >= p
    return keep.float() / (1 - p)


def sample_index(values: torch.Tensor) -> list[int]:
    """Flat indices sampled from a large tensor: evenly spaced ones, its largest |entry| and its last one."""
    count = values.numel()
    spaced = torch.linspace(0, count - 1, SAMPLES, dtype=torch.float64).round().long().tolist()
    return sorted({*spaced, int(values.abs().argmax()), count - 1})


def record(fp32: torch.Tensor, fp64: torch.Tensor, whole: int = WHOLE) -> dict:
    """One quantity of the public code in float32 and float64: its shape, its largest |entry| (float64),
    and its entries (all if at most `whole`, else sampled at ``index``, with the whole tensor's norm)."""
    flat32, flat64 = fp32.detach().double().reshape(-1), fp64.detach().double().reshape(-1)
    entry = {"shape": list(fp64.shape), "absmax": float(flat64.abs().max())}
    if flat64.numel() > whole:
        index = sample_index(flat64)
        entry["index"] = index
        entry["norm"] = {"fp32": float(flat32.norm()), "fp64": float(flat64.norm())}
        flat32, flat64 = flat32[index], flat64[index]
    entry["fp32"], entry["fp64"] = flat32.tolist(), flat64.tolist()
    return entry


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of a state dict's content in its order: each entry's name, dtype, shape and bytes (unlike
    the file's own hash, the same whatever torch version or run wrote the file)."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(f"{name} {tensor.dtype} {list(tensor.shape)}\n".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
