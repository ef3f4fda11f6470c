"""BN-WVAD against the public code: forward pass, BatchNorm anchors, selection, loss terms, gradients, one clipped
Adam step and test scores, in float32 and float64; plus the unbounded score's consequences (no [0, 1] check, no
false-alarm rate).

The fixture tests/unit/data/bn_wvad_reference.json is written by tests/reference/bn_wvad_reference.py, which runs
the public code (cool-xuan/BN-WVAD at 4fa3a5d: its options' defaults, WSAD, LossComputer, train() and the test
branch) in float32 and in float64, with every parameter, BN statistic and input set by the rule recorded in the
fixture. vadbench runs the same step in float32 and in float64 and is compared with the public float64 values
group by group as tests/reference/comparison.py says (float64: 1e-12 of the group's largest entry; float32: ten
times the public code's own float32 rounding in the group).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from reference.comparison import failures, group_at, public_at

from vadbench.api.method import TrainBatch
from vadbench.api.types import RunResult, RunSpec, TestSet
from vadbench.engine.runner import record_evaluation
from vadbench.engine.scoring import Scored
from vadbench.methods.bn_wvad import BNWVAD, BNWVADConfig
from vadbench.methods.bn_wvad.method import select_pairs
from vadbench.methods.bn_wvad.model import BNWVADNet, mahalanobis
from vadbench.methods.sultani_mil import SultaniMIL
from vadbench.plugins.manager import get_plugins
from vadbench.report.leaderboard import render
from vadbench.testing import check_scores

#: One torch thread: tiny tensors gain nothing from threads, and the equality checks compare sums
#: whose order depends on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

REFERENCE = json.loads((Path(__file__).parent / "data" / "bn_wvad_reference.json").read_text())
SIZES = REFERENCE["sizes"]
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}
#: The fixture's group of tensors at a path (see tests/reference/comparison.py).
group = functools.partial(group_at, REFERENCE)
#: The public state_dict entry (parameters and BN buffers) -> vadbench's.
MAPPING = {
    **{f"normal_head.{layer}.{kind}": f"head.{layer}.{kind}"
       for layer in ("conv1", "conv2", "conv3") for kind in ("weight", "bias")},
    **{f"normal_head.{layer}.{kind}": f"head.{layer}.{kind}" for layer in ("bn1", "bn2")
       for kind in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")},
    "embedding.conv_1.0.weight": "embedding.weight",
    "embedding.conv_1.0.bias": "embedding.bias",
    **{
        f"selfatt.layers.{layer}.{public}": f"layers.{layer}.{ours}"
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


def hash_uniform(k: int, count: int) -> torch.Tensor:
    """The fixture's rule (see its "rule" field): a deterministic uniform [0, 1) without torch's RNG."""
    j = torch.arange(count, dtype=torch.int64)
    mask = (1 << 32) - 1
    h = (j * 2246822519 + k * 3266489917 + 374761393) & mask
    h = h ^ (h >> 16)
    h = (h * 668265263) & mask
    h = h ^ (h >> 13)
    return h.double() / 2.0**32


def rule_value(name: str, k: int, shape: tuple[int, ...]) -> torch.Tensor:
    count = int(np.prod(shape)) if shape else 1
    u = hash_uniform(k, count)
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if name.endswith("running_mean"):
        value = 0.3 * (2 * u - 1)
    elif name.endswith("running_var"):
        value = 0.3 + 1.4 * u
    elif len(shape) >= 2:
        value = (2 * u - 1) * (3.0 / (count / shape[0])) ** 0.5
    elif name.endswith(".weight"):
        value = 0.8 + 0.4 * u
    else:
        value = 0.1 * (2 * u - 1)
    return value.reshape(shape).float()


def loaded(method: BNWVAD | None = None, dtype: torch.dtype = torch.float32) -> tuple[BNWVAD, BNWVADNet]:
    """The method and its model with every parameter and BN buffer set by the fixture's rule, in `dtype`."""
    method = method or BNWVAD(BNWVADConfig())
    model = method.build(1, SIZES["D"])
    state = model.state_dict()
    with torch.no_grad():
        for k, (public, shape) in enumerate(REFERENCE["public_state"]):
            state[MAPPING[public]].copy_(rule_value(public, k, tuple(shape)))
    return method, model.to(dtype)


def train_input() -> torch.Tensor:
    n, steps, dim = SIZES["normal"] + SIZES["abnormal"], SIZES["T"], SIZES["D"]
    x = 2 * hash_uniform(1000, n * steps * dim).reshape(n, steps, dim).float() - 1
    x[SIZES["normal"] :, 5:11] += 0.8
    x[-1] *= 4.0
    return x


def batch(dtype: torch.dtype = torch.float32) -> TrainBatch:
    x = train_input().to(dtype)
    return TrainBatch.balanced(x[: SIZES["normal"]], x[SIZES["normal"] :])


