"""Unit tests of the Inception I3D of Wu et al.'s features: equality with the public network (fixture), state
names and shapes, the sizes it accepts, the reduced width.

The fixture tests/unit/data/i3d_wu_reference.json is written by tests/reference/i3d_wu_reference.py, which runs
``InceptionI3d.extract_features`` of piergiaj/pytorch-i3d at 05783d1, unmodified, in float32 and in float64
with every parameter set by the name rule of tests/reference/extractor_weights_wu.py, on two 16x224x224 clips
and one 11x197x213 clip. vadbench's network gets the same values under the same names and is compared with the
public float64 features as tests/reference/comparison.py says (float64: 1e-12 of the largest feature; float32:
ten times the public code's own float32 rounding).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from reference.comparison import failures, group_at
from reference.extractor_weights_wu import clips, set_state, state_value

from vadbench.extractors.i3d_wu.network import HEAD_KEYS, InceptionI3D, pooled_size

#: One torch thread: the equality checks compare sums whose order depends on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = json.loads((Path(__file__).parent / "data" / "i3d_wu_reference.json").read_text())
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


def rule_network(dtype: torch.dtype) -> InceptionI3D:
    """vadbench's network at full width with the fixture's parameters, in eval mode."""
    network = InceptionI3D()
    set_state(network)
    return network.to(dtype).eval()


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_features_equal_the_public_extract_features(precision):
    dtype = PRECISIONS[precision]
    network = rule_network(dtype)
    with torch.no_grad():
        ours = {n: network(clips(int(n), shape).to(dtype)) for n, shape in FIXTURE["clip_shapes"].items()}
    assert failures(ours, group_at(FIXTURE, "features"), dtype) == []


def test_state_is_the_public_state_without_the_classifier():
    public = [(name, shape) for name, shape in FIXTURE["public_state"] if name not in HEAD_KEYS]
    ours = [(name, list(tensor.shape)) for name, tensor in InceptionI3D().state_dict().items()]
    assert ours == public
    assert {name for name, _ in FIXTURE["public_state"]} - {name for name, _ in ours} == set(HEAD_KEYS)


def test_a_public_checkpoint_without_its_head_loads_strictly():
    checkpoint = {name: state_value(name, shape) for name, shape in FIXTURE["public_state"]}
    network = InceptionI3D()
    with pytest.raises(RuntimeError, match="logits.conv3d.weight"):
        network.load_state_dict(checkpoint, strict=True)
    network.load_state_dict({k: v for k, v in checkpoint.items() if k not in HEAD_KEYS}, strict=True)
    assert torch.equal(network.Mixed_5c.b3b.bn.running_var, checkpoint["Mixed_5c.b3b.bn.running_var"])


def test_a_checkpoint_without_batch_counters_loads_strictly():
    """The public code was written for PyTorch 0.3, whose BatchNorm had no ``num_batches_tracked``: a plain dict
    without them (no version metadata) still loads with ``strict=True``, BatchNorm filling them in."""
    checkpoint = {name: state_value(name, shape) for name, shape in FIXTURE["public_state"]
                  if name not in HEAD_KEYS and not name.endswith("num_batches_tracked")}
    InceptionI3D().load_state_dict(checkpoint, strict=True)


def test_reduced_width_gives_a_narrower_feature_of_the_same_network():
    network = InceptionI3D(channel_divisor=8).eval()
    set_state(network)
    with torch.no_grad():
        features = network(clips(0, [2, 3, 16, 224, 224]))
    assert features.shape == (2, 128) and network.feature_width == 128
    assert torch.isfinite(features).all() and features.abs().max() > 0


@pytest.mark.parametrize("divisor", [0, 3, 16])
def test_a_divisor_that_does_not_divide_every_width_is_refused(divisor):
    with pytest.raises(ValueError, match=f"channel_divisor {divisor}: expected a divisor of 8"):
        InceptionI3D(channel_divisor=divisor)


def test_the_pooled_map_is_one_by_one_from_9_to_16_frames_of_193_to_224_pixels():
    assert pooled_size((9, 193, 193)) == pooled_size((16, 224, 224)) == (1, 1, 1)
    assert pooled_size((8, 224, 224))[0] == 0 and pooled_size((17, 224, 224))[0] == 2
    assert pooled_size((16, 192, 225))[1:] == (0, 2)


@pytest.mark.parametrize("shape", [[1, 3, 8, 224, 224], [1, 3, 32, 224, 224], [1, 3, 16, 256, 224],
                                   [1, 1, 16, 224, 224], [3, 16, 224, 224]])
def test_other_clip_sizes_are_refused_naming_the_size(shape):
    network = InceptionI3D(channel_divisor=8)
    with pytest.raises(ValueError, match=rf"clips of size \[{', '.join(map(str, shape))}\]: expected"):
        network(torch.zeros(shape))
