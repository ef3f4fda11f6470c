"""Model-selection protocols: settings, the held-out split, and who reads the test labels when."""

import dataclasses

import pytest
import torch
from conftest import TINY_SYNTHETIC
from torch import nn

from vadbench.api.errors import UsageError
from vadbench.api.reduction import DEFAULT_REDUCTION
from vadbench.api.types import RunSpec, TestSet
from vadbench.datasets.synthetic import Synthetic
from vadbench.engine.runner import Runner
from vadbench.engine.selection import CheckpointSelector, OracleTestSelector, ValidationSelector, hold_out
from vadbench.methods.rtfm import RTFM
from vadbench.plan.protocols import parse_protocol
from vadbench.plugins.manager import load_plugins

STEPS = 12


def test_protocol_strings_are_parsed_to_a_canonical_spelling():
    assert parse_protocol("last").text == "last"
    assert parse_protocol("oracle-test:every=5").text == "oracle-test"  # the default is omitted
    assert parse_protocol("oracle-test:after=200,every=5").text == "oracle-test"
    assert parse_protocol("oracle-test:after=0,every=3").text == "oracle-test:every=3,after=0"
    assert parse_protocol(" val : fraction=0.3 , every=4").text == "val:every=4,fraction=0.3"
    assert not parse_protocol("oracle-test").honest and parse_protocol("val").honest


@pytest.mark.parametrize(
    ("text", "needle"),
    [("best", "unknown protocol 'best'"), ("last:every=3", "settings of 'last': none"),
     ("oracle-test:fraction=0.2", "settings of 'oracle-test': every, after"), ("val:every=x", "expects a number"),
     ("val:fraction=1", "between 0 and 1"), ("oracle-test:every=0", "at least 1"),
     ("oracle-test:after=-1", "after must be at least 0"), ("val:after=0", "settings of 'val': every, fraction"),
     ("oracle-test:after=1.5", "expects a number")],
)
def test_bad_protocols_are_usage_errors(text, needle):
    with pytest.raises(UsageError, match=needle):
        parse_protocol(text)


def test_hold_out_is_stratified_disjoint_and_seeded():
    train = Synthetic(Synthetic.Config(**TINY_SYNTHETIC)).load().train
    kept, held = hold_out(train, 0.25, seed=3)
    assert sorted(kept.video_ids + held.video_ids) == sorted(train.video_ids)
    assert not set(kept.video_ids) & set(held.video_ids)
    assert sorted(held.labels.tolist()) == [0, 0, 1, 1]  # 25% of 8 normal and of 8 abnormal videos
    assert hold_out(train, 0.25, seed=3)[1].video_ids == held.video_ids
    assert hold_out(train, 0.25, seed=4)[1].video_ids != held.video_ids


def test_hold_out_needs_two_videos_per_class():
    train = Synthetic(Synthetic.Config(**{**TINY_SYNTHETIC, "train_abnormal": 1})).load().train
    with pytest.raises(UsageError, match="at least 2 abnormal training videos"):
        hold_out(train, 0.2, seed=0)


# --- who reads the test labels, and when -------------------------------------------------------------

READS: list[int] = []  # the training step at which each read of the test labels happened
STEP = [0]


@dataclasses.dataclass(frozen=True, eq=False)
class TrackedTestSet(TestSet):
    """A test set that logs every read of its labels (frame and video labels) with the current step."""

    def __getattribute__(self, name):
        if name in ("frame_labels", "labels", "classes"):
            READS.append(STEP[0])
        return super().__getattribute__(name)


class Tracked(Synthetic):
    def load(self, reduction=DEFAULT_REDUCTION):
        benchmark = super().load(reduction)
        fields = {f.name: getattr(benchmark.test, f.name) for f in dataclasses.fields(TestSet)}
        return dataclasses.replace(benchmark, test=TrackedTestSet(**fields))


class CountingRTFM(RTFM):
    def loss(self, model, batch):
        STEP[0] += 1
        return super().loss(model, batch)


@pytest.fixture(scope="module")
def runner():
    plugins = load_plugins()
    plugins.methods.add("counting-rtfm", CountingRTFM, source="test")
    plugins.datasets.add("tracked", Tracked, source="test")
    return Runner(plugins, progress=False)


def run(runner, protocol, seed=0):
    STEP[0] = 0
    spec = RunSpec("counting-rtfm", "tracked", dataset_options=dict(TINY_SYNTHETIC), seed=seed, steps=STEPS,
                   protocol=protocol, device="cpu")
    runner.benchmark(spec)  # loading validates the labels; that is no read by the protocol
    READS.clear()
    result = runner.run(spec)
    assert result.status == "ok" and STEP[0] == STEPS
    return result, list(READS)


@pytest.mark.parametrize("protocol", ["last", "val:every=2"])
def test_honest_protocols_read_test_labels_only_after_training(runner, protocol):
    result, reads = run(runner, protocol)
    assert reads, "the final evaluation must read the ground truth"
    assert min(reads) == STEPS, f"{protocol} read the test labels during training (at step {min(reads)})"