def video_input(key: int, steps: int) -> torch.Tensor:
    crops, dim = SIZES["test_crops"], SIZES["D"]
    return 2 * hash_uniform(key, crops * steps * dim).reshape(crops, steps, dim).float() - 1


def test_every_public_tensor_has_a_counterpart_of_its_shape():
    state = BNWVAD(BNWVADConfig()).build(1, SIZES["D"]).state_dict()
    assert sorted(MAPPING) == sorted(name for name, _ in REFERENCE["public_state"])
    assert sorted(MAPPING.values()) == sorted(state)
    assert {MAPPING[public]: shape for public, shape in REFERENCE["public_state"]} == {
        name: list(tensor.shape) for name, tensor in state.items()}


def test_parameter_count_at_1024_d_matches_the_public_model():
    model = BNWVAD(BNWVADConfig()).build(5, 1024)
    assert sum(p.numel() for p in model.parameters()) == REFERENCE["counts"]["parameters_1024"]
    buffers = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert buffers == REFERENCE["counts"]["running_statistics"]


def test_defaults_are_the_public_options():
    config = BNWVADConfig()
    optimiser, selection = REFERENCE["optimiser"], REFERENCE["selection"]
    assert (config.lr, config.weight_decay, config.steps, config.clip) == (
        optimiser["lr"], optimiser["weight_decay"], optimiser["steps"], optimiser["clip"])
    assert optimiser["lr_schedule_constant"] and BNWVAD(config).scheduler(
        BNWVAD(config).optimizer([torch.nn.Parameter(torch.zeros(1))]), config.steps) is None
    assert (config.ratio_sample, config.ratio_batch) == (selection["ratio_sample"], selection["ratio_batch"])


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_test_scores_equal_the_public_code(precision):
    dtype = PRECISIONS[precision]
    method, model = loaded(dtype=dtype)
    model.eval()
    with torch.no_grad():
        video = video_input(2000, SIZES["test_T"]).to(dtype)  # (C, T, D) crop rows -> one video (1, C, T, D)
        per_crop = method.score(model, video[:, None], torch.full((SIZES["test_crops"],), SIZES["test_T"]))
        scores = method.score(model, video[None], torch.tensor([SIZES["test_T"]]))
        short = method.score(model, video_input(3000, 1).to(dtype)[None], torch.tensor([1]))
    ours = {"per_crop": per_crop, "video": scores[0], "short_video": short[0]}
    assert failures(ours, group("test"), dtype) == []
    assert (scores >= 0).all() and scores.max() > 1  # distance x sigmoid: not a probability


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_forward_anchors_and_selection_equal_the_public_code(precision):
    dtype = PRECISIONS[precision]
    method, model = loaded(dtype=dtype)
    model.train()
    features, scores = model(batch(dtype).features)
    # The running statistics after this batch's update are the anchors.
    anchors = model.anchors()
    selections = [select_pairs(layer, mahalanobis(layer.detach(), mean, var), 0.2, 0.4)
                  for layer, (mean, var) in zip(features, anchors, strict=True)]
    assert [len(negatives) for _, negatives in selections] == REFERENCE[precision]["forward"]["selected"]
    assert all(len(negatives) > int(SIZES["abnormal"] * SIZES["T"] * 0.4) for _, negatives in selections)  # unions
    normal_scores = {"normal_scores": public_at(REFERENCE, "forward", "normal_scores")}
    assert failures({"normal_scores": scores[: SIZES["normal"]]}, normal_scores, dtype) == []
    assert failures(dict(enumerate(mean for mean, _ in anchors)), group("forward", "anchors"), dtype) == []
    assert failures(dict(enumerate(var for _, var in anchors)), group("forward", "variances"), dtype) == []
    assert failures(dict(enumerate(p for p, _ in selections)), group("forward", "select_normals"), dtype) == []
    assert failures(dict(enumerate(n for _, n in selections)), group("forward", "select_abnormals"), dtype) == []


