"""Unit tests of the Sultani et al. MIL ranking plugin: loss terms against hand values, scoring, training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from vadbench.api.method import TrainBatch, valid_mask
from vadbench.methods import sultani_mil
from vadbench.methods.sultani_mil.method import (
    SultaniMIL,
    SultaniMILConfig,
    l2_penalty,
    linear_weights,
    sparsity_per_video,
)
from vadbench.methods.sultani_mil.model import MILNet
from vadbench.plugins.registry import build_config

#: One torch thread: tiny tensors gain nothing from threads, and the equality checks compare sums
#: whose order depends on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

D = 16
#: Scores, weights and the public code's objective on them (the file says how they were produced).
OBJECTIVE_FIXTURE = Path(__file__).parent / "data" / "sultani_objective.json"


def method(**options: object) -> SultaniMIL:
    return SultaniMIL(SultaniMILConfig(**{"hidden1": 16, "hidden2": 8, **options}))


class FirstCoordinate(nn.Module):
    """A stand-in network whose scores are the first feature coordinate, through a unit linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)
        with torch.no_grad():
            self.linear.weight.fill_(2.0)
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x[..., :1]).squeeze(-1) / 2


class GivenScores(nn.Module):
    """A stand-in network whose scores are the first feature coordinate; its linear layers (never used
    in the forward) carry the weights that the L2 penalty sees."""

    def __init__(self, weights: list[list[list[float]]], biases: list[list[float]]) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for weight, bias in zip(weights, biases, strict=True):
            layer = nn.Linear(len(weight[0]), len(weight), dtype=torch.float64)
            with torch.no_grad():
                layer.weight.copy_(torch.tensor(weight))
                layer.bias.copy_(torch.tensor(bias))
            self.layers.append(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., 0]


# --- loss terms against hand values ---------------------------------------------------------------


def test_sparsity_stays_within_each_video() -> None:
    scores = torch.tensor([[0.1, 0.5, 0.2], [0.9, 0.9, 0.0]])
    assert sparsity_per_video(scores).tolist() == pytest.approx([0.8, 1.8])


def test_l2_penalty_hand_value() -> None:
    assert l2_penalty([torch.tensor([[1.0, 2.0]]), torch.tensor([3.0])]).item() == pytest.approx(14.0)


def test_l2_penalty_covers_the_three_weight_matrices_only() -> None:
    weights = linear_weights(MILNet(D, hidden=(16, 8)))
    assert [tuple(w.shape) for w in weights] == [(16, D), (8, 16), (1, 8)]


@pytest.mark.parametrize(("reduction", "bags"), [("sum", 1.0), ("mean", 2.0)])
def test_loss_hand_value(reduction: str, bags: float) -> None:
    # Two abnormal and two normal bags, two crops, three segments; crop scores are averaged before the hinge.
    normal = torch.tensor([[[0.2, 0.4, 0.0], [0.4, 0.4, 0.2]], [[0.1, 0.0, 0.1], [0.1, 0.2, 0.1]]])
    abnormal = torch.tensor([[[1.2, 0.2, 0.4], [1.4, 0.4, 0.4]], [[0.0, 0.5, 0.7], [0.0, 0.5, 0.7]]])
    # crop means: normal [0.3, 0.4, 0.1], [0.1, 0.1, 0.1]; abnormal [1.3, 0.3, 0.4], [0.0, 0.5, 0.7]
    options = {"smooth": 0.5, "sparse": 0.25, "weight_penalty": 0.1, "reduction": reduction}
    terms = method(**options).loss(FirstCoordinate(), TrainBatch.balanced(normal[..., None], abnormal[..., None]))
    # Each abnormal bag against both normal bags: (0.1 + max(0, -0.2)) / 2 and (0.7 + 0.4) / 2, summed
    # over the abnormal bags ("sum") or averaged ("mean"); pairing bag i with bag i would give 0.25 for "mean".
    rank = ((0.1 + 0.0) / 2 + (0.7 + 0.4) / 2) / bags
    smooth = 0.5 * ((1.0**2 + 0.1**2) + (0.5**2 + 0.2**2)) / bags
    sparse = 0.25 * ((1.3 + 0.3 + 0.4) + (0.0 + 0.5 + 0.7)) / bags
    l2 = 0.1 * 2.0**2  # not reduced: one penalty per batch
    assert terms["rank"].item() == pytest.approx(rank, rel=1e-5)
    assert terms["smooth"].item() == pytest.approx(smooth, rel=1e-5)
    assert terms["sparse"].item() == pytest.approx(sparse, rel=1e-5)
    assert terms["l2"].item() == pytest.approx(l2, rel=1e-5)
    assert terms["loss"].item() == pytest.approx(rank + smooth + sparse + l2, rel=1e-5)
    assert terms["loss"].requires_grad and not any(terms[n].requires_grad for n in ("rank", "smooth", "l2"))


