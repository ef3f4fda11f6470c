"""Model-selection protocols: settings, the held-out split, and who reads the test labels when."""

import dataclasses

import pytest
from conftest import TINY_SYNTHETIC

from vadbench.datasets.synthetic import Synthetic
from vadbench.errors import UsageError
from vadbench.methods.rtfm import RTFM
from vadbench.plugins import load_plugins
from vadbench.pooling import DEFAULT_REDUCTION
from vadbench.protocols import parse_protocol
from vadbench.runner import Runner
from vadbench.selection import hold_out
from vadbench.types import RunSpec, TestSet

STEPS = 12


def test_protocol_strings_are_parsed_to_a_canonical_spelling():
    assert parse_protocol("last").text == "last"
    assert parse_protocol("oracle-test:every=5").text == "oracle-test"  # the default is omitted
    assert parse_protocol(" val : fraction=0.3 , every=4").text == "val:every=4,fraction=0.3"
    assert not parse_protocol("oracle-test").honest and parse_protocol("val").honest


@pytest.mark.parametrize(
    ("text", "needle"),
    [("best", "unknown protocol 'best'"), ("last:every=3", "settings of 'last': none"),
     ("oracle-test:fraction=0.2", "settings of 'oracle-test': every"), ("val:every=x", "expects a number"),
     ("val:fraction=1", "between 0 and 1"), ("oracle-test:every=0", "at least 1")],
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
    oracle, reads = run(runner, "oracle-test:every=3", seed=1)
    assert min(reads) == 3  # it looked at the test set at the first checkpoint
    assert oracle.metrics["selected_step"] in (3, 6, 9, 12)
    # Same seed, same trajectory: the test-selected checkpoint can only look better than the last one.
    assert oracle.metrics["auc"] >= last.metrics["auc"] - 1e-9
    assert oracle.metrics["auc"] == pytest.approx(oracle.metrics["selection_score"])


def test_val_trains_without_its_held_out_videos(runner):
    result, _ = run(runner, "val:every=4,fraction=0.25")
    assert result.config["batch_size"] == 6  # 8 videos per class minus the 2 held out
    assert result.metrics["selected_step"] in (4, 8, 12)
    assert 0.0 <= result.metrics["selection_score"] <= 1.0


def test_the_leaderboard_puts_test_selected_rows_in_their_own_labelled_table():
    from vadbench.leaderboard import render, results_frame
    from vadbench.types import RunResult

    results = [RunResult(RunSpec("rtfm", protocol=p, seed=s), "ok", metrics={"auc": 0.9, "ap": 0.5, "ap_trapz": 0.5})
               for p in ("last", "oracle-test", "val") for s in (0, 1)]
    honest, oracle = render(results_frame(results)).split("Selected on the TEST set")
    assert "| last " in honest and "| val " in honest and "oracle-test" not in honest
    assert "| oracle-test " in oracle and "| last " not in oracle
    assert "Selected on the TEST set" not in render(results_frame(results[:2]))
