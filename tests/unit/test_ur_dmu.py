"""Unit tests of the UR-DMU plugin: equality with the public code (fixture), loss pieces, scoring, registration.

The fixture tests/unit/data/ur_dmu_reference.json is written by tests/reference/ur_dmu_reference.py, which runs
the public code (henrryzh1/UR-DMU at 40cfdf5: its WSAD model, AD_Loss, one Adam step and the test branch) in
float32 and in float64, with parameters, inputs and the VAE noise set by the rules recorded in the fixture.
Dropout is neutralised on both sides by eval mode (the public ``flag = "Train"`` and vadbench's
``train_forward`` still select the training branch), and the VAE noise by making ``torch.randn_like``
return the fixed noise tensor. vadbench runs the same step in float32 and in float64 and is compared with
the public float64 values group by group as tests/reference/comparison.py says (float64: 1e-12 of the group's
largest entry; float32: ten times the public code's own float32 rounding in the group).
"""

from __future__ import annotations

import functools
import json
import math
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch
from reference.comparison import failures, group_at, public_at
from torch import nn

from vadbench.api.method import TrainBatch
from vadbench.methods import ur_dmu
from vadbench.methods.ur_dmu.method import URDMU, URDMUConfig, kl_term, l2_normalise, top_k_time_mean, triplet_term
from vadbench.methods.ur_dmu.model import snippet_k

#: One torch thread: tiny tensors gain nothing from threads, and the equality checks compare sums
#: whose order depends on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = json.loads((Path(__file__).parent / "data" / "ur_dmu_reference.json").read_text())
SIZES = FIXTURE["sizes"]
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}
#: The fixture's group of tensors at a path (see tests/reference/comparison.py).
group = functools.partial(group_at, FIXTURE)
#: The public parameter -> vadbench's.
NAME_MAP = {
    "embedding.conv_1.0.weight": "embedding.conv.weight",
    "embedding.conv_1.0.bias": "embedding.conv.bias",
    "cls_head.mlp.0.weight": "classifier.0.weight",
    "cls_head.mlp.0.bias": "classifier.0.bias",
    "cls_head.mlp.2.weight": "classifier.2.weight",
    "cls_head.mlp.2.bias": "classifier.2.bias",
    "Amemory.memory_block": "abnormal_memory.items",
    "Nmemory.memory_block": "normal_memory.items",
    "encoder_mu.0.weight": "encoder_mu.weight",
    "encoder_mu.0.bias": "encoder_mu.bias",
    "encoder_var.0.weight": "encoder_var.weight",
    "encoder_var.0.bias": "encoder_var.bias",
    **{
        f"selfatt.layers.{layer}.{public}": f"transformer.{layer}.{ours}"
        for layer in range(2)
        for public, ours in {
            "0.norm.weight": "attention_norm.weight",
            "0.norm.bias": "attention_norm.bias",
            "0.fn.to_qkv.weight": "attention.qkvu.weight",
            "0.fn.to_out.0.weight": "attention.out.weight",
            "0.fn.to_out.0.bias": "attention.out.bias",
            "1.norm.weight": "feedforward_norm.weight",
            "1.norm.bias": "feedforward_norm.bias",
            "1.fn.net.0.weight": "feedforward.0.weight",
            "1.fn.net.0.bias": "feedforward.0.bias",
            "1.fn.net.3.weight": "feedforward.3.weight",
            "1.fn.net.3.bias": "feedforward.3.bias",
        }.items()
    },
}
#: vadbench loss entry -> the public AD_Loss entry (the distance term is the public model's output).
LOSS_NAMES = {
    "loss": "total_loss", "mil": "att_loss", "pseudo": "N_Aatt", "abnormal": "A_loss", "normal": "N_loss",
    "abnormal_on_normal": "A_Nloss", "triplet": "triplet", "kl": "kl_loss", "distance": "distance",
}
#: Loss entries of their own scale, compared apart from the rest (see tests/reference/comparison.py): the KL term
#: (a sum over snippets, weight 1e-3 in the total) and the distance term (weight 1e-4).
LOSS_KINDS = (("kl_loss",), ("distance",))
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