def test_loss_equals_the_public_codes_objective_on_the_fixture() -> None:
    """30 + 30 bags of 32 scores (some abnormal maxima above 1, so that some hinges are 0) and small
    weight matrices: every term equals the public code's, computed from its custom_objective."""
    fixture = json.loads(OBJECTIVE_FIXTURE.read_text())
    model = GivenScores(fixture["weights"], fixture["biases"])
    normal = torch.tensor(fixture["normal_scores"], dtype=torch.float64)[:, None, :, None]
    abnormal = torch.tensor(fixture["abnormal_scores"], dtype=torch.float64)[:, None, :, None]
    assert normal.shape == abnormal.shape == (30, 1, 32, 1)
    terms = SultaniMIL(SultaniMILConfig()).loss(model, TrainBatch.balanced(normal, abnormal))
    for name, reference in fixture["reference"].items():
        assert terms[name].item() == pytest.approx(reference, rel=1e-6), name


def test_weight_penalty_share_at_initialisation() -> None:
    """On 30 + 30 bags of 32 C3D-sized (4096-d) segments, the L2 penalty is about 3 % of the public
    code's loss at initialisation, and about half of the averaged form's (30 times more weight)."""
    torch.manual_seed(5)
    features = torch.rand(60, 1, 32, 4096)
    shares = {}
    for reduction in ("sum", "mean"):
        mil = SultaniMIL(SultaniMILConfig(reduction=reduction))
        torch.manual_seed(6)
        model = mil.build(1, 4096)
        with torch.no_grad():
            terms = mil.loss(model, TrainBatch.balanced(features[:30], features[30:]))
        shares[reduction] = (terms["l2"] / terms["loss"]).item()
    assert 0.02 < shares["sum"] < 0.045
    assert 0.4 < shares["mean"] < 0.6


# --- network and scoring -----------------------------------------------------------------------------


@pytest.mark.parametrize("crops", [1, 10])
def test_loss_and_score_shapes(crops: int) -> None:
    torch.manual_seed(0)
    mil = method()
    model = mil.build(crops, D)
    terms = mil.loss(model, TrainBatch.balanced(torch.randn(3, crops, 32, D), torch.randn(3, crops, 32, D)))
    assert set(terms) == {"loss", "rank", "smooth", "sparse", "l2"} and terms["loss"].shape == ()
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        scores = mil.score(model, torch.randn(2, crops, 7, D), torch.tensor([7, 4]))
    assert scores.shape == (2, 7) and ((scores >= 0) & (scores <= 1)).all()
    assert (scores[1, 4:] == 0).all()


def test_score_is_the_crop_mean_and_ignores_padding() -> None:
    torch.manual_seed(1)
    mil = method()
    model = mil.build(3, D)
    model.eval()
    lengths = torch.tensor([5, 2])
    features = torch.randn(2, 3, 5, D)
    with torch.no_grad():
        batched = mil.score(model, features, lengths)
        alone = mil.score(model, features[1:, :, :2], torch.tensor([2]))[0]
        by_crop = torch.stack([model(features[0, c]) for c in range(3)]).mean(dim=0)
    torch.testing.assert_close(batched[1, :2], alone)
    torch.testing.assert_close(batched[0], by_crop)
    assert torch.equal(batched * valid_mask(lengths, 5), batched)


