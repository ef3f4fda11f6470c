"""BN-WVAD against the public code (tests/unit/data/bn_wvad_reference.json, whose "produced_by" says how it
was made): forward pass, BatchNorm anchors, selection, loss terms, gradients, one clipped Adam step and test
scores, at fp32; plus the unbounded score's consequences (no [0, 1] check, no false-alarm rate)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

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
#: fp32 on one thread: the forward pass, anchors, selection, loss terms, test scores and the parameters
#: after one step came out bit-equal to the public code's; gradients differ by summation order only
#: (largest relative gap 1.0e-7 in the norms, 7.8e-7 in the sampled entries, except an entry of 1.2e-4 in a
#: gradient of norm 0.29, conv1's bias, whose BN removes most of it: 1.9e-4 relative, 2e-8 absolute).
RTOL, ATOL = 1e-5, 1e-6


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


def loaded(method: BNWVAD | None = None) -> tuple[BNWVAD, BNWVADNet]:
    """The method and its model with every parameter and BN buffer set by the fixture's rule."""
    method = method or BNWVAD(BNWVADConfig())
    model = method.build(1, SIZES["D"])
    state = model.state_dict()
    assert len(state) == len(REFERENCE["state_order"])
    with torch.no_grad():
        for k, public in enumerate(REFERENCE["state_order"]):
            ours = state[REFERENCE["mapping"][public]]
            ours.copy_(rule_value(public, k, tuple(ours.shape)))
    return method, model


def train_input() -> torch.Tensor:
    n, steps, dim = SIZES["normal"] + SIZES["abnormal"], SIZES["T"], SIZES["D"]
    x = 2 * hash_uniform(1000, n * steps * dim).reshape(n, steps, dim).float() - 1
    x[SIZES["normal"] :, 5:11] += 0.8
    x[-1] *= 4.0
    return x


def batch() -> TrainBatch:
    x = train_input()
    return TrainBatch.balanced(x[: SIZES["normal"]], x[SIZES["normal"] :])


def video_input(key: int, steps: int) -> torch.Tensor:
    crops, dim = SIZES["test_crops"], SIZES["D"]
    return 2 * hash_uniform(key, crops * steps * dim).reshape(crops, steps, dim).float() - 1


def close(ours: torch.Tensor | float, theirs: list[float] | float, rtol: float = RTOL) -> None:
    ours = torch.as_tensor(ours, dtype=torch.float64).reshape(-1)
    theirs = torch.tensor(theirs, dtype=torch.float64).reshape(-1)
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=ATOL)


def test_parameter_count_at_1024_d_matches_the_public_model():
    model = BNWVAD(BNWVADConfig()).build(5, 1024)
    assert sum(p.numel() for p in model.parameters()) == 5_791_905
    buffers = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert buffers == 96


def test_test_scores_equal_the_public_code():
    method, model = loaded()
    model.eval()
    with torch.no_grad():
        video = video_input(2000, SIZES["test_T"])  # (C, T, D) crop rows -> one video (1, T, C, D)
        per_crop = method.score(model, video[:, :, None], torch.full((SIZES["test_crops"],), SIZES["test_T"]))
        scores = method.score(model, video.transpose(0, 1)[None], torch.tensor([SIZES["test_T"]]))
        short = method.score(model, video_input(3000, 1).transpose(0, 1)[None], torch.tensor([1]))
    close(per_crop, REFERENCE["test"]["per_crop"])
    close(scores, REFERENCE["test"]["video"])
    close(short, REFERENCE["test"]["short_video"])
    assert (scores >= 0).all() and scores.max() > 1  # distance x sigmoid: not a probability