def test_oracle_test_reads_test_labels_during_training_and_keeps_the_best(runner):
    last, _ = run(runner, "last", seed=1)
    oracle, reads = run(runner, "oracle-test:every=3,after=0", seed=1)
    assert min(reads) == 3  # it looked at the test set at the first checkpoint
    assert oracle.metrics["selected_step"] in (3, 6, 9, 12) and oracle.metrics["checkpoints_scored"] == 4
    # Same seed, same trajectory: the test-selected checkpoint can only look better than the last one.
    assert oracle.metrics["auc"] >= last.metrics["auc"] - 1e-9
    assert oracle.metrics["auc"] == pytest.approx(oracle.metrics["selection_score"])


def test_oracle_test_scores_nothing_before_step_200_and_then_evaluates_the_final_weights(runner):
    last, _ = run(runner, "last", seed=1)
    oracle, reads = run(runner, "oracle-test:every=3", seed=1)  # 12 steps, none past 200
    assert min(reads) == STEPS, f"oracle-test read the test labels at step {min(reads)}"
    assert oracle.metrics["selected_step"] == STEPS and oracle.metrics["checkpoints_scored"] == 0
    assert "selection_score" not in oracle.metrics
    assert oracle.metrics["auc"] == last.metrics["auc"]  # the same final weights


# --- the selection rule with scripted scores ----------------------------------------------------------


def scripted(selector_class, steps, scores, **settings):
    """Run `selector_class`'s rule over `steps` steps of a one-weight model whose weight is the step number,
    with the score of each step taken from `scores`; returns (recorded selection, evaluated weight, scored steps)."""
    scored: list[int] = []

    class Scripted(selector_class):
        def __init__(self):
            CheckpointSelector.__init__(self, None, steps, settings.get("every", 5))
            self.after = settings.get("after", 200)

        def criterion(self, model):
            step = int(model.weight.item())
            scored.append(step)
            return scores.get(step, 0.0)

    selector = Scripted()
    model = nn.Linear(1, 1, bias=False)
    for step in range(1, steps + 1):  # training: the weights after step s are s
        with torch.no_grad():
            model.weight.fill_(step)
        selector.on_step(model, step)
    selection = selector.finish(model)
    return selection, int(model.weight.item()), scored


def test_oracle_test_scores_the_public_codes_steps_and_keeps_the_first_best():
    scores = {205: 0.7, 210: 0.9, 215: 0.9, 220: 0.8, 225: 0.9, 230: 0.6}
    selection, weight, scored = scripted(OracleTestSelector, 232, scores)
    # `step % 5 == 0 and step > 200`, from 1-based steps; the final step 232 is no multiple of 5.
    assert scored == [205, 210, 215, 220, 225, 230]
    # Ties at 0.9 (210, 215, 225): the first is kept, as `if auc > best_AUC` does.
    assert weight == 210
    assert selection == {"selected_step": 210, "checkpoints_scored": 6, "selection_score": 0.9}


def test_oracle_test_scores_the_last_step_only_when_the_rule_takes_it():
    assert scripted(OracleTestSelector, 210, {})[2] == [205, 210]
    assert scripted(OracleTestSelector, 12, {}, every=3, after=0)[2] == [3, 6, 9, 12]


def test_oracle_test_without_any_checkpoint_evaluates_the_final_weights():
    selection, weight, scored = scripted(OracleTestSelector, 204, {})
    assert scored == [] and weight == 204
    assert selection == {"selected_step": 204, "checkpoints_scored": 0}


def test_val_scores_every_checkpoint_and_the_last_step_and_keeps_the_later_on_ties():
    selection, weight, scored = scripted(ValidationSelector, 12, {4: 0.8, 8: 0.8, 12: 0.7}, every=4)
    assert scored == [4, 8, 12] and weight == 8
    assert selection == {"selected_step": 8, "checkpoints_scored": 3, "selection_score": 0.8}
    assert scripted(ValidationSelector, 10, {}, every=4)[2] == [4, 8, 10]


def test_val_trains_without_its_held_out_videos(runner):
    result, _ = run(runner, "val:every=4,fraction=0.25")
    assert result.config["batch_size"] == 6  # 8 videos per class minus the 2 held out
    assert result.metrics["selected_step"] in (4, 8, 12)
    assert 0.0 <= result.metrics["selection_score"] <= 1.0


def test_the_leaderboard_puts_test_selected_rows_in_their_own_labelled_table():
    from vadbench.api.types import RunResult
    from vadbench.report.leaderboard import render

    results = [RunResult(RunSpec("rtfm", protocol=p, seed=s), "ok", metrics={"auc": 0.9, "ap": 0.5, "ap_trapz": 0.5})
               for p in ("last", "oracle-test", "val") for s in (0, 1)]
    honest, oracle = render(results).split("Selected on the TEST set")
    assert "| last " in honest and "| val " in honest and "oracle-test" not in honest
    assert "| oracle-test " in oracle and "| last " not in oracle
    assert "Selected on the TEST set" not in render(results[:2])