def test_l2_normalisation_makes_scores_scale_invariant() -> None:
    torch.manual_seed(2)
    x = torch.randn(4, D)
    normalised = MILNet(D, hidden=(16, 8)).eval()
    raw = MILNet(D, hidden=(16, 8), l2_normalize=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(normalised(x), normalised(7.0 * x))
        assert not torch.allclose(raw(x), raw(7.0 * x))


def test_glorot_normal_initialisation_with_zero_biases() -> None:
    torch.manual_seed(3)
    model = MILNet(512, hidden=(512, 32))
    first = model.layers[0]
    assert (first.bias == 0).all()
    assert first.weight.std().item() == pytest.approx(math.sqrt(2 / (512 + 512)), rel=0.02)


# --- config, registration, optimiser, training -------------------------------------------------------


def test_defaults_are_the_published_settings() -> None:
    cfg = SultaniMILConfig()
    assert (cfg.batch_size, cfg.steps, cfg.lr, cfg.dropout) == (30, 20000, 0.01, 0.6)
    assert (cfg.hidden1, cfg.hidden2, cfg.weight_penalty) == (512, 32, 1e-3)
    assert (cfg.smooth, cfg.sparse, cfg.margin, cfg.l2_normalize) == (8e-5, 8e-5, 1.0, True)
    assert cfg.reduction == "sum"


@pytest.mark.parametrize(
    ("option", "value"),
    [("lr", 0.0), ("dropout", 1.0), ("batch_size", 0), ("smooth", -1e-5), ("hidden2", 0), ("reduction", "avg")],
)
def test_config_refuses_bad_values(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=repr(option)):
        SultaniMILConfig(**{option: value})


def test_config_parses_command_line_strings() -> None:
    cfg = build_config(SultaniMILConfig, {"l2_normalize": "no", "lr": "0.001"})
    assert (cfg.l2_normalize, cfg.lr) == (False, 0.001)


def test_hookimpl_registers_sultani_mil() -> None:
    calls = []
    sultani_mil.vadbench_register_methods(register=lambda *args, **kwargs: calls.append((args, kwargs)))
    assert calls == [(("sultani-mil", SultaniMIL), {})]


def test_optimizer_is_adagrad_with_keras_epsilon() -> None:
    optimizer = method(lr=0.001).optimizer([nn.Parameter(torch.zeros(1))])
    assert isinstance(optimizer, torch.optim.Adagrad) and optimizer.defaults["lr"] == 0.001
    assert optimizer.defaults["eps"] == 1e-8


def test_training_reduces_the_loss_on_a_separable_toy_batch() -> None:
    torch.manual_seed(4)
    mil = method(lr=0.1)  # Adagrad at 0.01 needs far more than 100 steps to move a 16-d toy
    model = mil.build(1, D)
    direction = torch.randn(D)
    normal = torch.randn(6, 1, 32, D)
    abnormal = torch.randn(6, 1, 32, D)
    abnormal[:, :, 20:24] += 3.0 * direction  # anomalous segments point along one direction
    optimizer = mil.optimizer(model.parameters())
    losses = []
    for _ in range(100):
        loss = mil.loss(model, TrainBatch.balanced(normal, abnormal))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    assert torch.stack(losses[-10:]).mean() < 0.5 * torch.stack(losses[:10]).mean()
    model.eval()
    with torch.no_grad():
        abnormal_scores = mil.score(model, abnormal, torch.full((6,), 32))
        normal_scores = mil.score(model, normal, torch.full((6,), 32))
    assert abnormal_scores[:, 20:24].min() > normal_scores.max()
