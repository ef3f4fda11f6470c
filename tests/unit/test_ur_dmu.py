"""Unit tests of the UR-DMU plugin: equality with the public code (fixture), loss pieces, scoring, registration.

The fixture tests/unit/data/ur_dmu_reference.json was produced by running the public code (henrryzh1/UR-DMU
@ 40cfdf5, its WSAD model and AD_Loss, one Adam step) on CPU in float32 with parameters, inputs and the
VAE noise set by the rules recorded in it (its "produced_by" says how). Dropout is neutralised on both
sides by eval mode (the public ``flag = "Train"`` and vadbench's ``train_forward`` still select the
training branch), and the VAE noise by making ``torch.randn_like`` return the fixed noise tensor.
"""

from __future__ import annotations

import json
import math
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch
from torch import nn

from vadbench.api.method import TrainBatch
from vadbench.methods import ur_dmu
from vadbench.methods.ur_dmu.method import (
    URDMU,
    URDMUConfig,
    kl_term,
    l2_normalise,
    top_k_time_mean,
    triplet_term,
)
from vadbench.methods.ur_dmu.model import local_attention, snippet_k

#: One torch thread: tiny tensors gain nothing from threads, and the equality checks compare sums
#: whose order depends on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = json.loads((Path(__file__).parent / "data" / "ur_dmu_reference.json").read_text())
#: Largest relative gap allowed (float32 rounding of differently ordered but equal computations).
RTOL = 1e-5
#: vadbench loss entry -> the public AD_Loss entry.
LOSS_NAMES = {
    "loss": "total_loss", "mil": "att_loss", "pseudo": "N_Aatt", "abnormal": "A_loss", "normal": "N_loss",
    "abnormal_on_normal": "A_Nloss", "triplet": "triplet", "kl": "kl_loss", "distance": "distance",
}
#: vadbench training-branch output -> the public model's output.
FORWARD_NAMES = {
    "scores": "frame", "abnormal_att": "A_att", "normal_att": "N_att", "abnormal_on_normal": "A_Natt",
    "normal_on_abnormal": "N_Aatt",
}


# ------------------------------------------------------------------- the fixture's rules (see its fields)


def value_rule(name: str, k: int, shape: tuple[int, ...]) -> torch.Tensor:
    j = torch.arange(math.prod(shape), dtype=torch.float64)
    base = torch.sin(0.37 * j + 1.3 * k + 0.11 + 0.0007 * torch.remainder(j, 9973) ** 2)
    if name.endswith("norm.weight"):
        value = 1.0 + 0.2 * base
    elif name.endswith("bias"):
        value = 0.1 * base
    elif name.endswith("memory_block"):
        value = 4.0 * base / math.sqrt(shape[-1])
    else:
        value = 1.5 * base / math.sqrt(math.prod(shape[1:]))
    return value.reshape(shape).float()


def inputs(count: int, length: int, dim: int, offset: float) -> torch.Tensor:
    i = torch.arange(count, dtype=torch.float64)[:, None, None]
    t = torch.arange(length, dtype=torch.float64)[None, :, None]
    d = torch.arange(dim, dtype=torch.float64)[None, None, :]
    return (0.5 + 0.5 * torch.sin(0.7 * t + 1.1 * d + 0.05 * t * d + 2.3 * i + offset) + 0.02 * d / dim).float()


def noise(shape: tuple[int, ...]) -> torch.Tensor:
    j = torch.arange(math.prod(shape), dtype=torch.float64)
    return torch.cos(0.9 * j + 0.3).reshape(shape).float()


def reference_model(method: URDMU) -> nn.Module:
    """vadbench's model with the fixture's parameter values (public state_dict order, mapped names)."""
    model = method.build(1, FIXTURE["D"])
    mine = dict(model.named_parameters())
    assert len(mine) == len(FIXTURE["public_names"]) and not list(model.buffers())
    with torch.no_grad():
        for k, public in enumerate(FIXTURE["public_names"]):
            target = mine[FIXTURE["name_map"][public]]
            target.copy_(value_rule(public, k, tuple(target.shape)))
    return model


def reference_batch() -> TrainBatch:
    b, t, d = FIXTURE["B"], FIXTURE["T"], FIXTURE["D"]
    return TrainBatch.balanced(inputs(b, t, d, 0.0), inputs(b, t, d, 0.5) + 0.1)


def relative_gap(ours: torch.Tensor | float, theirs: list[float] | float) -> float:
    ours_t = torch.as_tensor(ours, dtype=torch.float64).reshape(-1)
    theirs_t = torch.as_tensor(theirs, dtype=torch.float64).reshape(-1)
    return ((ours_t - theirs_t).abs() / theirs_t.abs().clamp(min=1e-30)).max().item()