def loss_terms(method: BNWVAD, model: BNWVADNet, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """vadbench's loss terms under the public names (mpp: the weighted sum of the two triplet terms)."""
    terms = method.loss(model.train(), batch(dtype))
    return {"total": terms["loss"], "normal": terms["normal"], "mpp": 5 * terms["mpp1"] + 20 * terms["mpp2"],
            "mpp1": terms["mpp1"], "mpp2": terms["mpp2"]}


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_loss_terms_equal_the_public_code(precision):
    method, model = loaded(dtype=PRECISIONS[precision])
    assert failures(loss_terms(method, model, PRECISIONS[precision]), group("loss"), PRECISIONS[precision]) == []


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_gradients_and_one_clipped_adam_step_equal_the_public_code(precision):
    dtype = PRECISIONS[precision]
    method, model = loaded(dtype=dtype)
    params = dict(model.named_parameters())
    names = {public: ours for public, ours in MAPPING.items() if ours in params}
    optimizer = method.optimizer(model.parameters())
    method.loss(model.train(), batch(dtype))["loss"].backward()
    before = {name: p.detach().clone() for name, p in params.items()}
    assert failures({public: params[ours].grad for public, ours in names.items()}, group("grads"), dtype) == []
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), method.declarations().grad_clip)
    total = {"total": public_at(REFERENCE, "grad_total_norm_before_clip")}
    assert failures({"total": norm}, total, dtype) == []
    assert norm > 1  # the clip at 1.0 is active in this step
    optimizer.step()
    assert failures({public: params[ours] for public, ours in names.items()}, group("after_step"), dtype) == []
    update = {public: params[ours].detach() - before[ours] for public, ours in names.items()}
    assert failures(update, group("update"), dtype) == []


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("change", [{"w_mpp2": 5.0}, {"margin": 0.5}, {"ratio_batch": 0.2}])
def test_the_loss_check_can_fail(change, precision):
    method, model = loaded(BNWVAD(BNWVADConfig(**change)), PRECISIONS[precision])
    assert "total" in "".join(failures(loss_terms(method, model, PRECISIONS[precision]), group("loss"),
                                       PRECISIONS[precision]))


def test_anchors_before_the_update_would_select_other_pairs():
    _, model = loaded(dtype=torch.float64)
    before = [(m.clone(), v.clone()) for m, v in model.anchors()]
    features, _ = model.train()(batch(torch.float64).features)
    mean, var = before[1]
    positives, _ = select_pairs(features[1], mahalanobis(features[1].detach(), mean, var), 0.2, 0.4)
    expected = torch.tensor(REFERENCE["float64"]["forward"]["select_normals"][1]["value"], dtype=torch.float64)
    assert positives.numel() != expected.numel() or not torch.allclose(positives.reshape(-1), expected)


def tiny() -> BNWVAD:
    return BNWVAD(BNWVADConfig(width=16, heads=2, head_dim=4, mlp_dim=16, ratios=(2, 4)))


def test_unbounded_scores_pass_the_score_check_only_as_declared():
    class Far(BNWVAD):
        """Distances of a trained model reach far above 1; scaled up here so the untrained one does too."""

        def score(self, model, features, lengths):
            return 10 + super().score(model, features, lengths)

    class Claimed(Far):
        def declarations(self):
            return dataclasses.replace(super().declarations(), probability_scores=True)

    config = tiny().config
    check_scores(Far(config), crops=2, feature_dim=16)  # finite is enough for probability_scores = False
    assert Far(config).declarations().record()["probability_scores"] is False
    with pytest.raises(AssertionError, match=r"\[0, 1\]"):
        check_scores(Claimed(config), crops=2, feature_dim=16)


def test_no_false_alarm_rate_is_recorded_for_scores_that_are_not_probabilities():
    lengths = [4, 3]
    test = TestSet(np.zeros((7, 1, 2), np.float32), np.array([0, 4, 7]), np.array([0, 1]),
                   np.repeat([0, 0, 0, 0, 0, 1, 1], 16), ("normal", "abnormal"), ("Normal", "Fight"))
    scores = [np.array([0.2, 0.7, 0.1, 0.9]), np.array([0.3, 2.0, 3.0])]
    assert [len(s) for s in scores] == lengths
    results = []
    for name, method in (("bn-wvad", tiny()), ("sultani-mil", SultaniMIL(SultaniMIL.Config()))):
        result = RunResult(RunSpec(name), "ok")
        record_evaluation(result, method, test, Scored(scores, None), 0.0)
        results.append(result)
    assert results[0].metrics["far"] is None
    assert results[1].metrics["far"] == pytest.approx(0.5)  # 2 of the 4 normal snippets >= 0.5
    assert results[0].metrics["auc"] == results[1].metrics["auc"]  # ranking metrics are unaffected
    table = render(results, "md", ["auc", "far"]).splitlines()
    cells = {line.split("|")[1].strip(): line.strip("|").split("|")[-1].strip() for line in table[2:]}
    assert cells["bn-wvad"] == "-" and cells["sultani-mil"] != "-"


def test_registered_with_the_public_defaults():
    plugins = get_plugins()
    method = plugins.methods.create("bn-wvad")
    config = dataclasses.asdict(method.config)
    assert {k: config[k] for k in ("batch_size", "steps", "lr", "weight_decay", "clip", "segments")} == {
        "batch_size": 64, "steps": 1000, "lr": 1e-4, "weight_decay": 5e-5, "clip": 1.0, "segments": 200}
    declared = method.declarations()
    recorded = declared.record()
    assert recorded["input.crops"] == "independent" and recorded["input.batch"] == "balanced"
    assert recorded["input.segments"] == 200 and recorded["padded_scoring"] == "alone"
    assert declared.stackable is False and declared.grad_clip == 1.0
