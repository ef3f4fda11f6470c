"""The fast path (bf16 autocast, torch.compile, CUDA graphs, resident test batches) on tiny dimensions.

torch.compile runs here with the ``aot_eager`` backend: it traces the same code through dynamo and
AOTAutograd as inductor does, in seconds and without a C compiler (inductor takes about a minute per
graph on a CPU; the GPU benchmark compares inductor with eager at full size).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch
from conftest import TINY_SYNTHETIC

from vadbench.api.errors import UsageError
from vadbench.api.method import TrainBatch, TrainingInput
from vadbench.api.types import RunSpec
from vadbench.engine.acceleration import Acceleration, compile_function
from vadbench.engine.runner import Runner
from vadbench.engine.sampling import Sampler
from vadbench.engine.scoring import VideoScorer, list_order, score_videos
from vadbench.engine.training import train_method
from vadbench.plugins.manager import load_plugins


@pytest.fixture(scope="module")
def plugins():
    return load_plugins()


@pytest.fixture(scope="module")
def synthetic(plugins):
    return plugins.datasets.create("synthetic", TINY_SYNTHETIC).load()


@pytest.fixture
def aot_eager(monkeypatch):
    """torch.compile with the aot_eager backend (dynamo + AOTAutograd, no code generation)."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))


def trained(plugins, synthetic, method_name="rtfm", steps=4, **acceleration):
    """Parameters and log of a short CPU training run with the given acceleration."""
    method = plugins.methods.create(method_name)
    torch.manual_seed(0)
    model = method.build(synthetic.train.crops, synthetic.train.feature_dim)
    features = torch.as_tensor(synthetic.train.features)
    sampler = Sampler.create(synthetic.train, features, TrainingInput(), method.batch_size, seed=0)
    log, _ = train_method(method, model, sampler, steps, acceleration=Acceleration(**acceleration), log_every=1,
                          progress=False)
    return method, model, log


