"""Conformance checks of a feature extractor (`vadbench.api.extractor.Extractor`): a coherent `Preprocessing`, a
network giving one `feature_dim` vector per clip of the declared size, deterministic in eval mode, whose
``state_dict`` holds no head key and loads back through `vadbench.extract.weights` (the path of ``--weights``),
while a file missing a key is refused, and whose `inference_network` gives its features. Give extractors small
widths: each check builds and runs the network.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
from torch import nn

from vadbench.api.errors import UsageError
from vadbench.api.extractor import Extractor, Preprocessing
from vadbench.extract.weights import load_weights
from vadbench.testing.common import SEED


def _clips(extractor: Extractor, count: int = 2) -> torch.Tensor:
    steps = extractor.preprocessing()
    generator = torch.Generator().manual_seed(SEED)
    size = (count, 3, steps.snippet_frames, steps.crop_size, steps.crop_size)
    return torch.rand(size, generator=generator) * 2 - 1


def check_preprocessing(extractor: Extractor) -> None:
    """`preprocessing` is a Preprocessing of positive sizes, a resize at least the crop, and a non-zero std."""
    steps = extractor.preprocessing()
    assert isinstance(steps, Preprocessing), f"preprocessing() must return a Preprocessing, got {type(steps)}"
    assert steps.snippet_frames >= 1 and steps.crop_size >= 1, "snippet_frames and crop_size must be positive"
    smallest = steps.resize if isinstance(steps.resize, int) else min(steps.resize)
    assert smallest >= steps.crop_size, f"resize {steps.resize} is smaller than the {steps.crop_size}-pixel crops"
    assert steps.std != 0, "std must not be zero"
    assert extractor.layout in ("rtfm", "wu"), f"layout must be rtfm or wu, got {extractor.layout!r}"


def check_feature_shape(extractor: Extractor) -> None:
    """The network maps clips [B, 3, L, S, S] to [B, feature_dim()] finite features."""
    network = extractor.build().eval()
    with torch.inference_mode():
        features = network(_clips(extractor))
    assert features.shape == (2, extractor.feature_dim()), (
        f"expected features of shape (2, {extractor.feature_dim()}), got {tuple(features.shape)}")
    assert torch.isfinite(features).all(), "features must be finite"


def check_deterministic(extractor: Extractor) -> None:
    """In eval mode, one clip gives the same features alone and in a batch (no dropout, no batch statistics)."""
    network = extractor.build().eval()
    clips = _clips(extractor)
    with torch.inference_mode():
        together, alone = network(clips), network(clips[:1])
    assert torch.allclose(together[:1], alone, rtol=1e-4, atol=1e-5), "features depend on the rest of the batch"


def check_weights_round_trip(extractor: Extractor) -> None:
    """The network's own state_dict, saved with a head, loads through ``--weights``; one key fewer is refused."""
    network = extractor.build()
    state = network.state_dict()
    overlap = sorted(set(extractor.head_keys) & set(state))
    assert not overlap, f"head_keys are dropped when loading, so the network must not hold them: {overlap}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "weights.pt"
        torch.save({**state, **{key: torch.zeros(1) for key in extractor.head_keys}}, path)
        load_weights(extractor.build(), path, extractor.head_keys, "the extractor")
        torch.save(dict(list(state.items())[1:]), path)
        try:
            load_weights(extractor.build(), path, extractor.head_keys, "the extractor")
        except UsageError as error:
            assert "1 keys missing" in str(error), f"the refusal must name the missing key: {error}"
        else:
            raise AssertionError("weights missing a key were loaded")


def check_inference_network(extractor: Extractor) -> None:
    """`inference_network` of a loaded network gives the network's features to float32 rounding (every BatchNorm
    first given seeded running statistics and affine values, so that folding them is not the identity)."""
    network = extractor.build().eval()
    generator = torch.Generator().manual_seed(SEED)
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_var is not None:
            for values, low, high in ((module.running_mean, -1.0, 1.0), (module.running_var, 0.5, 2.0),
                                      (module.weight, 0.5, 1.5), (module.bias, -0.5, 0.5)):
                if values is not None:
                    values.data.copy_(torch.rand(values.shape, generator=generator) * (high - low) + low)
    clips = _clips(extractor)
    with torch.inference_mode():
        expected = network(clips)
        features = extractor.inference_network(copy.deepcopy(network)).eval()(clips)
    gap = ((features - expected).abs().max() / expected.abs().max()).item()
    assert gap <= 1e-5, f"inference_network changes the features by {gap:.1e} of the largest one (float32: 1e-5)"


EXTRACTOR_CHECKS = (check_preprocessing, check_feature_shape, check_deterministic, check_weights_round_trip,
                    check_inference_network)
