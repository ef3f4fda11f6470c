"""PEL4VAD against the public code (yujiangpu20/PEL4VAD at eeb31f4), at fp32 on CPU.

The fixture ``data/pel4vad_reference.json`` was produced outside this repository by running the public
model and its ``train_func`` for one step (see its "produced_by"): every parameter is set from a
deterministic rule (recorded in the fixture, with the public -> vadbench name map), the inputs too, and
dropout is 0 on both sides. This test sets vadbench's model by the same rule and compares forward
outputs, the prompt-loss pairs and logits, both loss terms, every gradient, the parameters after one Adam
step, test-time scores, the cosine schedule stepped once per epoch, and the smoothing. Gaps are
measured relative to the largest magnitude of the reference quantity (``relative_gap``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vadbench.api.method import TrainBatch
from vadbench.api.types import TrainSet
from vadbench.engine.acceleration import Acceleration
from vadbench.engine.sampling import Sampler
from vadbench.engine.training import TrainingStep
from vadbench.methods.pel4vad import PEL4VAD, PRESETS, PEL4VADConfig
from vadbench.methods.pel4vad.method import prompt_pairs

#: One torch thread: tiny tensors gain nothing from threads, and the equality checks compare sums
#: whose order depends on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

REFERENCE = json.loads((Path(__file__).parent / "data" / "pel4vad_reference.json").read_text())
RTOL = 1e-5
#: Gradients (norm, and sampled entries relative to the norm): summation order alone moves them by up to a
#: few 1e-5 relative (measured: at most 5e-5, the query weights on XD).
GRAD_RTOL = 1e-4
#: Gradients that are small differences of large terms (the attention gate and the distance prior enter
#: both softmax branches; their gradients are 1e-4 .. 1e-3 of their summands): rounding of the summands
#: shows up to a few 1e-4 relative (measured: at most 5e-4).
CANCELLING = {"attention.alpha", "distance.w", "distance.b"}
CANCELLING_RTOL = 2e-3
#: The key bias adds q . b_k to a whole row of attention logits, which the softmax ignores: its gradient is
#: zero up to rounding (1e-12) on both sides, and is only checked to be that small.
ANALYTICALLY_ZERO = {"attention.key.bias"}


def relative_gap(ours, theirs) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-30))


def method_for(dataset: str, **changes) -> PEL4VAD:
    options = {} if dataset == "ucf" else dict(PRESETS["pel4vad-xd"][1])
    return PEL4VAD(PEL4VADConfig(**{**options, "dropout": 0.0, **changes}))


def rule(shape, base, scale, k) -> torch.Tensor:
    j = np.arange(int(np.prod(shape)), dtype=np.float64)
    return torch.from_numpy((base + scale * np.sin(0.7 * j + 1.1 * k + 0.3)).reshape(shape).astype(np.float32))


def reference_model(method: PEL4VAD, record: dict) -> torch.nn.Module:
    model = method.build(1, REFERENCE["feature_dim"])
    state = model.state_dict()
    assert len(state) == len(record["params"]) == len(REFERENCE["name_map"])
    with torch.no_grad():
        for public, spec in record["params"].items():
            target = state[REFERENCE["name_map"][public]]
            assert list(target.shape) == spec["shape"], public
            target.copy_(rule(tuple(spec["shape"]), spec["base"], spec["scale"], spec["k"]))
    return model


def reference_batch() -> TrainBatch:
    lengths, d, s = REFERENCE["lengths"], REFERENCE["feature_dim"], REFERENCE["segments"]
    b, t, dd = np.meshgrid(np.arange(len(lengths)), np.arange(s), np.arange(d), indexing="ij")
    x = 0.5 * np.sin(0.37 * dd + 1.3 * t + 2.1 * b) + 0.2 * np.cos(0.05 * dd * (b + 1) + 0.9 * t)
    x = x * (t < np.array(lengths)[:, None, None])
    c, p = np.meshgrid(np.arange(REFERENCE["prompt_classes"]), np.arange(512), indexing="ij")
    prompts = np.cos(0.11 * p + 0.7 * c) + 0.3 * np.sin(0.013 * p * (c + 1))
    return TrainBatch(
        torch.from_numpy(x.astype(np.float32)), torch.tensor(REFERENCE["labels"], dtype=torch.float32),
        torch.tensor(lengths), torch.tensor(REFERENCE["classes"]), torch.from_numpy(prompts.astype(np.float32)),
    )


def make_test_video() -> torch.Tensor:
    crops, steps = REFERENCE["test_shape"]
    c, t, d = np.meshgrid(np.arange(crops), np.arange(steps), np.arange(REFERENCE["feature_dim"]), indexing="ij")
    video = 0.5 * np.sin(0.29 * d + 0.8 * t + 1.7 * c) + 0.3 * np.cos(0.021 * d + 0.45 * t * (c + 1))
    return torch.from_numpy(video.astype(np.float32)).transpose(0, 1)[None]  # (1, T, C, D)


@pytest.mark.parametrize("dataset", ["ucf", "xd"])
def test_parameter_count_matches_the_public_model(dataset):
    model = method_for(dataset).build(10, 1024)
    assert sum(p.numel() for p in model.parameters()) == REFERENCE[dataset]["parameter_count"]
    assert REFERENCE[dataset]["parameter_count"] == {"ucf": 1_209_149, "xd": 1_207_349}[dataset]  # METHODS.md §5


@pytest.mark.parametrize("dataset", ["ucf", "xd"])
def test_one_training_step_equals_the_public_code(dataset):
    record = REFERENCE[dataset]
    method = method_for(dataset)
    model = reference_model(method, record).train()
    batch = reference_batch()
    gaps = {}

    longest = int(batch.lengths.max())
    with torch.no_grad():
        scores, video = model(batch.features[:, :longest])
        features, prompts, classes = prompt_pairs(scores, video, batch.classes, batch.prompts)
        normalised = features / features.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * normalised @ (prompts / prompts.norm(dim=-1, keepdim=True)).T
    gaps["scores"] = relative_gap(scores, record["scores"])
    gaps["video_feature_sum"] = relative_gap(video.sum(), record["video_feature"]["sum"])
    gaps["video_feature_abs_sum"] = relative_gap(video.abs().sum(), record["video_feature"]["abs_sum"])
    sampled = video.reshape(-1)[record["video_feature"]["index"]]
    gaps["video_feature_samples"] = relative_gap(sampled, record["video_feature"]["values"])
    assert list(video.shape) == record["video_feature"]["shape"]
    assert classes.tolist() == record["pairs"]["classes"]
    gaps["pair_features_abs_sum"] = relative_gap(features.abs().sum(), record["pairs"]["video_feat_abs_sum"])
    gaps["pair_logits"] = relative_gap(logits, record["pairs"]["logits"])

    optimizer = method.optimizer(model.parameters())
    terms = method.loss(model, batch)
    optimizer.zero_grad()
    terms["loss"].backward()
    gaps["loss1"] = relative_gap(terms["mil"], record["loss1"])
    gaps["loss2"] = relative_gap(terms["prompt"], record["loss2"])
    gaps["loss"] = relative_gap(terms["loss"].detach(), record["loss"])
    parameters = dict(model.named_parameters())
    grad_gaps = {}
    for public, ours in REFERENCE["name_map"].items():
        grad, expected = parameters[ours].grad, record["grads"][public]
        if ours in ANALYTICALLY_ZERO:
            assert grad.norm() < 1e-10 and expected["norm"] < 1e-10, ours
            continue
        sampled = grad.reshape(-1)[expected["grad_index"]].double().numpy()
        grad_gaps[ours] = max(relative_gap(grad.norm(), expected["norm"]),
                              float(np.abs(sampled - expected["grad_values"]).max() / expected["norm"]))
        limit = CANCELLING_RTOL if ours in CANCELLING else GRAD_RTOL
        assert grad_gaps[ours] <= limit, f"{dataset} gradient of {ours}: relative gap {grad_gaps[ours]:.2e}"
    gaps["grads"] = max(v for k, v in grad_gaps.items() if k not in CANCELLING)
    gaps["grads_cancelling"] = max(grad_gaps[k] for k in CANCELLING)
    optimizer.step()
    gaps["after_step"] = max(
        relative_gap(parameters[ours].detach().reshape(-1)[record["after_step"][public]["index"]],
                     record["after_step"][public]["values"])
        for public, ours in REFERENCE["name_map"].items()
    )

    model.eval()
    with torch.no_grad():
        video = make_test_video()
        test_scores = method.score(model, video, torch.tensor([video.shape[1]]))[0]
    gaps["test_scores"] = relative_gap(test_scores, record["test_scores"])

    print(dataset, {k: f"{v:.1e}" for k, v in gaps.items()})
    for name, gap in gaps.items():
        if not name.startswith("grads"):
            assert gap <= RTOL, f"{dataset} {name}: relative gap {gap:.2e}"


def test_a_wrong_prompt_weight_fails():
    """The comparison can fail: a different lamda changes the total loss beyond the tolerance."""
    record = REFERENCE["ucf"]
    method = method_for("ucf", lamda=1.1)
    model = reference_model(method, record).train()
    terms = method.loss(model, reference_batch())
    assert relative_gap(terms["loss"].detach(), record["loss"]) > 1e-2


class ConstantLoss(PEL4VAD):
    """PEL4VAD's declarations with a loss that needs no model (the schedule is under test)."""

    def loss(self, model: torch.nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        return {"loss": (model.weight * batch.labels.mean()).sum()}


def test_cosine_schedule_is_stepped_once_per_epoch():
    """The public CosineAnnealingLR(T_max=60), stepped by the engine after the last batch of each epoch of
    PEL4VAD's loader: 50 epochs of 3 steps (300 crop samples in batches of 128, 128 and 44)."""
    assert PEL4VADConfig().steps == 50 * 126  # 50 epochs of the UCF list: ceil(16100 / 128) = 126 batches
    rates = REFERENCE["cosine_epoch_lr"]
    method = ConstantLoss(PEL4VADConfig())
    videos = 150
    train = TrainSet(np.zeros((videos, 2, 1, 1), np.float32), np.arange(videos) % 2, tuple(map(str, range(videos))))
    sampler = Sampler.create(train, torch.from_numpy(train.features), method.training_input, method.batch_size, 0)
    model = torch.nn.Linear(1, 1)
    optimizer = method.optimizer(model.parameters())
    step = TrainingStep.for_method(method, model, optimizer, sampler, Acceleration(),
                                   method.scheduler(optimizer, 3 * len(rates)))
    seen = []
    for _ in range(3 * len(rates)):
        seen.append(optimizer.param_groups[0]["lr"])
        step()
    assert relative_gap(seen, np.repeat(rates, 3)) < 1e-12


@pytest.mark.parametrize("smoothing", ["slide", "fixed"])
@pytest.mark.parametrize("kappa", [3, 7, 8])
def test_smoothing_equals_infer(smoothing, kappa):
    record = REFERENCE["smoothing"]
    method = PEL4VAD(PEL4VADConfig(smoothing=smoothing, kappa=kappa))
    scores = np.asarray(record["scores"], np.float32)
    assert relative_gap(method.postprocess(scores), record[f"{smoothing}_{kappa}"]) < RTOL
    assert relative_gap(method.postprocess(scores[:5]), record[f"{smoothing}_{kappa}_short"]) < RTOL
    assert method.postprocess(scores).shape == scores.shape


def test_presets_follow_the_public_configs():
    for dataset, options in (("ucf", {}), ("xd", PRESETS["pel4vad-xd"][1])):
        cfg, public = PEL4VADConfig(**options), REFERENCE[dataset]["config"]
        assert (cfg.window, cfg.gamma, cfg.beta, cfg.norm, cfg.t_step, cfg.temperature, cfg.lamda, cfg.lr,
                cfg.hidden, cfg.out_dim, cfg.smoothing, cfg.kappa) == (
            public["win_size"], public["gamma"], public["bias"], public["norm"], public["t_step"], public["temp"],
            public["lamda"], public["lr"], public["hid_dim"], public["out_dim"], public["smooth"], public["kappa"])
    assert PEL4VADConfig(**PRESETS["pel4vad-sh"][1]).lamda == 9


def test_side_inputs_are_required():
    method = PEL4VAD(PEL4VADConfig(dropout=0.0))
    assert method.side_inputs == frozenset({"classes", "prompts"})
    model = method.build(1, 16)
    batch = TrainBatch(torch.rand(4, 8, 16), torch.tensor([0.0, 1, 0, 1]), torch.full((4,), 8),
                       torch.tensor([0, 1, 0, 2]), torch.zeros((0, 0)))
    with pytest.raises(ValueError, match="no prompt vectors"):
        method.loss(model, batch)
    with pytest.raises(ValueError, match="supplied none"):
        method.loss(model, batch._replace(classes=torch.full((4,), -1), prompts=torch.rand(3, 512)))
    with pytest.raises(ValueError, match="prompt vectors have 300"):
        method.loss(model, batch._replace(prompts=torch.rand(3, 300)))
    terms = method.loss(model, batch._replace(prompts=torch.rand(3, 512)))
    assert torch.isfinite(terms["loss"])


def test_linear1_stays_at_the_prompt_width_for_any_input_width():
    for dim in (16, 1024, 2048):
        assert PEL4VAD(PEL4VADConfig()).build(1, dim).linear1.out_channels == 512


def test_config_is_a_frozen_dataclass_with_the_required_options():
    cfg = PEL4VADConfig()
    assert dataclasses.is_dataclass(cfg) and (cfg.batch_size, cfg.steps, cfg.lr) == (128, 6300, 5e-4)
    with pytest.raises(ValueError, match="smoothing"):
        PEL4VADConfig(smoothing="centre")


def test_saturated_scores_keep_finite_gradients():
    """A score of exactly 0 or 1 (sigmoid saturation) gives BCELoss's finite loss and gradient, not NaN."""
    from vadbench.methods.pel4vad.method import bce

    scores = torch.tensor([1.0, 0.0, 0.5], requires_grad=True)
    loss = bce(scores, torch.tensor([0.0, 1.0, 1.0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()
