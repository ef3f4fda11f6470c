"""PEL4VAD against the public code (yujiangpu20/PEL4VAD at eeb31f4), in float64 and in float32, on CPU.

The fixture ``data/pel4vad_reference.json`` is written by ``tests/reference/pel4vad_reference.py`` (its
docstring says how to get the public code and run it): the public model and its ``train_func`` for one Adam
step on the UCF-Crime, XD-Violence and ShanghaiTech configurations (the ShanghaiTech batch holds videos of
two actions, whose class prompt is the mean of their actions' prompt rows), then its test scores, its
smoothing and its epoch schedule, each in float32 and in float64. Every parameter and input is set by the
rules the fixture records, dropout is 0 on both sides. This test sets vadbench's model by the same rules and
compares forward outputs, the prompt-loss pairs and logits, the class prompts, both loss terms, every
gradient, the parameters after the Adam step and the test scores.

A quantity's gap is max |ours - public| / max |public| over the tensor (`relative_gap`; sampled entries of
a large tensor are divided by the largest magnitude of the whole tensor). vadbench in float64 and in float32
is compared with the public code in float64, within one rule (`limits`): `NOISE_FACTOR` times the public
code's own rounding noise of that quantity in that precision, never tighter than the precision's floor
(`FLOORS`: 1e-12 in float64, a few roundings in float32). The float32 noise is the public code's own
float32-vs-float64 gap; the float64 noise is that gap scaled by the ratio of the unit roundoffs (2^-53 / 2^-24),
as rounding errors scale. Results depend on the CPU's summation order only within that noise, so the tests
pass on any CPU. The float64 limit is the floor for every quantity but the few gradients that are small
differences of large terms (the distance prior's w and b, the attention gate, the query and key weights; up
to 2.8e-11 for b on UCF-Crime, where the public code's own float32 gradient is off by 1.5e-3): their float64
noise is that of the public code itself, whose float64 gradients move by up to 5e-13 when its batch is only
reversed.
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
from vadbench.methods.pel4vad.method import bce, class_prompts, prompt_pairs

#: One torch thread: tiny tensors gain nothing from threads.
pytestmark = pytest.mark.usefixtures("one_thread")

REFERENCE = json.loads((Path(__file__).parent / "data" / "pel4vad_reference.json").read_text())
CASES = ("ucf", "xd", "sh")
OPTIONS = {"ucf": {}, "xd": PRESETS["pel4vad-xd"][1], "sh": PRESETS["pel4vad-sh"][1]}
DTYPES = {"float64": torch.float64, "float32": torch.float32}
NOISE_FACTOR = 10.0
FLOORS = {"float64": 1e-12, "float32": 1e-6}
#: Unit roundoff of float64 over that of float32: a computation's float64 rounding noise is its float32 noise
#: scaled by this.
FLOAT64_PER_FLOAT32 = 2.0**-29
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
#: The key bias adds q . b_k to a whole row of attention logits, which the softmax ignores: its gradient is
#: zero up to rounding on both sides (1e-12 in float32, 1e-21 in float64), and is only checked to be that small.
ANALYTICALLY_ZERO = "self_attention.self_attn.k.bias"


def relative_gap(ours, theirs, scale=None) -> float:
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    scale = np.abs(theirs).max() if scale is None else scale
    return float(np.abs(ours - theirs).max() / max(scale, 1e-30))


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
    return torch.from_numpy(video.astype(np.float32)).transpose(0, 1)[None].to(dtype)  # (1, T, C, D)


def rule_model(method: PEL4VAD, case: str, dtype: torch.dtype) -> torch.nn.Module:
    model = method.build(1, REFERENCE["feature_dim"]).to(dtype)
    state = model.state_dict()
    assert len(state) == len(REFERENCE[case]["params"]) == len(NAME_MAP)
    with torch.no_grad():
        for public, spec in REFERENCE[case]["params"].items():
            state[NAME_MAP[public]].copy_(rule_parameter(spec))
    return model


# -- vadbench's step, recorded as the fixture records the public one ------------------------------------------


def sampled(tensor: torch.Tensor, like: dict) -> dict:
    flat = tensor.detach().reshape(-1)
    return {"index": like["index"], "values": flat[like["index"]].tolist(), "max_abs": flat.abs().max().item()}


def vadbench_step(case: str, dtype: torch.dtype, **changes) -> dict:
    """Forward quantities, losses, gradients, parameters after one Adam step and test scores of vadbench."""
    reference = REFERENCE[case]["float64"]
    method = method_for(case, **changes)
    model = rule_model(method, case, dtype).train()
    batch = rule_batch(case, dtype)
    with torch.no_grad():
        scores, video = model(batch.features[:, : int(batch.lengths.max())])
        sample_prompts = class_prompts(batch.prompts, batch.class_sets)
        features, prompts, classes = prompt_pairs(scores, video, batch.classes, sample_prompts, batch.prompts[0])
        normalised = features / features.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * normalised @ (prompts / prompts.norm(dim=-1, keepdim=True)).T
    optimizer = method.optimizer(model.parameters())
    terms = method.loss(model, batch)
    optimizer.zero_grad()
    terms["loss"].backward()
    parameters = {public: dict(model.named_parameters())[ours] for public, ours in NAME_MAP.items()}
    record = {
        "scores": scores.tolist(),
        "video_feature": {"shape": list(video.shape), "sum": video.sum().item(), "abs_sum": video.abs().sum().item(),
                          **sampled(video, reference["video_feature"])},
        "pairs": {"classes": classes.tolist(), "features_abs_sum": features.abs().sum().item(),
                  "logits": logits.tolist()},
        "class_prompt_sums": sample_prompts.sum(dim=1).tolist(),
        "loss1": terms["mil"].item(), "loss2": terms["prompt"].item(), "loss": terms["loss"].item(),
        "grads": {public: {"norm": p.grad.norm().item(), **sampled(p.grad, reference["grads"][public])}
                  for public, p in parameters.items()},
    }
    optimizer.step()
    record["after_step"] = {public: sampled(p, reference["after_step"][public]) for public, p in parameters.items()}
    model.eval()
    with torch.no_grad():
        test_video = rule_test_video(dtype)
        record["test_scores"] = method.score(model, test_video, torch.tensor([test_video.shape[1]]))[0].tolist()
    return record


def gaps(ours: dict, public: dict) -> dict[str, float]:
    """Every compared quantity's relative gap between two records (ours against the public one)."""
    found = {name: relative_gap(ours[name], public[name])
             for name in ("scores", "class_prompt_sums", "loss1", "loss2", "loss", "test_scores")}
    for name in ("sum", "abs_sum"):
        found[f"video_feature.{name}"] = relative_gap(ours["video_feature"][name], public["video_feature"][name])
    video = public["video_feature"]
    found["video_feature.samples"] = relative_gap(ours["video_feature"]["values"], video["values"], video["max_abs"])
    found["pairs.features_abs_sum"] = relative_gap(ours["pairs"]["features_abs_sum"],
                                                   public["pairs"]["features_abs_sum"])
    found["pairs.logits"] = relative_gap(ours["pairs"]["logits"], public["pairs"]["logits"])
    for name, grad in public["grads"].items():
        if name != ANALYTICALLY_ZERO:
            found[f"grads.{name}"] = max(relative_gap(ours["grads"][name]["norm"], grad["norm"]),
                                         relative_gap(ours["grads"][name]["values"], grad["values"], grad["max_abs"]))
    for name, after in public["after_step"].items():
        found[f"after_step.{name}"] = relative_gap(ours["after_step"][name]["values"], after["values"],
                                                   after["max_abs"])
    return found


