"""The values of the Inception I3D equality fixture (Wu et al.'s extractor), by state_dict key name (no vadbench
import, no random generator).

Used by i3d_wu_reference.py, which gives them to the public piergiaj/pytorch-i3d model, and by
tests/unit/test_i3d_wu_network.py, which gives them to vadbench's network. A value depends on the key's NAME,
not on its position, so the public model (whose state_dict begins with its classifier) and vadbench's (which
has none) get the same numbers under the same names:

- u(name, j) = h / 2**32 for flat index j, with k = the first 4 bytes (little-endian) of SHA-256(name) and
  h = (j * 2654435761 + k) mod 2**32, then h ^= h >> 16; h = (h * 73244475) mod 2**32; h ^= h >> 16;
  h = (h * 73244475) mod 2**32; h ^= h >> 16 (int64 arithmetic).
- By the key's last part: "conv3d.weight" (2u - 1) sqrt(6 / fan_in) with fan_in = numel / shape[0] (He
  uniform: each convolution followed by a ReLU keeps its input's mean square, so the 1024-d output stays of
  order one); "bn.weight" 1 + 0.2 (u - 0.5); "bn.bias", "conv3d.bias" and "bn.running_mean" 0.1 (2u - 1);
  "bn.running_var" 0.5 + u (positive); "num_batches_tracked" 0.
- Clips: 2 u("clips/<n>", j) - 1 for clip set n, pixels in [-1, 1] as the public code's preprocessing gives.

Every value is computed in float64 and rounded to float32; a float64 run uses the same (float32) numbers.
"""

from __future__ import annotations

import hashlib
import math

import torch

MASK = (1 << 32) - 1


def uniform(name: str, count: int) -> torch.Tensor:
    """u(name, j) for j = 0 .. count - 1, float64 in [0, 1)."""
    k = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    h = (torch.arange(count, dtype=torch.int64) * 2654435761 + k) & MASK
    for _ in range(2):
        h = h ^ (h >> 16)
        h = (h * 73244475) & MASK
    h = h ^ (h >> 16)
    return h.double() / 2.0**32


def state_value(name: str, shape: tuple[int, ...] | list[int]) -> torch.Tensor:
    """The value of the state_dict entry `name` of the given shape (float32; int64 for the batch counters)."""
    shape = tuple(shape)
    count = math.prod(shape)
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    u = uniform(name, count)
    if name.endswith("conv3d.weight"):
        value = (2 * u - 1) * math.sqrt(6.0 / (count // shape[0]))
    elif name.endswith("bn.weight"):
        value = 1 + 0.2 * (u - 0.5)
    elif name.endswith("bn.running_var"):
        value = 0.5 + u
    elif name.endswith(("bias", "bn.running_mean")):
        value = 0.1 * (2 * u - 1)
    else:
        raise ValueError(f"no rule for the state_dict key {name!r}")
    return value.float().reshape(shape)


def set_state(model: torch.nn.Module) -> None:
    """Every parameter and buffer of `model` set to its rule's value, by name."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(state_value(name, tensor.shape))


def clips(n: int, shape: tuple[int, ...] | list[int]) -> torch.Tensor:
    """Clip set `n`: float32 pixels in [-1, 1] of the given shape ([B, 3, T, H, W])."""
    return (2 * uniform(f"clips/{n}", math.prod(shape)) - 1).float().reshape(tuple(shape))