def test_default_step_is_the_plain_training_step(plugins, synthetic):
    """fp32 eager: exactly randperm batches -> method.loss -> backward -> optimiser step."""
    _, model, log = trained(plugins, synthetic)
    method = plugins.methods.create("rtfm")
    torch.manual_seed(0)
    reference = method.build(synthetic.train.crops, synthetic.train.feature_dim)
    optimizer = method.optimizer(reference.parameters())
    features = torch.as_tensor(synthetic.train.features)
    labels = torch.as_tensor(synthetic.train.labels)
    normal, abnormal = features[labels == 0], features[labels == 1]
    generator = torch.Generator().manual_seed(0)
    batch = min(method.batch_size, len(normal), len(abnormal))
    reference.train()
    for _ in range(4):
        n = normal[torch.randperm(len(normal), generator=generator)[:batch]]
        a = abnormal[torch.randperm(len(abnormal), generator=generator)[:batch]]
        loss = method.loss(reference, TrainBatch.balanced(n, a))["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    for ours, theirs in zip(model.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(ours, theirs)
    assert log.engine == "fp32" and log.steps == [1, 2, 3, 4]


@pytest.mark.parametrize("method_name", ["rtfm", "sultani-mil"])
def test_compiled_training_equals_eager(plugins, synthetic, aot_eager, method_name):
    _, eager, _ = trained(plugins, synthetic, method_name)
    _, compiled, log = trained(plugins, synthetic, method_name, compile=True)
    assert log.engine == "fp32+compile"
    for ours, theirs in zip(compiled.state_dict().values(), eager.state_dict().values(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_compiling_leaves_room_for_every_variant_of_a_grid():
    """Dynamo's default of 8 graphs per function would run a grid's ninth variant eagerly, silently."""
    with torch._dynamo.config.patch(recompile_limit=8):
        compile_function(lambda x: x + 1, backend="eager")
        assert torch._dynamo.config.recompile_limit >= 16  # the Table-5 grid in fp32 and bf16


def test_a_step_that_cannot_compile_falls_back_to_eager(plugins, synthetic, monkeypatch):
    def broken(function, **options):
        def fails(*args):
            raise RuntimeError("no backend here")
        return fails

    _, eager, _ = trained(plugins, synthetic)
    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile of the training step failed"):
        _, model, log = trained(plugins, synthetic, compile=True)
    assert log.engine == "fp32"
    for ours, theirs in zip(model.state_dict().values(), eager.state_dict().values(), strict=True):
        torch.testing.assert_close(ours, theirs)


def test_bf16_autocast_keeps_losses_and_scores_in_float32(plugins, synthetic):
    method, model, log = trained(plugins, synthetic, precision="bf16")
    assert log.engine == "bf16" and all(np.isfinite(list(t.values())).all() for t in log.terms)
    _, fp32_model, fp32_log = trained(plugins, synthetic)
    # Same batches and dropout masks; bf16 matmuls move the loss by well under a percent.
    assert log.terms[0]["loss"] == pytest.approx(fp32_log.terms[0]["loss"], rel=2e-2)
    normal = torch.as_tensor(synthetic.train.features[:2])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = method.loss(model, TrainBatch.balanced(normal, normal))
        scores = method.score(model.eval(), torch.as_tensor(synthetic.test.video(0)).transpose(0, 1)[None],
                              torch.tensor([synthetic.test.lengths[0]]))
    assert terms["loss"].dtype == torch.float32 and scores.dtype == torch.float32
    bf16 = np.concatenate(score_videos(method, model, synthetic.test, torch.device("cpu"),
                                       acceleration=Acceleration("bf16")))
    assert bf16.dtype == np.float32 and np.all((bf16 >= 0) & (bf16 <= 1))


def test_resident_scorer_equals_scoring_each_video_alone(plugins, synthetic):
    method = plugins.methods.create("rtfm")
    torch.manual_seed(0)
    model = method.build(synthetic.train.crops, synthetic.train.feature_dim).eval()
    # A small budget gives several batches, so the reordering across batches is exercised.
    scorer = VideoScorer(method, synthetic.test, torch.device("cpu"), budget=48, resident=True)
    assert len(scorer.batches) > 2 and scorer.resident is not None
    first, second = scorer(model).scores, scorer(model).scores
    with torch.inference_mode():
        for i, (once, again) in enumerate(zip(first, second, strict=True)):
            video = torch.from_numpy(synthetic.test.video(i)).transpose(0, 1)[None]  # (1, C, T, D)
            alone = method.score(model, video, torch.tensor([video.shape[2]]))[0].numpy()
            np.testing.assert_allclose(once, alone, atol=1e-4)
            np.testing.assert_array_equal(once, again)


def test_list_order_picks_every_real_snippet_in_list_order(synthetic):
    test = synthetic.test
    batches = VideoScorer(load_plugins().methods.create("rtfm"), test, torch.device("cpu"), budget=48).batches
    # Padded (B, T_max) grids labelled with (video, snippet) of each real position, -1 at padding.
    grids = []
    for videos in batches:
        steps = np.arange(test.lengths[videos].max())
        real = steps[None, :] < test.lengths[videos][:, None]
        grids.append(np.stack([np.where(real, videos[:, None], -1), np.where(real, steps[None, :], -1)], -1))
    picked = np.concatenate([g.reshape(-1, 2) for g in grids])[list_order(test.lengths, batches)]
    np.testing.assert_array_equal(picked[:, 0], np.repeat(np.arange(len(test)), test.lengths))
    np.testing.assert_array_equal(picked[:, 1], np.concatenate([np.arange(n) for n in test.lengths]))


def test_compiled_scorer_equals_eager(plugins, synthetic, aot_eager):
    method = plugins.methods.create("rtfm")
    torch.manual_seed(0)
    model = method.build(synthetic.train.crops, synthetic.train.feature_dim)
    eager = score_videos(method, model, synthetic.test, torch.device("cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback to eager would hide the compiled path
        compiled = VideoScorer(method, synthetic.test, torch.device("cpu"), budget=48,
                               acceleration=Acceleration(compile=True))(model).scores
    for ours, theirs in zip(compiled, eager, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_precision_and_compile_are_part_of_the_key_when_not_the_default():
    fp32 = RunSpec("rtfm", seed=1)
    assert "precision" not in fp32.identity() and "compile" not in fp32.identity()  # old keys stay valid
    assert RunSpec("rtfm", seed=1, compile=True).key != fp32.key
    assert RunSpec("rtfm", seed=1, precision="bf16").key != fp32.key
    stored = RunSpec.from_dict(RunSpec("rtfm", precision="bf16", compile=True).to_dict())
    assert stored.precision == "bf16" and stored.compile


def test_unknown_precision_is_a_usage_error():
    with pytest.raises(UsageError, match="precision"):
        Runner(progress=False).validate(RunSpec("rtfm", precision="fp8", device="cpu"))
    with pytest.raises(ValueError, match="precision"):
        Acceleration("fp16")


def test_runner_records_the_engine_that_ran():
    result = Runner(progress=False).run(RunSpec("rtfm", dataset_options=dict(TINY_SYNTHETIC), steps=3,
                                                device="cpu", precision="bf16"))
    assert result.status == "ok" and result.config["engine"] == "bf16"
    assert result.spec.to_dict()["precision"] == "bf16"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graph_training_equals_eager_on_gpu(plugins, synthetic):
    """Dropout off, so graph replay and eager draw no random numbers and must agree (TF32 off)."""
    device = torch.device("cuda")
    results = []
    for graphs in (False, True):
        method = plugins.methods.create("rtfm", {"dropout": 0.0, "mask_dropout": 0.0})
        torch.manual_seed(0)
        model = method.build(synthetic.train.crops, synthetic.train.feature_dim).to(device)
        features = torch.as_tensor(synthetic.train.features, device=device)
        sampler = Sampler.create(synthetic.train, features, TrainingInput(), method.batch_size, seed=0)
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            log, _ = train_method(method, model, sampler, 8, acceleration=Acceleration(cuda_graph=graphs),
                                  progress=False)
        results.append((model.state_dict(), log))
    (eager, _), (graphed, log) = results
    assert log.engine == "fp32+cudagraph"
    for ours, theirs in zip(graphed.values(), eager.values(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