def sampled(tensor: torch.Tensor, index: list[int]) -> torch.Tensor:
    return tensor.detach().reshape(-1)[index]


def one_step(method: URDMU, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Forward, loss, backward and one optimiser step through vadbench's Method, as the fixture did."""
    model = reference_model(method).eval()  # dropout off; loss still runs the training branch
    batch = reference_batch()
    eps = noise((FIXTURE["B"], FIXTURE["T"], method.config.width))
    monkeypatch.setattr(torch, "randn_like", lambda like, *a, **k: eps.clone())
    outputs = model.train_forward(batch.features)
    terms = method.loss(model, batch)
    optimizer = method.optimizer(model.parameters())
    assert method.scheduler(optimizer, method.steps) is None
    optimizer.zero_grad()
    terms["loss"].backward()
    params = dict(model.named_parameters())
    grads = {name: p.grad.detach().clone() for name, p in params.items()}
    before = {name: p.detach().clone() for name, p in params.items()}
    optimizer.step()
    return {"outputs": outputs, "terms": terms, "grads": grads, "before": before, "after": params}


@pytest.fixture(scope="module")
def published_step() -> dict:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return one_step(URDMU(URDMUConfig()), monkeypatch)


# ------------------------------------------------------------------------------- equality with the code


def test_fixture_is_the_public_code_run():
    assert "henrryzh1/UR-DMU @ 40cfdf5f8bebbc3b59373935f9d6ca00e2f32bbc" in FIXTURE["produced_by"]
    assert sorted(FIXTURE["name_map"]) == sorted(FIXTURE["public_names"])


def test_training_branch_outputs_match_the_public_code(published_step):
    outputs = published_step["outputs"]
    for ours, theirs in FORWARD_NAMES.items():
        reference = FIXTURE["forward"][theirs]
        value = getattr(outputs, ours)
        assert list(value.shape) == reference["shape"], ours
        assert relative_gap(value.sum(), reference["sum"]) < RTOL, ours
        assert relative_gap(sampled(value, reference["index"]), reference["value"]) < RTOL, ours


def test_loss_terms_match_the_public_code(published_step):
    for ours, theirs in LOSS_NAMES.items():
        gap = relative_gap(published_step["terms"][ours], FIXTURE["losses"][theirs])
        assert gap < RTOL, f"{ours}: relative gap {gap:.2e}"


def test_gradients_match_the_public_code(published_step):
    for public, ours in FIXTURE["name_map"].items():
        reference, grad = FIXTURE["grads"][public], published_step["grads"][ours]
        assert relative_gap(grad.norm(), reference["norm"]) < RTOL, public
        theirs = torch.tensor(reference["value"], dtype=torch.float64)
        # Entries near zero are compared against the tensor's RMS gradient instead.
        close = torch.isclose(sampled(grad, reference["index"]).double(), theirs, rtol=RTOL,
                              atol=RTOL * reference["norm"] / math.sqrt(grad.numel()))
        assert bool(close.all()), public


def test_one_adam_step_matches_the_public_code(published_step):
    for public, ours in FIXTURE["name_map"].items():
        after = published_step["after"][ours]
        reference = FIXTURE["params_after_step"][public]
        assert relative_gap(sampled(after, reference["index"]), reference["value"]) < RTOL, public
        update = FIXTURE["update"][public]
        ours_update = sampled(after, update["index"]) - sampled(published_step["before"][ours], update["index"])
        # The first Adam update is about lr * sign(grad) = 1e-4; 1e-8 absolute allows one float32 ulp of a
        # parameter of magnitude ~0.1.
        assert torch.allclose(ours_update.double(), torch.tensor(update["value"], dtype=torch.float64),
                              rtol=RTOL, atol=1e-8), public


def test_test_branch_crop_mean_matches_the_public_code():
    method = URDMU(URDMUConfig())
    model = reference_model(method).eval()
    for n, reference in enumerate(FIXTURE["test"]):
        video = inputs(FIXTURE["test_crops"], reference["length"], FIXTURE["D"], 1.7 + n)  # (C, T, D)
        with torch.inference_mode():
            crop_scores = model(video)
            scores = method.score(model, video.transpose(0, 1)[None], torch.tensor([reference["length"]]))
        assert relative_gap(crop_scores, reference["crop_scores"]) < RTOL
        assert relative_gap(scores[0], reference["scores"]) < RTOL


def test_a_wrong_loss_weight_fails_the_comparison(monkeypatch):
    wrong = one_step(URDMU(URDMUConfig(kl_weight=0.002)), monkeypatch)
    assert relative_gap(wrong["terms"]["loss"], FIXTURE["losses"]["total_loss"]) > 1e-3


@pytest.mark.parametrize("dim", [1024, 2048])
def test_parameter_count_matches_the_public_model(dim):
    model = URDMU(URDMUConfig()).build(10, dim)
    count = sum(p.numel() for p in model.parameters())
    assert count == FIXTURE["parameter_count"][str(dim)]
    if dim == 1024:
        assert count == 6_492_929  # METHODS.md section 5


# ------------------------------------------------------------------------------------------ the pieces


def test_local_attention_is_column_normalised():
    g = local_attention(200)
    assert torch.allclose(g.sum(dim=0), torch.ones(200))
    assert g.sum(dim=1)[0].item() == pytest.approx(0.81, abs=0.01)
    assert torch.equal(local_attention(1), torch.ones(1, 1))


def test_top_k_sizes():
    assert [snippet_k(t) for t in (1, 15, 16, 200)] == [1, 1, 2, 13]
    scores = torch.arange(20.0)[None]
    assert top_k_time_mean(scores).item() == pytest.approx((19 + 18) / 2)


def test_kl_sums_over_time():
    mu, logvar = torch.ones(2, 5, 3), torch.zeros(2, 5, 3)
    # per (video, channel): -1/2 * sum over 5 snippets of (1 + 0 - 1 - 1) = 2.5
    assert kl_term(mu, logvar).item() == pytest.approx(2.5)
    assert torch.allclose(l2_normalise(torch.tensor([[3.0, 4.0]])), torch.tensor([[0.6, 0.8]]))


def test_triplet_term_is_torchs_triplet_margin_loss():
    anchor, positive, negative = torch.randn(3, 5, 7, generator=torch.Generator().manual_seed(0)).unbind(0)
    expected = nn.functional.triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2)
    assert torch.allclose(triplet_term(anchor, positive, negative, 1.0), expected, rtol=1e-6)


