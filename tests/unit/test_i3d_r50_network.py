"""vadbench's I3D-ResNet50 equals the public network of Tushar-N/pytorch-resnet3d, the one RTFM's features come from.

The fixture data/i3d_r50_reference.json was written by tests/reference/i3d_r50_reference.py from the public
code at the commit it pins: the vanilla and the non-local I3Res50 with every state_dict entry set by the named
rule of tests/reference/fixture_rule.py, on two seeded [3, 16, 224, 224] clips, in float32 and in float64. Here
vadbench's network gets the same entries, loaded strictly from a dict shaped as the public converter writes
its checkpoints (no classifier once `HEAD_KEYS` are dropped, no ``num_batches_tracked``), and its features are
compared with the public float64 ones as tests/reference/comparison.py says (float64: 1e-12 of the largest
feature; float32: ten times the public code's own float32 gap, at least 1e-6).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from reference.comparison import failures, from_record
from reference.fixture_rule import named_state_value, video_clips

from vadbench.extractors.i3d_r50.network import HEAD_KEYS, I3DResNet50, fold_batchnorm

FIXTURE = json.loads((Path(__file__).parent / "data" / "i3d_r50_reference.json").read_text())
VARIANTS = {"vanilla": False, "non_local": True}


def public_rows(variant: str) -> list[list]:
    """[name, shape] of every entry of the public network's state_dict, in its order, classifier included."""
    return FIXTURE["public_state"][variant]


def checkpoint(variant: str) -> dict[str, torch.Tensor]:
    """The rule's values under the names a public converted checkpoint holds, less its classifier."""
    return {name: named_state_value(name, shape) for name, shape in public_rows(variant)
            if name not in HEAD_KEYS and not name.endswith("num_batches_tracked")}


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_names_and_shapes_are_the_public_networks_without_its_head(variant):
    state = I3DResNet50(non_local=VARIANTS[variant]).state_dict()
    ours = [[name, list(tensor.shape)] for name, tensor in state.items()]
    public = public_rows(variant)
    assert {name for name, _ in public} - {name for name, _ in ours} == set(HEAD_KEYS)
    assert ours == [row for row in public if row[0] not in HEAD_KEYS]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_features_equal_the_public_networks(variant, dtype):
    network = I3DResNet50(non_local=VARIANTS[variant])
    network.load_state_dict(checkpoint(variant), strict=True)
    sizes = FIXTURE["clips"]
    clips = video_clips(sizes["stream"], sizes["clips"], sizes["frames"], sizes["size"])
    with torch.no_grad():
        features = network.eval().to(dtype)(clips.to(dtype))
    assert not failures({variant: features}, {variant: from_record(FIXTURE["features"][variant])}, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_network_extraction_runs_folded_and_channels_last_equals_the_public_one(variant, dtype):
    """BatchNorm folded into the convolutions, the channels-last layout of the CPU path: the same comparison rule."""
    network = I3DResNet50(non_local=VARIANTS[variant])
    network.load_state_dict(checkpoint(variant), strict=True)
    folded = fold_batchnorm(network.eval().to(dtype)).to(memory_format=torch.channels_last_3d)
    assert not any(isinstance(module, torch.nn.BatchNorm3d) for module in folded.modules())
    sizes = FIXTURE["clips"]
    clips = video_clips(sizes["stream"], sizes["clips"], sizes["frames"], sizes["size"]).to(dtype)
    with torch.no_grad():
        features = folded(clips.contiguous(memory_format=torch.channels_last_3d))
    assert not failures({variant: features}, {variant: from_record(FIXTURE["features"][variant])}, dtype)


def test_folding_needs_eval_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(I3DResNet50(width=4))


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_small_width_gives_32_features_per_channel_of_the_stem(variant):
    network = I3DResNet50(non_local=VARIANTS[variant], width=8).eval()
    with torch.no_grad():
        features = network(torch.randn(2, 3, 16, 64, 64, generator=torch.Generator().manual_seed(0)))
    assert features.shape == (2, 256)
    assert torch.isfinite(features).all() and features.abs().sum() > 0