def reference_model(method: URDMU, dtype: torch.dtype = torch.float32) -> nn.Module:
    """vadbench's model with the fixture's parameter values (public state_dict order), in `dtype`."""
    model = method.build(1, SIZES["D"])
    mine = dict(model.named_parameters())
    with torch.no_grad():
        for k, (public, shape) in enumerate(FIXTURE["public_parameters"]):
            mine[NAME_MAP[public]].copy_(value_rule(public, k, tuple(shape)))
    return model.to(dtype)


def reference_batch(dtype: torch.dtype = torch.float32) -> TrainBatch:
    b, t, d = SIZES["B"], SIZES["T"], SIZES["D"]
    return TrainBatch.balanced(inputs(b, t, d, 0.0).to(dtype), (inputs(b, t, d, 0.5) + 0.1).to(dtype))


def one_step(method: URDMU, monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype = torch.float32) -> dict:
    """Forward, loss, backward and one optimiser step through vadbench's Method, as the fixture did."""
    model = reference_model(method, dtype).eval()  # dropout off; loss still runs the training branch
    batch = reference_batch(dtype)
    eps = noise((SIZES["B"], SIZES["T"], method.config.width)).to(dtype)
    monkeypatch.setattr(torch, "randn_like", lambda like, *a, **k: eps.clone())
    outputs = model.train_forward(batch.features)
    terms = method.loss(model, batch)
    optimizer = method.optimizer(model.parameters())
    assert method.scheduler(optimizer, method.config.steps) is None
    optimizer.zero_grad()
    terms["loss"].backward()
    params = dict(model.named_parameters())
    grads = {name: p.grad.detach().clone() for name, p in params.items()}
    before = {name: p.detach().clone() for name, p in params.items()}
    optimizer.step()
    return {"outputs": outputs, "terms": terms, "grads": grads, "before": before, "after": params}


@pytest.fixture(scope="module", params=list(PRECISIONS))
def published_step(request) -> tuple[str, dict]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return request.param, one_step(URDMU(URDMUConfig()), monkeypatch, PRECISIONS[request.param])


# ------------------------------------------------------------------------------- equality with the code


def test_every_public_parameter_has_a_counterpart_of_its_shape():
    model = URDMU(URDMUConfig()).build(1, SIZES["D"])
    mine = {name: list(p.shape) for name, p in model.named_parameters()}
    assert sorted(NAME_MAP) == sorted(name for name, _ in FIXTURE["public_parameters"])
    assert sorted(NAME_MAP.values()) == sorted(mine) and not list(model.buffers())
    assert {NAME_MAP[public]: shape for public, shape in FIXTURE["public_parameters"]} == mine


def test_training_branch_outputs_match_the_public_code(published_step):
    precision, step = published_step
    ours = {theirs: getattr(step["outputs"], name) for name, theirs in FORWARD_NAMES.items()}
    assert failures(ours, group("forward"), PRECISIONS[precision]) == []


def test_loss_terms_match_the_public_code(published_step):
    precision, step = published_step
    ours = {theirs: step["terms"][name] for name, theirs in LOSS_NAMES.items()}
    assert failures(ours, group("losses"), PRECISIONS[precision], *LOSS_KINDS) == []


def test_gradients_match_the_public_code(published_step):
    precision, step = published_step
    ours = {public: step["grads"][name] for public, name in NAME_MAP.items()}
    assert failures(ours, group("grads"), PRECISIONS[precision]) == []


