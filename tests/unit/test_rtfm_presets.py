"""The Table-5 presets of RTFM: each flag really adds or removes its modules and its loss."""

import pytest
import torch

from vadbench.api.method import TrainBatch
from vadbench.methods.rtfm import ABLATIONS
from vadbench.methods.rtfm.model import (
    MultiScaleTemporalNetwork,
    PointwiseBaseline,
    PyramidDilatedConv,
    TemporalSelfAttention,
)
from vadbench.plugins.manager import load_plugins

VARIANTS = {**{name: flags[:3] for name, flags in ABLATIONS.items()}, "rtfm": (True, True, True)}


def test_the_eight_table5_variants_are_registered_presets():
    methods = load_plugins().methods
    assert len(VARIANTS) == 8 and len(set(VARIANTS.values())) == 8
    for name, (use_pdc, use_tsa, use_fm) in VARIANTS.items():
        config = methods.config(name)
        assert (config.use_pdc, config.use_tsa, config.use_fm) == (use_pdc, use_tsa, use_fm), name
        assert bool(methods.get(name).preset) == (name != "rtfm")  # `vadbench run` skips presets


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_disabled_branches_are_absent_and_every_parameter_gets_a_gradient(name):
    use_pdc, use_tsa, use_fm = VARIANTS[name]
    method = load_plugins().methods.create(name)
    torch.manual_seed(0)
    model = method.build(crops=2, feature_dim=16)
    kinds = {type(module) for module in model.modules()}
    assert (PyramidDilatedConv in kinds) == use_pdc
    assert (TemporalSelfAttention in kinds) == use_tsa
    assert (PointwiseBaseline in kinds) == (not use_pdc and not use_tsa)
    assert (MultiScaleTemporalNetwork in kinds) == (use_pdc or use_tsa)

    model.train()
    terms = method.loss(model, TrainBatch.balanced(torch.rand(4, 2, 32, 16), torch.rand(4, 2, 32, 16) + 0.5))
    assert ("fm" in terms) == use_fm and ("rank" in terms) == (not use_fm)
    terms["loss"].backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"{name}: parameters of an absent branch: {unused}"
