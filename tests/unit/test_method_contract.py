"""The method contract's declarations: each one reaches the engine, and a plugin using all of them runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import TINY_SYNTHETIC

from vadbench.api.method import Declarations, Method
from vadbench.api.types import RunSpec
from vadbench.cli import main
from vadbench.engine.runner import Runner
from vadbench.engine.scoring import VideoScorer
from vadbench.plugins.manager import load_plugins


def test_a_plugin_with_every_declaration_trains_and_scores_through_vadbench_run(contract_plugin, tmp_path, capsys):
    args = [arg for key, value in TINY_SYNTHETIC.items() for arg in ("--set", f"dataset.{key}={value}")]
    code = main(["run", "--method", "global-context", "--seeds", "0", "--steps", "12", "--device", "cpu",
                 "--out", str(tmp_path), "--quiet", *args])
    assert code == 0, capsys.readouterr().err
    (stored,) = tmp_path.rglob("result.json")
    result = json.loads(stored.read_text())
    assert result["status"] == "ok" and 0 <= result["metrics"]["auc"] <= 1
    config = result["config"]
    # Everything the method declared is recorded with the result.
    assert config["method.input.reduction"] == "mean" and config["method.input.segments"] == 200
    assert config["method.input.crops"] == "independent" and config["method.input.batch"] == "mixed"
    assert config["method.padded_scoring"] == "alone" and config["method.grad_clip"] == 0.5
    assert config["method.scheduler"] == "_RecordingCosine"
    assert config["method.postprocess"] == "GlobalContext.postprocess"
    # 200 segments, every crop a sample of its own (D = 16), mixed batches of 6 samples with class indices.
    batches = contract_plugin.SEEN["batches"]
    assert len(batches) == 12 and all(shape == (6, 200, 16) for shape, *_ in batches)
    assert any(0 < sum(labels) < 6 for _, labels, _, _ in batches)  # not one class per half
    classes = [c for _, labels, cls, _ in batches for label, c in zip(labels, cls, strict=True) if label]
    assert classes and all(c >= 1 for c in classes)  # abnormal samples carry their anomaly class
    # The cosine schedule was stepped once per step (after its constructor's own first call), from the
    # optimiser's lr down: the learning rate seen by step 7 is the one after 6 steps.
    lrs = contract_plugin.SEEN["lr"][1:]
    assert len(lrs) == 12 and lrs[0] == pytest.approx(1e-2)
    assert lrs[6] == pytest.approx(1e-2 * (1 + math.cos(math.pi * 6 / 12)) / 2)


def test_unsafe_padding_is_scored_alone_and_postprocessed(contract_plugin):
    plugins = load_plugins()
    method = plugins.methods.create("global-context")
    benchmark = plugins.datasets.create("synthetic", TINY_SYNTHETIC).load()
    torch.manual_seed(0)
    model = method.build(benchmark.test.features.shape[1], benchmark.test.features.shape[2]).eval()
    scorer = VideoScorer(method, benchmark.test, torch.device("cpu"))
    assert all(len(batch) == 1 for batch in scorer.batches)  # never padded together
    scored = scorer(model).scores
    for video in range(len(benchmark.test)):
        features = torch.as_tensor(benchmark.test.video(video)).transpose(0, 1)[None]  # (1, C, T, D)
        with torch.inference_mode():
            alone = method.score(model, features, torch.tensor([features.shape[2]]))[0].numpy()
        np.testing.assert_allclose(scored[video], method.postprocess(alone), rtol=1e-6)


def test_gradients_are_clipped_to_the_declared_norm(contract_plugin):
    plugins = load_plugins()
    norms = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        parameters = list(parameters)
        total = original(parameters, max_norm, *args, **kwargs)
        norms.append((float(total), float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(p.grad) for p in parameters])))))
        return total

    torch.nn.utils.clip_grad_norm_ = spy
    try:
        spec = RunSpec("global-context", dataset_options=dict(TINY_SYNTHETIC), steps=5, device="cpu",
                       method_options={"clip": 1e-3})
        assert Runner(plugins, progress=False).run(spec).status == "ok"
    finally:
        torch.nn.utils.clip_grad_norm_ = original
    assert len(norms) == 5
    assert all(after <= 1e-3 * (1 + 1e-4) and before > after for before, after in norms)


def test_a_method_that_cannot_stack_is_refused_by_the_stacked_path(contract_plugin):
    from vadbench.api.errors import UsageError

    plugins = load_plugins()
    specs = [RunSpec("global-context", dataset_options=dict(TINY_SYNTHETIC), seed=seed, steps=2, device="cpu")
             for seed in (0, 1)]
    with pytest.raises(UsageError, match="cannot be stacked"):
        Runner(plugins, progress=False).run_together(specs)


def test_a_declaration_set_the_old_way_is_refused_not_ignored():
    """A class attribute the engine no longer reads (``padded_scoring = "alone"``) would silently score padded
    batches: defining such a subclass fails, naming where the declaration belongs."""
    with pytest.raises(TypeError, match=r"Unsafe sets padded_scoring, stackable, which a method declares in "
                                        r"Method\.declarations\(\)"):
        type("Unsafe", (Method,), {"padded_scoring": "alone", "stackable": False})


@pytest.mark.parametrize(("field", "value"), [("padded_scoring", "batched"), ("scheduler_interval", "epochs")])
def test_declarations_refuse_an_unknown_choice(field, value):
    with pytest.raises(ValueError, match=f"Declarations.{field} must be"):
        Declarations(**{field: value})


def test_the_record_names_the_declared_hooks_and_their_absence():
    recorded = Declarations().record()
    assert (recorded["train_step"], recorded["postprocess"], recorded["side_inputs"]) == ("default", "none", "none")
    method = load_plugins().methods.create("pel4vad")
    recorded = method.declarations().record()
    assert recorded["postprocess"] == "PEL4VAD.postprocess" and recorded["side_inputs"] == "classes,prompts"
    assert Declarations(train_step=lambda model, optimizer, batch: {}).record()["train_step"] == "own"