def test_one_adam_step_matches_the_public_code(published_step):
    precision, step = published_step
    after = {public: step["after"][name] for public, name in NAME_MAP.items()}
    update = {public: step["after"][name].detach() - step["before"][name] for public, name in NAME_MAP.items()}
    assert failures(after, group("after_step"), PRECISIONS[precision]) == []
    assert failures(update, group("update"), PRECISIONS[precision]) == []


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_test_branch_crop_mean_matches_the_public_code(precision):
    method = URDMU(URDMUConfig())
    model = reference_model(method, PRECISIONS[precision]).eval()
    ours = {}
    for n, reference in enumerate(FIXTURE[precision]["test"]):
        length = reference["length"]
        video = inputs(SIZES["test_crops"], length, SIZES["D"], 1.7 + n).to(PRECISIONS[precision])  # (C, T, D)
        with torch.inference_mode():
            ours[n, "crop_scores"] = model(video)
            ours[n, "scores"] = method.score(model, video[None], torch.tensor([length]))[0]
    assert failures(ours, {key: public_at(FIXTURE, "test", *key) for key in ours}, PRECISIONS[precision]) == []


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_a_wrong_loss_weight_fails_the_comparison(precision, monkeypatch):
    wrong = one_step(URDMU(URDMUConfig(kl_weight=0.002)), monkeypatch, PRECISIONS[precision])
    ours = {theirs: wrong["terms"][name] for name, theirs in LOSS_NAMES.items()}
    assert "total_loss" in "".join(failures(ours, group("losses"), PRECISIONS[precision], *LOSS_KINDS))


def test_defaults_are_the_public_options():
    config, public = URDMUConfig(), FIXTURE["defaults"]
    assert (config.lr, config.steps, config.batch_size, config.segments, config.slots) == (
        public["lr"], public["steps"], public["batch_size"], public["train_segments"], public["slots"])
    assert public["lr_schedule_constant"]
    method = URDMU(config)
    optimizer = method.optimizer([nn.Parameter(torch.zeros(1))])
    group = optimizer.param_groups[0]
    assert (group["weight_decay"], list(group["betas"])) == (public["weight_decay"], public["betas"])
    assert method.scheduler(optimizer, method.config.steps) is None


@pytest.mark.parametrize("dim", [1024, 2048])
def test_parameter_count_matches_the_public_model(dim):
    model = URDMU(URDMUConfig()).build(10, dim)
    assert sum(p.numel() for p in model.parameters()) == FIXTURE["parameter_count"][str(dim)]


# ------------------------------------------------------------------------------------------ the pieces


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
    declared = method.declarations()
    training_input = declared.training_input
    assert (training_input.reduction.kind, training_input.reduction.segments) == ("mean", 200)
    assert (training_input.crops, training_input.batch) == ("independent", "balanced")
    assert (method.batch_size, method.config.steps, declared.padded_scoring) == (64, 3000, "alone")
    optimizer = method.optimizer([nn.Parameter(torch.zeros(1))])
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.Adam)
    assert (group["lr"], group["weight_decay"], group["betas"]) == (1e-4, 5e-5, (0.9, 0.999))
    assert declared.grad_clip is None


def test_scores_are_the_crop_mean_and_zero_at_padding():
    torch.manual_seed(0)
    method = URDMU(URDMUConfig(width=16, head_dim=4, mlp_dim=16, slots=8, head_hidden=8))
    model = method.build(3, 6).eval()
    video = torch.rand(1, 3, 9, 6)
    padded = torch.cat([video, torch.zeros(1, 3, 2, 6)], dim=2)
    with torch.inference_mode():
        scores = method.score(model, video, torch.tensor([9]))
        per_crop = model(video[0])
        padded_scores = method.score(model, padded, torch.tensor([9]))
    assert torch.allclose(scores[0], per_crop.mean(dim=0))
    assert torch.equal(padded_scores[0, 9:], torch.zeros(2))


def test_training_branch_draws_noise_and_dropout_in_train_mode():
    method = URDMU(URDMUConfig(width=16, head_dim=4, mlp_dim=16, slots=8, head_hidden=8))
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