def limit(noise32: float, precision: str) -> float:
    """NOISE_FACTOR times a quantity's rounding noise in `precision` (from its float32 noise), at least the floor."""
    noise = noise32 if precision == "float32" else noise32 * FLOAT64_PER_FLOAT32
    return max(NOISE_FACTOR * noise, FLOORS[precision])


def limits(case: str, precision: str) -> dict[str, float]:
    """The limit of every compared quantity of `case` in `precision`, from the public code's float32 noise."""
    noise32 = gaps(REFERENCE[case]["float32"], REFERENCE[case]["float64"])
    return {name: limit(gap, precision) for name, gap in noise32.items()}


def check_structure(ours: dict, public: dict) -> None:
    assert ours["video_feature"]["shape"] == public["video_feature"]["shape"]
    assert ours["pairs"]["classes"] == public["pairs"]["classes"]
    for record in (ours, public):
        assert record["grads"][ANALYTICALLY_ZERO]["norm"] < 1e-10


@pytest.mark.parametrize("precision", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_one_step_equals_the_public_code_within_its_rounding_noise(case, precision):
    ours, public = vadbench_step(case, DTYPES[precision]), REFERENCE[case]["float64"]
    check_structure(ours, public)
    found, allowed = gaps(ours, public), limits(case, precision)
    print(case, precision, "largest gap", max(found.values()), "largest gap / limit",
          max(found[name] / allowed[name] for name in found))
    assert {name: (gap, allowed[name]) for name, gap in found.items() if gap > allowed[name]} == {}


@pytest.mark.parametrize("precision", DTYPES)
def test_a_wrong_prompt_weight_fails_the_comparison(precision):
    """The comparison can fail: a prompt-loss weight 0.1 % off moves the total loss far beyond its limit."""
    ours = vadbench_step("sh", DTYPES[precision], lamda=OPTIONS["sh"]["lamda"] * 1.001)
    assert relative_gap(ours["loss"], REFERENCE["sh"]["float64"]["loss"]) > 10 * limits("sh", precision)["loss"]


def test_a_two_action_video_gets_the_mean_of_its_prompt_rows():
    """The ShanghaiTech batch holds videos of two actions; the first action alone would be another prompt."""
    batch = rule_batch("sh", torch.float64)
    assert (batch.class_sets[:, 1] >= 0).sum() >= 2
    public = REFERENCE["sh"]["float64"]["class_prompt_sums"]
    first_only = class_prompts(batch.prompts, batch.class_sets[:, :1]).sum(dim=1)
    assert relative_gap(first_only, public) > 1e-2


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
    for name, length in ((f"{smoothing}_{kappa}", None), (f"{smoothing}_{kappa}_short", 5)):
        noise32 = relative_gap(record["float32"][name], record["float64"][name])
        scores = np.asarray(record["scores"][:length])
        for precision, dtype in (("float64", np.float64), ("float32", np.float32)):
            ours = method.postprocess(scores.astype(dtype))
            assert ours.dtype == dtype and ours.shape == scores.shape
            assert relative_gap(ours, record["float64"][name]) <= limit(noise32, precision), (name, precision)


def test_the_loss_keeps_float64_and_computes_bce_in_float32_under_bf16_autocast():
    scores, labels = torch.tensor([0.2, 0.7, 0.9], dtype=torch.float64), torch.tensor([0.0, 1.0, 1.0])
    assert bce(scores, labels).dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert bce(scores.to(torch.bfloat16), labels).dtype == torch.float32
    method = method_for("ucf")
    terms = method.loss(rule_model(method, "ucf", torch.float64), rule_batch("ucf", torch.float64))
    assert {name: value.dtype for name, value in terms.items()} == dict.fromkeys(terms, torch.float64)


def test_side_inputs_are_required():
    method = PEL4VAD(PEL4VADConfig(dropout=0.0))
    assert method.side_inputs == frozenset({"classes", "prompts"})
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
    assert method.prompt_width() == 512  # the engine refuses prompts of another width before training
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
    scores = torch.tensor([1.0, 0.0, 0.5], requires_grad=True)
    loss = bce(scores, torch.tensor([0.0, 1.0, 1.0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()
