"""PEL4VAD against the public code (yujiangpu20/PEL4VAD at eeb31f4), in float64 and in float32, on CPU.

The fixture ``data/pel4vad_reference.json`` is written by ``tests/reference/pel4vad_reference.py`` (its
docstring says how to get the public code and run it): the public model and its ``train_func`` for one Adam
step on the UCF-Crime, XD-Violence and ShanghaiTech configurations (the ShanghaiTech batch holds videos of
two actions, whose class prompt is the mean of their actions' prompt rows), then its test scores, its
smoothing and its epoch schedule, each in float32 and in float64. Every parameter and input is set by the
rules the fixture records, dropout is 0 on both sides. This test sets vadbench's model by the same rules and
compares forward outputs, the prompt-loss pairs and logits, the class prompts, both loss terms, every
gradient, the parameters after the Adam step and the test scores.

vadbench in float64 and in float32 is compared with the public code in float64, group by group, as
tests/reference/comparison.py says (float64: 1e-12 of the group's largest entry; float32: ten times the
public code's own float32 rounding in the group). The groups: the scores, the video features, their sums, the
prompt logits, the class prompts, the loss terms, the gradients, the parameters after the step and the test
scores.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference.comparison import failures, group_at, public_at

from vadbench.api.method import TrainBatch
from vadbench.api.types import TrainSet
from vadbench.engine.acceleration import Acceleration
from vadbench.engine.sampling import Sampler
from vadbench.engine.training import TrainingStep
from vadbench.methods.pel4vad import PEL4VAD, PRESETS, PEL4VADConfig
from vadbench.methods.pel4vad.method import class_prompts, mil_loss, prompt_pairs
from vadbench.methods.pel4vad.model import causal_classifier, signed_sqrt

#: One torch thread: tiny tensors gain nothing from threads.
pytestmark = pytest.mark.usefixtures("one_thread")

REFERENCE = json.loads((Path(__file__).parent / "data" / "pel4vad_reference.json").read_text())
CASES = ("ucf", "xd", "sh")
OPTIONS = {"ucf": {}, "xd": PRESETS["pel4vad-xd"][1], "sh": PRESETS["pel4vad-sh"][1]}
DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: The public parameter names and vadbench's.
NAME_MAP = {
    "logit_scale": "logit_scale",
    "self_attention.self_attn.alpha": "attention.alpha",
    "self_attention.self_attn.q.weight": "attention.query.weight",
    "self_attention.self_attn.q.bias": "attention.query.bias",
    "self_attention.self_attn.k.weight": "attention.key.weight",
    "self_attention.self_attn.k.bias": "attention.key.bias",
    "self_attention.self_attn.v.weight": "attention.value.weight",
    "self_attention.self_attn.v.bias": "attention.value.bias",
    "self_attention.self_attn.o.weight": "attention.out.weight",
    "self_attention.self_attn.o.bias": "attention.out.bias",
    "self_attention.linear1.weight": "linear1.weight",
    "self_attention.linear1.bias": "linear1.bias",
    "self_attention.linear2.weight": "linear2.weight",
    "self_attention.linear2.bias": "linear2.bias",
    "self_attention.norm.weight": "norm.weight",
    "self_attention.norm.bias": "norm.bias",
    "self_attention.loc_adj.w": "distance.w",
    "self_attention.loc_adj.b": "distance.b",
    "classifier.weight": "classifier.weight",
    "classifier.bias": "classifier.bias",
}


def method_for(case: str, **changes) -> PEL4VAD:
    return PEL4VAD(PEL4VADConfig(**{**OPTIONS[case], "dropout": 0.0, **changes}))


# -- the fixture's rules ---------------------------------------------------------------------------------


def rule_parameter(spec: dict) -> torch.Tensor:
    j = np.arange(int(np.prod(spec["shape"])), dtype=np.float64)
    values = spec["base"] + spec["scale"] * np.sin(0.7 * j + 1.1 * spec["k"] + 0.3)
    return torch.from_numpy(values.reshape(spec["shape"]).astype(np.float32))


def rule_batch(case: str, dtype: torch.dtype) -> TrainBatch:
    batch = REFERENCE[case]["batch"]
    lengths, d, s = batch["lengths"], REFERENCE["feature_dim"], REFERENCE["segments"]
    b, t, dd = np.meshgrid(np.arange(len(lengths)), np.arange(s), np.arange(d), indexing="ij")
    x = 0.5 * np.sin(0.37 * dd + 1.3 * t + 2.1 * b) + 0.2 * np.cos(0.05 * dd * (b + 1) + 0.9 * t)
    x = x * (t < np.array(lengths)[:, None, None])
    c, p = np.meshgrid(np.arange(batch["prompt_classes"]), np.arange(512), indexing="ij")
    prompts = np.cos(0.11 * p + 0.7 * c) + 0.3 * np.sin(0.013 * p * (c + 1))
    widest = max(map(len, batch["class_sets"]))
    class_sets = torch.tensor([row + [-1] * (widest - len(row)) for row in batch["class_sets"]])
    return TrainBatch(
        torch.from_numpy(x.astype(np.float32)).to(dtype), torch.tensor(batch["labels"], dtype=dtype),
        torch.tensor(lengths), class_sets[:, 0], torch.from_numpy(prompts.astype(np.float32)).to(dtype), class_sets,
    )


def rule_test_video(dtype: torch.dtype) -> torch.Tensor:
    crops, steps = REFERENCE["test_shape"]
    c, t, d = np.meshgrid(np.arange(crops), np.arange(steps), np.arange(REFERENCE["feature_dim"]), indexing="ij")
    video = 0.5 * np.sin(0.29 * d + 0.8 * t + 1.7 * c) + 0.3 * np.cos(0.021 * d + 0.45 * t * (c + 1))
    return torch.from_numpy(video.astype(np.float32))[None].to(dtype)  # (1, C, T, D)


def rule_model(method: PEL4VAD, case: str, dtype: torch.dtype) -> torch.nn.Module:
    model = method.build(1, REFERENCE["feature_dim"]).to(dtype)
    state = model.state_dict()
    assert len(state) == len(REFERENCE[case]["params"]) == len(NAME_MAP)
    with torch.no_grad():
        for public, spec in REFERENCE[case]["params"].items():
            state[NAME_MAP[public]].copy_(rule_parameter(spec))
    return model


# -- vadbench's step, in the fixture's groups ------------------------------------------------------------------


def vadbench_step(case: str, dtype: torch.dtype, **changes) -> dict[str, dict]:
    """vadbench's forward outputs, losses, gradients, parameters after one Adam step and test scores, whole, in
    the groups of `public_groups` under the public names."""
    method = method_for(case, **changes)
    model = rule_model(method, case, dtype).train()
    batch = rule_batch(case, dtype)
    with torch.no_grad():
        scores, video = model(batch.features[:, : int(batch.lengths.max())])
        sample_prompts = class_prompts(batch.prompts, batch.class_sets)
        features, prompts, classes = prompt_pairs(scores, video, batch.classes, sample_prompts, batch.prompts[0])
        normalised = features / features.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * normalised @ (prompts / prompts.norm(dim=-1, keepdim=True)).T
    assert classes.tolist() == REFERENCE[case]["float64"]["pairs"]["classes"]
    optimizer = method.optimizer(model.parameters())
    terms = method.loss(model, batch)
    optimizer.zero_grad()
    terms["loss"].backward()
    parameters = {public: dict(model.named_parameters())[ours] for public, ours in NAME_MAP.items()}
    step = {
        "scores": {"scores": scores},
        "video_feature": {"video_feature": video},
        "sums": {"video_feature.sum": video.sum(), "video_feature.abs_sum": video.abs().sum(),
                 "pairs.features_abs_sum": features.abs().sum()},
        "logits": {"pairs.logits": logits},
        "class_prompt_sums": {"class_prompt_sums": sample_prompts.sum(dim=1)},
        "losses": {"loss1": terms["mil"], "loss2": terms["prompt"], "loss": terms["loss"]},
        "grads": {public: p.grad.clone() for public, p in parameters.items()},
    }
    optimizer.step()
    step["after_step"] = {public: p.detach() for public, p in parameters.items()}
    model.eval()
    with torch.no_grad():
        test_video = rule_test_video(dtype)
        step["test_scores"] = {"test_scores": method.score(model, test_video, torch.tensor([test_video.shape[2]]))[0]}
    return step


def public_groups(case: str) -> dict[str, dict]:
    """The fixture's quantities of `case`, in the groups of `vadbench_step`."""
    public = functools.partial(public_at, REFERENCE[case])
    return {
        "scores": {"scores": public("scores")},
        "video_feature": {"video_feature": public("video_feature")},
        "sums": {"video_feature.sum": public("video_feature", "sum"),
                 "video_feature.abs_sum": public("video_feature", "abs_sum"),
                 "pairs.features_abs_sum": public("pairs", "features_abs_sum")},
        "logits": {"pairs.logits": public("pairs", "logits")},
        "class_prompt_sums": {"class_prompt_sums": public("class_prompt_sums")},
        "losses": {name: public(name) for name in ("loss1", "loss2", "loss")},
        "grads": group_at(REFERENCE[case], "grads"),
        "after_step": group_at(REFERENCE[case], "after_step"),
        "test_scores": {"test_scores": public("test_scores")},
    }


