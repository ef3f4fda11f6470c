from dataclasses import dataclass

import numpy as np
import pytest
import torch
from conftest import TINY_SYNTHETIC

from vadbench.api.errors import UsageError
from vadbench.api.method import Method
from vadbench.api.types import RunSpec
from vadbench.engine.runner import Runner, resolve_device
from vadbench.engine.scoring import length_batches, score_videos
from vadbench.plugins.manager import load_plugins


def spec(method="rtfm", **changes):
    return RunSpec(method=method, dataset_options=dict(TINY_SYNTHETIC), steps=6, device="cpu", **changes)


@pytest.mark.parametrize("method", ["rtfm", "sultani-mil"])
def test_same_seed_gives_identical_scores_on_cpu(method):
    first = Runner(progress=False).run(spec(method, seed=1))
    second = Runner(progress=False).run(spec(method, seed=1))
    other = Runner(progress=False).run(spec(method, seed=2))
    assert first.metrics == second.metrics
    for video in first.scores:
        np.testing.assert_array_equal(first.scores[video], second.scores[video])
    assert any(not np.array_equal(first.scores[v], other.scores[v]) for v in first.scores)


def test_result_records_provenance():
    result = Runner(progress=False).run(spec(method_options={"k": 2}))
    assert result.status == "ok"
    assert result.config["method.k"] == 2 and result.config["dataset.mu"] == TINY_SYNTHETIC["mu"]
    assert result.config["steps"] == 6 and result.config["batch_size"] == 8  # clamped to 8 videos per class
    assert {"torch", "numpy", "vadbench"} <= set(result.versions)
    assert set(result.timings) >= {"load", "train", "evaluate", "total"}
    assert 0.0 <= result.metrics["auc"] <= 1.0 and set(result.metrics) >= {"ap", "ap_trapz", "auc_abnormal"}


def test_videos_shorter_than_k_do_not_crash():
    tiny = {**TINY_SYNTHETIC, "min_length": 2, "max_length": 3, "mu": 1}
    result = Runner(progress=False).run(RunSpec("rtfm", dataset_options=tiny, steps=3, device="cpu",
                                                method_options={"k": 5}))
    assert result.status == "ok"


def test_batched_test_scoring_equals_scoring_each_video_alone():
    runner = Runner(progress=False)
    benchmark, _ = runner.benchmark(spec())
    method = runner.plugins.methods.create("rtfm")
    torch.manual_seed(0)
    model = method.build(benchmark.test.features.shape[1], benchmark.test.features.shape[2])
    batched = score_videos(method, model, benchmark.test, torch.device("cpu"))
    with torch.inference_mode():
        for i in range(len(benchmark.test)):
            video = torch.from_numpy(benchmark.test.video(i)).transpose(0, 1)[None]  # (1, C, T, D)
            alone = method.score(model, video, torch.tensor([video.shape[2]]))[0].numpy()
            np.testing.assert_allclose(batched[i], alone, atol=1e-4)


def test_length_batches_cover_every_video_once_within_budget():
    lengths = np.array([5, 50, 7, 3, 49, 8])
    batches = length_batches(lengths, crops=1, budget=100)
    flat = np.concatenate(batches)
    assert sorted(flat) == list(range(6))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 100


@dataclass(frozen=True)
class DivergingConfig:
    batch_size: int = 2
    steps: int = 60


class Diverging(Method):
    """Loss becomes NaN after a few steps."""

    Config = DivergingConfig

    def build(self, crops, feature_dim):
        return torch.nn.Linear(feature_dim, 1)

    def loss(self, model, batch):
        return {"loss": model(batch.abnormal).mean() * float("nan")}

    def score(self, model, features, lengths):
        return torch.sigmoid(model(features)).squeeze(-1).mean(1)  # (B, C, T, 1) -> (B, T)

    def optimizer(self, parameters):
        return torch.optim.SGD(parameters, lr=0.1)


def test_non_finite_loss_fails_the_run_naming_the_step():
    plugins = load_plugins()
    plugins.methods.add("diverging", Diverging, source="test")
    spec = RunSpec("diverging", dataset_options=dict(TINY_SYNTHETIC), device="cpu")
    result = Runner(plugins, progress=False).run(spec)
    assert result.status == "failed"
    assert "not finite at step 20" in result.error


def test_a_device_is_checked_against_the_accelerators_this_machine_has(monkeypatch):
    # As on a machine with two GPUs (this one may have none).
    monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda check_available=False: torch.device("cuda"))
    monkeypatch.setattr(torch.accelerator, "device_count", lambda: 2)
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UsageError, match=r"--device cuda:2: .*\(available: auto, cpu, cuda, cuda:0, cuda:1\)"):
        resolve_device("cuda:2")
    with pytest.raises(UsageError, match="--device mps: this machine has no such device"):
        resolve_device("mps")
