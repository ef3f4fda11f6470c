"""`--weights`: the public checkpoints load under their own names (also those saved before PyTorch 0.4, which hold
no BatchNorm step counts, and those wrapped in a ``state_dict`` entry); a wrong file is refused in one line."""

import pytest
import torch
from torch import nn

from vadbench.api.errors import UsageError
from vadbench.extract.weights import load_weights


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4))


def test_a_checkpoint_without_step_counts_and_with_a_head_loads(tmp_path):
    source = network()
    state = {key: value + 1 for key, value in source.state_dict().items() if "num_batches_tracked" not in key}
    path = tmp_path / "old.pt"
    torch.save({"state_dict": {**state, "fc.weight": torch.zeros(2)}}, path)
    target = network()
    load_weights(target, path, ("fc.weight",), "toy")
    assert torch.equal(target[0].weight, state["0.weight"])
    assert torch.equal(target[1].running_var, state["1.running_var"])


def test_extra_keys_and_wrong_shapes_are_named(tmp_path):
    state = network().state_dict()
    path = tmp_path / "other.pt"
    torch.save({**state, "0.weight": torch.zeros(8, 3, 1, 1, 1), "extra.weight": torch.zeros(1)}, path)
    with pytest.raises(UsageError) as error:
        load_weights(network(), path, (), "toy")
    message = str(error.value)
    assert "1 unexpected keys: extra.weight" in message
    assert "0.weight (8, 3, 1, 1, 1) (model (4, 3, 1, 1, 1))" in message
    assert "\n" not in message
