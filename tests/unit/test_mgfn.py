"""Unit tests of the MGFN plugin: equality with the public code (fixture), parameter counts, pieces of the loss.

The fixture data/mgfn_reference.json was written by tests/reference/mgfn_reference.py from the public code
(carolchenyx/MGFN. at 98e9389, its ``produced_by`` says how): its model, test function and one train step
(one Adam step), with the authors' original train step (train.py at ded0ef6) beside it, at the published
widths except a narrower last stage (2048-d input, 10 crops, 32 segments, stages 64, 128, 256), with every
parameter, buffer, input and selection mask set by the rule of tests/reference/fixture_rule.py, run in
float32 and in float64. Here vadbench's MGFN gets the same values, in both precisions, and is compared with
the public float64 values group by group as tests/reference/comparison.py says (float64: 1e-12 of the group's
largest entry; float32: ten times the public code's own float32 rounding in the group). The
selection dropout is neutralised identically on both sides: both draw the fixture's masks (vadbench:
`MGFN.selection_mask` replaced).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest
import torch
from reference.comparison import failures, from_records
from reference.fixture_rule import selection_mask, snippet_features, state_value

from vadbench.api.method import TrainBatch
from vadbench.methods.mgfn.checkpoint import vadbench_name
from vadbench.methods.mgfn.method import MGFN, MGFNConfig, contrastive, halves
from vadbench.methods.mgfn.model import MGFNNet

#: One torch thread: tiny tensors gain nothing from threads, and the equality checks compare sums
#: whose order depends on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = json.loads((Path(__file__).parent / "data" / "mgfn_reference.json").read_text())
SHAPE, STREAMS = FIXTURE["shape"], FIXTURE["rule"]["streams"]
PRECISIONS = [torch.float32, torch.float64]
#: Tensors of one fixture group that are of other kinds than the rest of it, compared as groups of their own
#: (see tests/reference/comparison.py): the magnitudes, the selected features and their L1 norms beside the
#: scores, the contrastive terms before their weights beside the terms in the units of the loss, and the running
#: means beside the running variances.
KINDS = {
    "forward": [("magnitudes",), ("selected_normal_features", "selected_abnormal_features"),
                ("selected_normal_l1", "selected_abnormal_l1")],
    "terms": [("con", "con_n", "con_a")],
    "batchnorm": [tuple(name for name in FIXTURE["batchnorm"] if name.endswith("running_mean"))],
}
def fixture_masks() -> torch.Tensor:
    """The (2n, S) selection masks of the fixture, normal rows first."""
    return selection_mask(STREAMS["mask"], 2 * SHAPE["per_class"], SHAPE["segments"], FIXTURE["rule"]["mask_p"])


def fixture_method(**options: object) -> MGFN:
    """MGFN at the fixture's widths, drawing the fixture's selection masks."""
    method = MGFN(MGFNConfig(**dict(zip(("dim1", "dim2", "dim3"), SHAPE["dims"], strict=True)), **options))
    method.selection_mask = lambda magnitudes: fixture_masks().to(magnitudes.dtype)  # type: ignore[method-assign]
    return method


@functools.cache
def rule_state() -> dict[str, torch.Tensor]:
    """The fixture rule's values of the public state, under vadbench's names (float32, public shapes)."""
    rows = enumerate(FIXTURE["public_state"])
    return {vadbench_name(name): state_value(kind, k, shape) for k, (name, shape, kind) in rows}


def fixture_model(method: MGFN, dtype: torch.dtype) -> torch.nn.Module:
    """The method's model with the fixture's values (built on the meta device: no initialisation)."""
    with torch.device("meta"):
        model = method.build(SHAPE["crops"], SHAPE["feature_dim"])
    model.to_empty(device="cpu")
    state, values = model.state_dict(), rule_state()
    assert sorted(values) == sorted(state), "the name map does not cover the model"
    model.load_state_dict({name: value.reshape(state[name].shape) for name, value in values.items()})
    return model.to(dtype)


def public_shape(public: str) -> list[int]:
    return FIXTURE["grads"][public]["shape"]


def fixture_batch(dtype: torch.dtype) -> TrainBatch:
    n = SHAPE["per_class"]
    videos = snippet_features(STREAMS["train"], [0] * n + [1] * n, SHAPE["crops"], SHAPE["segments"],
                              SHAPE["feature_dim"])
    return TrainBatch.balanced(videos[:n].to(dtype), videos[n:].to(dtype))


def scored_video(n: int, dtype: torch.dtype) -> torch.Tensor:
    """Test video n as vadbench scores it, (1, C, T, D)."""
    video = snippet_features(STREAMS["test"] + n, [0], SHAPE["crops"], SHAPE["test_lengths"][n], SHAPE["feature_dim"])
    return video.to(dtype)


def training_step(method: MGFN, dtype: torch.dtype) -> dict:
    """vadbench's MGFN on the fixture's inputs: test scores (eval mode, the rule's BatchNorm statistics),
    then one training step, as the public code ran them; every quantity keyed by the fixture's names."""
    model = fixture_model(method, dtype).eval()
    with torch.inference_mode():
        test_scores = [method.score(model, scored_video(n, dtype), torch.tensor([length]))[0]
                       for n, length in enumerate(SHAPE["test_lengths"])]
    model.train()
    captured = {}
    handle = model.register_forward_hook(lambda _m, _i, out: captured.setdefault("out", out))
    batch = fixture_batch(dtype)
    terms = method.loss(model, batch)
    handle.remove()
    state = model.state_dict()
    batchnorm = {public: state[vadbench_name(public)].clone() for public in FIXTURE["batchnorm"]}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = method.optimizer(model.parameters())
    optimizer.zero_grad()
    terms["loss"].backward()
    optimizer.step()
    params = dict(model.named_parameters())
    mapped = {public: vadbench_name(public) for public in FIXTURE["grads"]}
    outputs = tuple(output.detach() for output in captured["out"])
    return {
        "forward": public_forward_outputs(*outputs, batch, method),
        "terms": public_terms(terms),
        "batchnorm": batchnorm,
        # In the public shapes (its channel norms' scales are (1, C, 1)).
        "grads": {public: params[ours].grad.reshape(public_shape(public)) for public, ours in mapped.items()},
        "updates": {public: (params[ours].detach().double() - before[ours].double()).reshape(public_shape(public))
                    for public, ours in mapped.items()},
        "test_scores": test_scores,
        "outputs": outputs,
    }


def public_terms(terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """vadbench's loss terms with the public mgfn_loss's result (the loss without the regularisers)."""
    terms = {name: term.detach() for name, term in terms.items()}
    return {**terms, "mgfn": terms["loss"] - terms["smooth"] - terms["sparse"]}


def public_forward_outputs(features: torch.Tensor, crop_scores: torch.Tensor, batch: TrainBatch, method: MGFN) -> dict:
    """vadbench's forward outputs in the public model's layout: crop-mean scores and magnitudes (2n, S),
    the selected snippets (2n, k), their mean scores per class, their features (C n, k, dim3) and the
    features' L1 norms (C n, k) per class, rows crop-major."""
    videos, crops, steps, _ = batch.features.shape
    n = videos // 2
    features = features.reshape(videos, crops, steps, -1)
    scores = crop_scores.reshape(videos, crops, steps).mean(dim=1)
    magnitudes = torch.linalg.vector_norm(features, dim=-1).mean(dim=1)
    index = (magnitudes * method.selection_mask(magnitudes)).topk(method.config.k, dim=1).indices
    selected = features.gather(2, index[:, None, :, None].expand(-1, crops, -1, features.shape[-1]))
    rows = selected.transpose(0, 1)  # (C, 2n, k, dim3)
    normal, abnormal = (rows[:, part].reshape(crops * n, index.shape[1], -1) for part in (slice(n), slice(n, None)))
    selected_scores = scores.gather(1, index).mean(dim=1)
    return {
        "scores": scores,
        "magnitudes": magnitudes,
        "score_normal": selected_scores[:n],
        "score_abnormal": selected_scores[n:],
        "selected_normal_features": normal,
        "selected_abnormal_features": abnormal,
        "selected_normal_l1": normal.abs().sum(dim=-1),
        "selected_abnormal_l1": abnormal.abs().sum(dim=-1),
        "index": index.sort(dim=1).values,
    }


@functools.cache
def published_step(dtype: torch.dtype) -> dict:
    return training_step(fixture_method(), dtype)


@pytest.fixture(scope="module", params=PRECISIONS, ids=["float32", "float64"])
def step(request: pytest.FixtureRequest) -> tuple[torch.dtype, dict]:
    return request.param, published_step(request.param)


@pytest.mark.parametrize("widths", ["published", "fixture"])
def test_parameter_count_equals_the_public_models(widths: str) -> None:
    config = MGFNConfig() if widths == "published" else fixture_method().config
    with torch.device("meta"):
        model = MGFN(config).build(SHAPE["crops"], SHAPE["feature_dim"])
    assert sum(p.numel() for p in model.parameters()) == FIXTURE["parameter_count"][widths]


def test_selected_snippets_equal_the_public_codes(step) -> None:
    assert step[1]["forward"]["index"].tolist() == FIXTURE["selected"]


@pytest.mark.parametrize("group", ["forward", "terms", "batchnorm", "updates"])
def test_training_step_equals_the_public_code(step, group: str) -> None:
    dtype, ours = step
    assert failures(ours[group], from_records(FIXTURE[group]), dtype, *KINDS.get(group, ())) == []


def test_gradients_equal_the_public_code(step) -> None:
    dtype, ours = step
    assert failures(ours["grads"], from_records(FIXTURE["grads"]), dtype) == []


def test_test_scores_equal_the_public_code(step) -> None:
    dtype, ours = step
    scores = dict(enumerate(ours["test_scores"]))
    assert failures(scores, from_records(dict(enumerate(FIXTURE["test_scores"]))), dtype) == []


def recomputed_loss(ours: dict, dtype: torch.dtype, **options: object) -> dict[str, torch.Tensor]:
    """The loss of another configuration on the step's (pre-update) network outputs, without a forward."""
    return public_terms(fixture_method(**options).loss(lambda _: ours["outputs"], fixture_batch(dtype)))


def test_original_regularisers_equal_the_authors_code(step) -> None:
    dtype, ours = step
    original = recomputed_loss(ours, dtype, regularisers="original")
    assert failures(original, from_records(FIXTURE["original"]), dtype) == []


@pytest.mark.parametrize("option", [{"beta": 2e-3}, {"alpha": 2e-3}, {"margin": 201.0}, {"smooth": 1e-3},
                                    {"sparse": 1e-2}, {"regularisers": "original"}])
def test_a_changed_loss_weight_fails_the_comparison(step, option: dict) -> None:
    """The same check catches a loss weight (or regulariser) that is not the code's."""
    dtype, ours = step
    changed = recomputed_loss(ours, dtype, **option)
    assert "loss" in "".join(failures(changed, from_records(FIXTURE["terms"]), dtype, *KINDS["terms"]))


def test_optimizer_is_the_codes() -> None:
    method = fixture_method()
    optimizer = method.optimizer([torch.nn.Parameter(torch.zeros(1))])
    group = optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (FIXTURE["optimizer"]["lr"], FIXTURE["optimizer"]["weight_decay"])
    assert method.scheduler(optimizer, 5) is None  # constant lr, as [0.001] * 15000 per epoch


def test_contrastive_and_pairing():
    a, b = torch.tensor([[3.0, 4.0, 0.0]]), torch.zeros(1, 3)
    d = math.sqrt((3 + 1e-6) ** 2 + (4 + 1e-6) ** 2 + 1e-12)
    assert contrastive(a, b, True, 200.0).item() == pytest.approx(d**2)
    assert contrastive(a, b, False, 200.0).item() == pytest.approx((200 - d) ** 2)
    assert contrastive(a, b, False, 2.0).item() == 0
    rows = torch.arange(5.0)[:, None]
    upper, lower = halves(rows)
    assert upper.flatten().tolist() == [2.0, 3.0] and lower.flatten().tolist() == [0.0, 1.0]
    assert contrastive(*halves(rows[:1]), True, 200.0).item() == 0


def test_magnitude_is_computed_from_the_features():
    """The magnitude channel enters through embed_magnitude: zeroing its weight changes the output."""
    torch.manual_seed(0)
    model = MGFNNet(8, dims=(64, 64, 64), depths=(1, 1, 1)).eval()
    x = torch.rand(2, 5, 8)
    with torch.no_grad():
        before = model(x)[1]
        model.embed_magnitude.weight.zero_()
        model.embed_magnitude.bias.zero_()
        after = model(x)[1]
    assert not torch.allclose(before, after)


def test_short_videos_and_small_widths():
    method = MGFN(MGFNConfig(dim1=64, dim2=64, dim3=128, depth1=1, depth2=1, depth3=1))
    model = method.build(2, 16).eval()
    for length in (1, 2, 3):
        with torch.inference_mode():
            scores = method.score(model, torch.rand(1, 2, length, 16), torch.tensor([length]))
        assert scores.shape == (1, length) and bool(((scores >= 0) & (scores <= 1)).all())


def test_options_are_checked():
    with pytest.raises(ValueError, match="regularisers"):
        MGFNConfig(regularisers="paper")
    with pytest.raises(ValueError, match="block2"):
        MGFNConfig(block2="local")
    with pytest.raises(ValueError, match="head_dim"):
        MGFNConfig(dim1=32)