def test_forward_anchors_and_selection_equal_the_public_code():
    method, model = loaded()
    model.train()
    features, scores = model(batch().features)
    forward = REFERENCE["forward"]
    close(scores[: SIZES["normal"]], forward["normal_scores"])
    for layer, (head_features, (mean, var)) in enumerate(zip(features, model.anchors(), strict=True)):
        # The running statistics after this batch's update are the anchors.
        close(mean, forward["anchors"][layer])
        close(var, forward["variances"][layer])
        distances = mahalanobis(head_features.detach(), mean, var)
        positives, negatives = select_pairs(head_features, distances, 0.2, 0.4)
        assert len(negatives) == forward["selected"][layer] > int(SIZES["abnormal"] * SIZES["T"] * 0.4)  # a union
        close(positives, forward["select_normals"][layer])
        close(negatives, forward["select_abnormals"][layer])


def test_loss_terms_equal_the_public_code():
    method, model = loaded()
    terms = method.loss(model.train(), batch())
    loss = REFERENCE["loss"]
    close(terms["loss"].detach(), loss["total"])
    close(terms["normal"], loss["normal"])
    close(terms["mpp1"], loss["mpp1"])
    close(terms["mpp2"], loss["mpp2"])
    close(5 * terms["mpp1"] + 20 * terms["mpp2"], loss["mpp"])


def test_gradients_and_one_clipped_adam_step_equal_the_public_code():
    method, model = loaded()
    params = dict(model.named_parameters())
    names = {public: ours for public, ours in REFERENCE["mapping"].items() if ours in params}
    optimizer = method.optimizer(model.parameters())
    assert method.scheduler(optimizer, method.steps) is None  # args.lr = [1e-4] * 1000
    assert [g["lr"] for g in optimizer.param_groups] == REFERENCE["lr"][:1]
    method.loss(model.train(), batch())["loss"].backward()
    for public, ours in names.items():
        grad = params[ours].grad
        close(grad.norm(), REFERENCE["grad_norms"][public], rtol=1e-4)
        sample = REFERENCE["grad_samples"][public]
        close(grad.reshape(-1)[sample["index"]], sample["values"], rtol=1e-4)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), method.grad_clip())
    close(norm, REFERENCE["grad_total_norm_before_clip"])
    assert norm > 1  # the clip at 1.0 is active in this step
    optimizer.step()
    for public, ours in names.items():
        sample = REFERENCE["after_step"][public]
        close(params[ours].detach().reshape(-1)[sample["index"]], sample["values"])


@pytest.mark.parametrize("change", [{"w_mpp2": 5.0}, {"margin": 0.5}, {"ratio_batch": 0.2}])
def test_the_loss_check_can_fail(change):
    method, model = loaded(BNWVAD(BNWVADConfig(**change)))
    total = method.loss(model.train(), batch())["loss"].item()
    assert abs(total - REFERENCE["loss"]["total"]) > 1e-3 * abs(REFERENCE["loss"]["total"])


def test_anchors_before_the_update_would_select_other_pairs():
    _, model = loaded()
    before = [(m.clone(), v.clone()) for m, v in model.anchors()]
    features, _ = model.train()(batch().features)
    mean, var = before[1]
    positives, _ = select_pairs(features[1], mahalanobis(features[1].detach(), mean, var), 0.2, 0.4)
    expected = torch.tensor(REFERENCE["forward"]["select_normals"][1], dtype=torch.float64)
    assert positives.numel() != expected.numel() or not torch.allclose(positives.double().reshape(-1), expected)


def tiny() -> BNWVAD:
    return BNWVAD(BNWVADConfig(width=16, heads=2, head_dim=4, mlp_dim=16, ratios=(2, 4)))


def test_unbounded_scores_pass_the_score_check_only_as_declared():
    class Far(BNWVAD):
        """Distances of a trained model reach far above 1; scaled up here so the untrained one does too."""

        def score(self, model, features, lengths):
            return 10 + super().score(model, features, lengths)

    class Claimed(Far):
        probability_scores = True

    config = tiny().config
    check_scores(Far(config), crops=2, feature_dim=16)  # finite is enough for probability_scores = False
    assert Far(config).declarations()["probability_scores"] is False
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
    assert declared["input.crops"] == "independent" and declared["input.batch"] == "balanced"
    assert declared["input.segments"] == 200 and declared["padded_scoring"] == "alone"
    assert method.stackable is False and method.grad_clip() == 1.0
