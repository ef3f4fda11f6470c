"""Unit tests of the MGFN plugin: equality with the public code (fixture), parameter count, pieces of the loss.

The fixture ``data/mgfn_reference.json`` was produced from the public code (carolchenyx/MGFN. at 98e9389, see
its ``produced_by``) with every parameter, buffer and input set by a hash rule that does not use torch's
RNG; here vadbench's network gets the same values through the fixture's name mapping. The selection
dropout is neutralised identically on both sides: the fixture's fixed masks are injected (in vadbench by
replacing `MGFN.selection_mask`). Shapes: the published widths (2048-d input, 10 crops, 28.6M parameters)
with 2 + 2 videos of 8 segments, and one 7-snippet test video in eval mode.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest
import torch

from vadbench.api.method import TrainBatch
from vadbench.methods.mgfn.method import MGFN, MGFNConfig, contrastive, halves
from vadbench.methods.mgfn.model import MGFNNet

#: One torch thread: tiny tensors gain nothing from threads, and the equality checks compare sums
#: whose order depends on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURE = json.loads((Path(__file__).parent / "data" / "mgfn_reference.json").read_text())
SHAPE = FIXTURE["shape"]
#: Relative gaps allowed (max |ours - reference| / max |reference| of each quantity, fp32 on CPU).
RTOL = 1e-5
#: Gradients carry the fp32 rounding of the same-class contrastive terms (see
#: `test_same_class_contrastive_terms_match_public_code`): the public code's own fp32 gradients are up to 3.1e-4
#: from its fp64 ones, ours up to 1.9e-4 (vadbench in fp64 matches the public fp64 gradients to 1.1e-7).
GRAD_RTOL = 5e-4


def hash_uniform(k: int, count: int) -> torch.Tensor:
    """The fixture's rule u(k, j) for j = 0 .. count - 1 (float64)."""
    j = torch.arange(count, dtype=torch.int64)
    mask = (1 << 32) - 1
    h = (j * 2654435761 + k * 40503) & mask
    h = h ^ (h >> 15)
    h = (h * 1597334677) & mask
    h = h ^ (h >> 13)
    return h.double() / 2.0**32