def test_training_input_and_defaults():
    method = URDMU(URDMUConfig())
    declared = method.training_input
    assert (declared.reduction.kind, declared.reduction.segments) == ("mean", 200)
    assert (declared.crops, declared.batch) == ("independent", "balanced")
    assert (method.batch_size, method.steps, method.padded_scoring) == (64, 3000, "alone")
    optimizer = method.optimizer([nn.Parameter(torch.zeros(1))])
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.Adam)
    assert (group["lr"], group["weight_decay"], group["betas"]) == (1e-4, 5e-5, (0.9, 0.999))
    assert method.grad_clip() is None


def test_scores_are_the_crop_mean_and_zero_at_padding():
    torch.manual_seed(0)
    method = URDMU(URDMUConfig(width=16, dim_head=4, mlp_dim=16, slots=8, head_hidden=8))
    model = method.build(3, 6).eval()
    video = torch.rand(1, 9, 3, 6)
    padded = torch.cat([video, torch.zeros(1, 2, 3, 6)], dim=1)
    with torch.inference_mode():
        scores = method.score(model, video, torch.tensor([9]))
        per_crop = model(video[0].transpose(0, 1))
        padded_scores = method.score(model, padded, torch.tensor([9]))
    assert torch.allclose(scores[0], per_crop.mean(dim=0))
    assert torch.equal(padded_scores[0, 9:], torch.zeros(2))


def test_training_branch_draws_noise_and_dropout_in_train_mode():
    method = URDMU(URDMUConfig(width=16, dim_head=4, mlp_dim=16, slots=8, head_hidden=8))
    torch.manual_seed(0)
    model = method.build(1, 6)
    batch = TrainBatch.balanced(torch.rand(2, 20, 6), torch.rand(2, 20, 6))
    model.train()
    first, second = method.loss(model, batch)["loss"], method.loss(model, batch)["loss"]
    assert first.item() != second.item()
    model.eval()  # dropout off, noise still drawn: the KL term does not depend on it, the distance does
    a, b = method.loss(model, batch), method.loss(model, batch)
    assert a["kl"].item() == b["kl"].item() and a["distance"].item() != b["distance"].item()


def test_registered_without_presets():
    registered = []
    ur_dmu.vadbench_register_methods(lambda *args, **preset: registered.append((args, preset)))
    assert registered == [(("ur-dmu", URDMU), {})]
    points = {point.name: point.value for point in entry_points(group="vadbench")}
    assert points["ur-dmu"] == "vadbench.methods.ur_dmu"
