"""Seeds trained together as one stacked model give the runs they give one by one (dropout off)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from conftest import TINY_SYNTHETIC

from vadbench.api.errors import UsageError
from vadbench.api.method import Method
from vadbench.api.types import RunSpec
from vadbench.engine.runner import Runner
from vadbench.engine.stacking import stack_groups
from vadbench.plugins.manager import load_plugins

#: Dropout draws differ between stacked and separate runs (see vadbench.engine.stacking), so it is off here.
NO_DROPOUT = {"rtfm": {"dropout": 0.0, "mask_dropout": 0.0}, "sultani-mil": {"dropout": 0.0}}


def specs(method, seeds=(0, 1, 2), **changes):
    return [
        RunSpec(method, dataset_options=dict(TINY_SYNTHETIC), method_options=NO_DROPOUT.get(method, {}),
                seed=seed, steps=6, device="cpu", **changes)
        for seed in seeds
    ]


@pytest.mark.parametrize("method", ["rtfm", "sultani-mil"])
def test_stacked_seeds_equal_separate_runs(method):
    runner = Runner(progress=False)
    stacked = runner.run_together(specs(method))
    alone = [runner.run(spec) for spec in specs(method)]
    for ours, theirs in zip(stacked, alone, strict=True):
        assert ours.status == theirs.status == "ok"
        assert ours.config["engine"] == "fp32+stacked3"
        assert set(ours.metrics) == set(theirs.metrics) and set(ours.timings) == set(theirs.timings)
        assert {k: v for k, v in ours.config.items() if k != "engine"} == {
            k: v for k, v in theirs.config.items() if k != "engine"
        }
        for video, scores in theirs.scores.items():
            np.testing.assert_allclose(ours.scores[video], scores, atol=1e-5)
        assert ours.metrics["auc"] == pytest.approx(theirs.metrics["auc"], abs=1e-6)
        assert ours.curves["steps"] == theirs.curves["steps"] == [6]  # the training curves are stored alike
        assert ours.curves["terms"].keys() == theirs.curves["terms"].keys()


def test_with_dropout_a_stacked_run_draws_other_masks_than_alone():
    """The documented difference: same seed, same batches, but dropout masks from another stream."""
    runner = Runner(progress=False)
    pair = [RunSpec("rtfm", dataset_options=dict(TINY_SYNTHETIC), seed=seed, steps=6, device="cpu") for seed in (0, 1)]
    stacked, alone = runner.run_together(pair)[0], runner.run(pair[0])
    assert stacked.status == alone.status == "ok"
    assert not np.array_equal(*(np.concatenate(list(r.scores.values())) for r in (stacked, alone)))


@dataclass(frozen=True)
class SeedBombConfig:
    batch_size: int = 2
    steps: int = 10


class SeedBomb(Method):
    """A linear scorer whose loss is infinite for the model built under seed 1 (its bias starts at 1)."""

    Config = SeedBombConfig

    def build(self, crops, feature_dim):
        model = torch.nn.Linear(feature_dim, 1)
        torch.nn.init.constant_(model.bias, float(torch.initial_seed() == 1))
        return model

    def loss(self, model, batch):
        value = model(batch.abnormal).mean() - model(batch.normal).mean()
        doomed = (model.bias.detach()[0] > 0.5).float()
        return {"loss": value / (1 - doomed)}  # infinite for the doomed run, untouched for the others

    def score(self, model, features, lengths):
        return torch.sigmoid(model(features)).squeeze(-1).mean(1)  # (B, C, T, 1) -> (B, T)

    def optimizer(self, parameters):
        return torch.optim.SGD(parameters, lr=0.0)


def test_a_diverging_seed_fails_alone():
    plugins = load_plugins()
    plugins.methods.add("seed-bomb", SeedBomb, source="test")
    results = Runner(plugins, progress=False).run_together(specs("seed-bomb"))
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    assert "not finite at step 6" in results[1].error


def test_stack_groups_split_on_everything_but_the_seed():
    runs = [*specs("rtfm"), *specs("sultani-mil"), *specs("rtfm", seeds=(3,), precision="bf16")]
    assert [[s.seed for s in group] for group in stack_groups(runs)] == [[0, 1, 2], [0, 1, 2], [3]]


def test_only_runs_that_differ_in_the_seed_stack():
    runner = Runner(progress=False)
    with pytest.raises(UsageError, match="differ only in their seed"):
        runner.run_together([*specs("rtfm", seeds=(0,)), *specs("sultani-mil", seeds=(1,))])
    with pytest.raises(UsageError, match="protocol 'last'"):
        runner.run_together(specs("rtfm", protocol="val"))
    with pytest.raises(UsageError, match="only fp32"):
        runner.run_together(specs("rtfm", precision="bf16"))


def test_the_stacked_executor_stacks_seeds_and_runs_the_rest_alone(tmp_path):
    from vadbench.executors.driver import run_specs
    from vadbench.executors.stacked import StackedExecutor

    runs = [*specs("rtfm", seeds=(0, 1)), *specs("sultani-mil", seeds=(0,)),
            *specs("rtfm", seeds=(2,), precision="bf16")]
    results = run_specs(runs, tmp_path, progress=False, executor=StackedExecutor(StackedExecutor.Config()))
    assert [r.status for r in results] == ["ok"] * 4
    assert [r.config["engine"] for r in results] == ["fp32+stacked2", "fp32+stacked2", "fp32", "bf16"]


def test_stacked_runs_have_keys_of_their_own_and_an_unfinished_group_trains_whole(tmp_path):
    """A stacked run's dropout masks depend on the seeds trained with it: its key names them, and when only
    some runs of a group are unfinished the whole group trains again, so each run gets its own numbers."""
    from vadbench.executors.driver import run_specs
    from vadbench.executors.stacked import StackedExecutor
    from vadbench.report.store import RunStore

    with_dropout = [RunSpec("sultani-mil", dataset_options=dict(TINY_SYNTHETIC), seed=seed, steps=6, device="cpu")
                    for seed in (0, 1)]
    executor = StackedExecutor(StackedExecutor.Config())
    first = run_specs(with_dropout, tmp_path, progress=False, executor=executor)
    assert [r.spec.stacked for r in first] == [(0, 1), (0, 1)]
    assert {r.spec.key for r in first}.isdisjoint(s.key for s in with_dropout)  # not the keys of runs alone
    shutil.rmtree(RunStore(tmp_path).folder(first[1].spec))
    again = run_specs(with_dropout, tmp_path, progress=False, executor=executor)
    assert again[1].config["engine"] == "fp32+stacked2"
    for video, scores in first[1].scores.items():
        np.testing.assert_array_equal(again[1].scores[video], scores)


def test_the_stacked_executor_says_which_runs_train_alone_and_why(capsys):
    from vadbench.executors.stacked import StackedExecutor
    from vadbench.plan.specs import build_specs

    plugins = load_plugins()
    specs = build_specs(plugins, ["pel4vad", "rtfm"], "synthetic", [], [0, 1])
    as_run = StackedExecutor(StackedExecutor.Config()).specs_as_run(specs, plugins)
    assert [spec.stacked for spec in as_run] == [(), (), (0, 1), (0, 1)]
    assert capsys.readouterr().err.splitlines() == [
        "vadbench: --executor stacked: pel4vad on synthetic (seeds 0, 1) trains each seed alone: method 'pel4vad' "
        "cannot be stacked: PEL4VAD declares stackable = False"
    ]