def rule_value(public_name: str, k: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The value the fixture's rule gives the k-th public tensor (see ``FIXTURE["rule"]``), flat."""
    count = math.prod(shape)
    u = hash_uniform(k, count)
    if public_name.endswith("num_batches_tracked"):
        return torch.zeros(count, dtype=torch.int64)
    if public_name.endswith("running_mean"):
        v = 0.1 * (2 * u - 1)
    elif public_name.endswith("running_var"):
        v = 0.5 + u
    elif len(shape) >= 2 and not public_name.endswith((".g", ".b")):
        v = (2 * u - 1) * math.sqrt(3.0 / (count // shape[0]))
    elif public_name.endswith(".g") or (
        public_name.endswith(".weight") and ("norm" in public_name or "to_logits" in public_name)
    ):
        v = 1 + 0.2 * (u - 0.5)
    else:
        v = 0.1 * (2 * u - 1)
    return v.float()


@functools.cache
def rule_state() -> dict[str, torch.Tensor]:
    """vadbench's state dict with the fixture's rule values (through its name mapping), flat."""
    return {
        ours: rule_value(public, k, public_shape(public))
        for k, (public, ours) in enumerate(FIXTURE["mapping"])
    }


def public_shape(public: str) -> tuple[int, ...]:
    return tuple(FIXTURE["public_shapes"][public])


def rule_model(method: MGFN) -> torch.nn.Module:
    """The method's model at the fixture's widths with the rule's values (built on the meta device: no init)."""
    with torch.device("meta"):
        model = method.build(SHAPE["crops"], SHAPE["feature_dim"])
    model.to_empty(device="cpu")
    state, values = model.state_dict(), rule_state()
    assert sorted(values) == sorted(state), "the fixture's name mapping does not cover the model"
    model.load_state_dict({name: values[name].reshape(state[name].shape) for name in state})
    return model


def features(k: int, videos: int, steps: int, labels: list[int]) -> torch.Tensor:
    """(videos, crops, steps, D) inputs of the fixture's rule."""
    crops, dim = SHAPE["crops"], SHAPE["feature_dim"]
    x = 2 * hash_uniform(k, videos * crops * steps * dim).float().reshape(videos, crops, steps, dim)
    bump = torch.zeros(steps)
    bump[2:5] = 0.5
    return x + torch.tensor(labels, dtype=torch.float32)[:, None, None, None] * bump[None, None, :, None]


def fixed_masks(method: MGFN) -> MGFN:
    """`method` with the fixture's selection masks instead of the random ones (normal rows first)."""
    mask = torch.tensor(FIXTURE["mask_normal"] + FIXTURE["mask_abnormal"])
    method.selection_mask = lambda magnitudes: mask  # type: ignore[method-assign]
    return method


def gap(ours, reference) -> float:
    """max |ours - reference| / max |reference|."""
    ours, reference = torch.as_tensor(ours, dtype=torch.float64), torch.as_tensor(reference, dtype=torch.float64)
    assert ours.shape == reference.shape
    return float((ours - reference).abs().max() / reference.abs().max().clamp_min(1e-30))


def train_batch() -> TrainBatch:
    n = SHAPE["per_class"]
    x = features(1000, 2 * n, SHAPE["segments"], [0] * n + [1] * n)
    return TrainBatch.balanced(x[:n], x[n:])


def video_for_test() -> torch.Tensor:
    """The fixture's test video as vadbench scores it, (1, T, C, D)."""
    crops, steps, dim = SHAPE["crops"], SHAPE["test_segments"], SHAPE["feature_dim"]
    return (2 * hash_uniform(2000, crops * steps * dim).float()).reshape(1, crops, steps, dim).transpose(1, 2)


@pytest.fixture(scope="module")
def step() -> dict:
    """vadbench's MGFN on the fixture's inputs, one model for everything: test scores of the rule model
    (eval mode, before any training forward changes the BatchNorm statistics), then one training step."""
    method = fixed_masks(MGFN(MGFNConfig()))
    model = rule_model(method).eval()
    with torch.inference_mode():
        test_scores = method.score(model, video_for_test(), torch.tensor([SHAPE["test_segments"]]))
    model.train()
    names = dict(FIXTURE["mapping"])
    captured = {}

    def keep(_module, _inputs, outputs):
        captured["features"], captured["scores"] = outputs

    handle = model.register_forward_hook(keep)
    terms = method.loss(model, train_batch())
    handle.remove()
    bn = {public: model.state_dict()[names[public]].clone() for public in FIXTURE["bn_after_forward"]}
    optimizer = method.optimizer(model.parameters())
    optimizer.zero_grad()
    terms["loss"].backward()
    params = dict(model.named_parameters())
    grads = {public: params[names[public]].grad for public in FIXTURE["grads"]}
    optimizer.step()
    after = {public: params[names[public]].detach() for public in FIXTURE["after_step"]}
    return {"method": method, "terms": {k: v.detach() for k, v in terms.items()}, "bn": bn, "grads": grads,
            "after": after, "optimizer": optimizer, "test_scores": test_scores,
            "features": captured["features"].detach(), "scores": captured["scores"].detach()}


def test_parameter_count_at_published_width():
    with torch.device("meta"):
        model = MGFN(MGFNConfig()).build(10, 2048)
    assert sum(p.numel() for p in model.parameters()) == FIXTURE["n_params"] == 28_652_773


def test_outputs_match_public_code(step):
    n, crops, segments = SHAPE["per_class"], SHAPE["crops"], SHAPE["segments"]
    scores = step["scores"].reshape(2 * n, crops, segments).mean(dim=1)
    assert gap(scores, FIXTURE["outputs"]["scores"]) < RTOL
    # The selected features, through their L1 norms (C n, k), rows crop-major, per class.
    feats = step["features"].reshape(2 * n, crops, segments, -1)
    mask = torch.tensor(FIXTURE["mask_normal"] + FIXTURE["mask_abnormal"])
    index = (feats.norm(dim=-1).mean(dim=1) * mask).topk(3, dim=1).indices
    norms = feats.gather(2, index[:, None, :, None].expand(-1, crops, -1, feats.shape[-1])).abs().sum(-1)
    normal, abnormal = (norms[rows].transpose(0, 1).reshape(crops * n, -1) for rows in (slice(0, n), slice(n, None)))
    assert gap(normal, FIXTURE["outputs"]["selected_normal_l1"]) < RTOL
    assert gap(abnormal, FIXTURE["outputs"]["selected_abnormal_l1"]) < RTOL
    selected = scores.gather(1, index).mean(dim=1)
    assert gap(selected[:n], FIXTURE["outputs"]["score_normal"]) < RTOL
    assert gap(selected[n:], FIXTURE["outputs"]["score_abnormal"]) < RTOL


@pytest.mark.parametrize("term", ["cls", "con", "smooth", "sparse", "loss"])
def test_loss_terms_match_public_code(step, term):
    assert gap(step["terms"][term], FIXTURE["terms"][term]) < RTOL


@pytest.mark.parametrize("term", ["con_n", "con_a"])
def test_same_class_contrastive_terms_match_public_code(step, term):
    """These terms are squared differences of L1 norms of ~800 (1024-d features of two crops of a video):
    fp32 keeps about 4 digits of them. The public code's own fp32 con_a is 4.8e-5 from its fp64 value,
    ours 4.8e-6, so ours is compared with the public fp64 value at 2e-5 (vadbench in fp64 matches the
    public fp64 terms to 1e-14) and with the public fp32 value at 1e-4."""
    assert gap(step["terms"][term], FIXTURE["terms_fp64"][term]) < 2e-5
    assert gap(step["terms"][term], FIXTURE["terms"][term]) < 1e-4


def test_batchnorm_statistics_after_the_forward(step):
    for public, reference in FIXTURE["bn_after_forward"].items():
        flat = step["bn"][public].reshape(-1)
        assert gap(flat[reference["index"]], reference["value"]) < RTOL, public


def grad_gap(grad: torch.Tensor, reference: dict) -> float:
    """Largest of the norm's relative gap and the sampled entries' gaps relative to the tensor's scale
    (the larger of the largest sampled entry and the RMS entry)."""
    scale = max(max(abs(v) for v in reference["value"]), reference["norm"] / math.sqrt(grad.numel()))
    diff = (grad.reshape(-1)[reference["index"]].double() - torch.tensor(reference["value"])).abs().max()
    return max(gap(grad.norm(), reference["norm"]), float(diff) / scale)


def test_gradients_match_public_code(step):
    """Against the public fp64 gradients at GRAD_RTOL and the public fp32 ones at twice that (see GRAD_RTOL)."""
    for public, grad in step["grads"].items():
        assert grad_gap(grad, FIXTURE["grads_fp64"][public]) < GRAD_RTOL, public
        assert grad_gap(grad, FIXTURE["grads"][public]) < 2 * GRAD_RTOL, public


def test_parameters_after_one_adam_step(step):
    for public, reference in FIXTURE["after_step"].items():
        flat = step["after"][public].reshape(-1)
        assert gap(flat[reference["index"]], reference["value"]) < RTOL, public
    group = step["optimizer"].param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (FIXTURE["optimizer"]["lr"], FIXTURE["optimizer"]["weight_decay"])
    assert step["method"].scheduler(step["optimizer"], 5) is None  # constant lr, as [0.001] * 15000 per epoch


def test_test_scores_match_public_code(step):
    assert gap(step["test_scores"][0], FIXTURE["test_scores"]) < RTOL


def test_original_regularisers_and_a_wrong_weight_fails(step):
    """The authors' original regularisers match; a wrong contrastive weight is caught by the same check.
    The loss is recomputed from the step's (pre-update) network outputs, without another forward."""
    outputs = (step["features"], step["scores"])
    original = fixed_masks(MGFN(MGFNConfig(regularisers="original"))).loss(lambda _: outputs, train_batch())
    for term in ("smooth", "sparse"):
        assert gap(original[term], FIXTURE["original_regularisers"][term]) < RTOL
    assert gap(original["cls"], FIXTURE["terms"]["cls"]) < RTOL
    wrong = fixed_masks(MGFN(MGFNConfig(beta=2e-3))).loss(lambda _: outputs, train_batch())
    assert gap(wrong["loss"], FIXTURE["terms"]["loss"]) > RTOL
    swapped = fixed_masks(MGFN(MGFNConfig(regularisers="original"))).loss(lambda _: outputs, train_batch())
    assert gap(swapped["loss"], FIXTURE["terms"]["loss"]) > RTOL


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
            scores = method.score(model, torch.rand(1, length, 2, 16), torch.tensor([length]))
        assert scores.shape == (1, length) and bool(((scores >= 0) & (scores <= 1)).all())


def test_options_are_checked():
    with pytest.raises(ValueError, match="regularisers"):
        MGFNConfig(regularisers="paper")
    with pytest.raises(ValueError, match="block2"):
        MGFNConfig(block2="local")
    with pytest.raises(ValueError, match="head_dim"):
        MGFNConfig(dim1=32)