def step_failures(case: str, precision: str, **changes) -> list[str]:
    ours, public = vadbench_step(case, DTYPES[precision], **changes), public_groups(case)
    return [line for name, group in public.items() for line in failures(ours[name], group, DTYPES[precision])]


@pytest.mark.parametrize("precision", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_one_step_equals_the_public_code_within_its_rounding_noise(case, precision):
    assert step_failures(case, precision) == []


@pytest.mark.parametrize("precision", DTYPES)
def test_a_wrong_prompt_weight_fails_the_comparison(precision):
    """The comparison can fail: a prompt-loss weight 0.1 % off moves the total loss beyond its limit."""
    assert "loss:" in "".join(step_failures("sh", precision, lamda=OPTIONS["sh"]["lamda"] * 1.001))


def test_a_two_action_video_gets_the_mean_of_its_prompt_rows():
    """The ShanghaiTech batch holds videos of two actions; the first action alone would be another prompt."""
    batch = rule_batch("sh", torch.float64)
    assert (batch.class_sets[:, 1] >= 0).sum() >= 2
    first_only = {"class_prompt_sums": class_prompts(batch.prompts, batch.class_sets[:, :1]).sum(dim=1)}
    assert failures(first_only, public_groups("sh")["class_prompt_sums"], torch.float32) != []


@pytest.mark.parametrize("case", CASES)
def test_parameter_count_equals_the_public_models(case):
    model = method_for(case).build(1, REFERENCE["feature_dim"])
    assert sum(p.numel() for p in model.parameters()) == REFERENCE[case]["parameter_count"]


@pytest.mark.parametrize("case", CASES)
def test_presets_follow_the_public_configs(case):
    cfg, public = PEL4VADConfig(**OPTIONS[case]), REFERENCE[case]["config"]
    assert (cfg.window, cfg.gamma, cfg.beta, cfg.norm, cfg.t_step, cfg.temperature, cfg.lamda, cfg.lr, cfg.hidden,
            cfg.out_dim, cfg.smoothing, cfg.kappa) == (
        public["win_size"], public["gamma"], public["bias"], public["norm"], public["t_step"], public["temp"],
        public["lamda"], public["lr"], public["hid_dim"], public["out_dim"], public["smooth"], public["kappa"])
    # steps: max_epoch passes of the published crop-file list (UCF 1,610 x 10, XD 3,954 x 5, SH 238 x 10 files)
    files = {"ucf": 16_100, "xd": 19_770, "sh": 2_380}[case]
    assert cfg.steps == public["max_epoch"] * -(-files // cfg.batch_size)


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
    training_input = method.declarations().training_input
    sampler = Sampler.create(train, torch.from_numpy(train.features), training_input, method.batch_size, 0)
    model = torch.nn.Linear(1, 1)
    optimizer = method.optimizer(model.parameters())
    step = TrainingStep.for_method(method, model, optimizer, sampler, Acceleration(),
                                   method.scheduler(optimizer, 3 * len(rates)))
    seen = []
    for _ in range(3 * len(rates)):
        seen.append(optimizer.param_groups[0]["lr"])
        step()
    np.testing.assert_allclose(seen, np.repeat(rates, 3), rtol=1e-12, atol=0)


@pytest.mark.parametrize("precision", DTYPES)
def test_smoothing_equals_infer(precision):
    record = REFERENCE["smoothing"]
    scores = np.asarray(record["scores"]).astype(np.dtype(precision))
    ours = {}
    for smoothing, kappa in itertools.product(("slide", "fixed"), (3, 7, 8)):
        method = PEL4VAD(PEL4VADConfig(smoothing=smoothing, kappa=kappa))
        for name, length in ((f"{smoothing}_{kappa}", None), (f"{smoothing}_{kappa}_short", 5)):
            ours[name] = method.postprocess(scores[:length])
            assert ours[name].dtype == scores.dtype and ours[name].shape == scores[:length].shape
    assert failures(ours, group_at(record), DTYPES[precision]) == []


def test_the_loss_keeps_float64():
    method = method_for("ucf")
    terms = method.loss(rule_model(method, "ucf", torch.float64), rule_batch("ucf", torch.float64))
    assert {name: value.dtype for name, value in terms.items()} == dict.fromkeys(terms, torch.float64)


def test_side_inputs_are_required():
    method = PEL4VAD(PEL4VADConfig(dropout=0.0))
    assert method.declarations().side_inputs == frozenset({"classes", "prompts"})
    model = method.build(1, 16)
    classes = torch.tensor([0, 1, 0, 2])
    batch = TrainBatch(torch.rand(4, 8, 16), torch.tensor([0.0, 1, 0, 1]), torch.full((4,), 8), classes,
                       torch.zeros((0, 0)), classes[:, None])
    with pytest.raises(ValueError, match="no prompt vectors"):
        method.loss(model, batch)
    with pytest.raises(ValueError, match="supplied none"):
        no_classes = torch.full((4,), -1)
        method.loss(model, batch._replace(classes=no_classes, class_sets=no_classes[:, None],
                                          prompts=torch.rand(3, 512)))
    assert method.declarations().prompt_width == 512  # the engine refuses prompts of another width before training
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
    scores = torch.tensor([[1.0], [0.0], [0.5]], requires_grad=True)
    loss = mil_loss(scores, torch.tensor([0.0, 1.0, 1.0]), torch.ones(3, dtype=torch.long))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()


@pytest.mark.parametrize(("kernel", "steps"), [(1, 11), (3, 11), (9, 11), (9, 2)])
def test_causal_classifier_equals_the_codes_padded_convolution(kernel, steps):
    """The batched product and shifted sums give the public code's Conv1d over K - 1 zeros in front, also on a
    video shorter than the kernel."""
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(7, 1, kernel).double()
    x = torch.randn(3, 7, steps, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(causal_classifier(conv, x), conv(F.pad(x, (kernel - 1, 0)))[:, 0],
                                   rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_signed_sqrt_is_the_codes_power_normalisation_bit_for_bit(dtype):
    """Values and gradients bit for bit, the gradient 0 at exactly 0 included (not the NaN of sign(z) sqrt(|z|)
    differentiated by autograd)."""
    values = torch.cat([torch.randn(50, dtype=dtype), torch.zeros(1, dtype=dtype)])

    def with_gradient(function):
        z = values.clone().requires_grad_()
        out = function(z)
        out.backward(torch.linspace(-1, 1, len(values), dtype=dtype))
        return out.detach(), z.grad

    ours = with_gradient(signed_sqrt)
    code = with_gradient(lambda z: torch.sqrt(F.relu(z)) - torch.sqrt(F.relu(-z)))
    assert torch.equal(ours[0], code[0])
    assert torch.equal(ours[1], code[1]) and code[1][-1] == 0
