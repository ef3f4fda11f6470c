"""What the public-checkpoint fixture scripts of UR-DMU, BN-WVAD and PEL4VAD (`<method>_checkpoint_reference.py`)
share with their test (tests/unit/test_public_checkpoint_urdmu_bnwvad_pel4vad.py), no vadbench import: the
test videos' features, the weights given to the public model, and the fixture's format.

Each script builds the public model, gives it `random_state`'s weights (BN-WVAD then updates its BatchNorm
running statistics by forward passes in training mode), saves it as the public training script saves it, and
runs the public test function on `VIDEOS` twice: as the public code runs (float32) and with the model and
features in float64 (the float32 checkpoint loaded into a float64 model), so that the test can apply
tests/reference/comparison.py's rule (float32 within ten times the public float32 rounding, float64 within
1e-12).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

DATA = Path(__file__).resolve().parents[1] / "unit" / "data"
#: The test videos: (crops, snippets); different lengths, one of a single snippet.
VIDEOS = ((5, 29), (5, 11), (5, 1))
FEATURE_RULE = (
    "video n of VIDEOS (crops C, snippets T), D features: x[c, t, d] = 0.5 + 0.5 sin(0.61 t + 1.3 d + 0.07 t d "
    "+ 2.1 c + 0.9 n) + 0.03 d / D, in float64, then float32 (the float64 run casts these)"
)
WEIGHT_RULE = (
    "the k-th floating tensor of the public state_dict (buffers included): z = torch.randn(shape, generator "
    "seeded SEED + k) in float64; ndim >= 2: z / sqrt(numel / shape[0]); a 1-D '*norm.weight' or "
    "'*bn?.weight': 1 + 0.1 z; 'running_var': 0.5 + |z|; other 1-D and 0-D tensors (biases, scalars): 0.1 z; "
    "then float32"
)
SEED = 19


def feature_video(n: int, crops: int, steps: int, dim: int) -> torch.Tensor:
    """Test video `n` (crops, steps, dim) by FEATURE_RULE, float32."""
    c = torch.arange(crops, dtype=torch.float64)[:, None, None]
    t = torch.arange(steps, dtype=torch.float64)[None, :, None]
    d = torch.arange(dim, dtype=torch.float64)[None, None, :]
    return (0.5 + 0.5 * torch.sin(0.61 * t + 1.3 * d + 0.07 * t * d + 2.1 * c + 0.9 * n) + 0.03 * d / dim).float()


def rule_tensor(name: str, k: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The value of the k-th state_dict tensor `name` by WEIGHT_RULE."""
    z = torch.randn(shape, generator=torch.Generator().manual_seed(SEED + k), dtype=torch.float64)
    last = name.rsplit(".", 2)
    if len(shape) >= 2:
        value = z / math.sqrt(math.prod(shape) / shape[0])
    elif name.endswith("norm.weight") or (last[-1] == "weight" and len(last) > 1 and last[-2].startswith("bn")):
        value = 1 + 0.1 * z
    elif name.endswith("running_var"):
        value = 0.5 + z.abs()
    else:
        value = 0.1 * z
    return value.float()


def set_random_state(model: nn.Module) -> None:
    """Every floating tensor of `model`'s state_dict by WEIGHT_RULE (integer step counts stay)."""
    with torch.no_grad():
        for k, (name, tensor) in enumerate(model.state_dict().items()):
            if tensor.is_floating_point():
                tensor.copy_(rule_tensor(name, k, tuple(tensor.shape)))


def write_fixture(path: Path, fixture: dict) -> None:
    """The fixture as JSON, one line per entry of its top level."""
    lines = [f"{json.dumps(key)}: {json.dumps(value)}" for key, value in fixture.items()]
    path.write_text("{\n " + ",\n ".join(lines) + "\n}\n")
    json.loads(path.read_text())  # well formed
