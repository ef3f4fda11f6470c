import numpy as np
import pytest

from vadbench.api.types import TestSet
from vadbench.report.metrics import evaluate, expand_to_frames, false_alarm_rate, frame_ap, frame_ap_trapz, frame_auc


def make_test_set(lengths, labels, snippet_labels, classes=None):
    features = np.zeros((sum(lengths), 1, 2), np.float32)
    return TestSet(
        features=features,
        offsets=np.concatenate([[0], np.cumsum(lengths)]),
        labels=np.array(labels),
        frame_labels=np.repeat(np.array(snippet_labels), 16),
        video_ids=tuple(f"v{i}" for i in range(len(lengths))),
        classes=tuple(classes or ["A" if y else "Normal" for y in labels]),
    )


def test_expand_repeats_each_snippet_sixteen_times():
    frames = expand_to_frames(np.array([0.1, 0.9]))
    assert frames.shape == (32,)
    assert np.all(frames[:16] == 0.1) and np.all(frames[16:] == 0.9)


def test_length_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="scores cover 32 frames but the ground truth has 48"):
        frame_auc(np.zeros(32), np.zeros(48))


def test_auc_and_both_ap_conventions_on_a_hand_example():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    # Pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4.
    assert frame_auc(scores, labels) == pytest.approx(0.75)
    # Ranking 0.8(+), 0.4(-), 0.35(+), 0.1(-): precision 1 at recall .5, 2/3 at recall 1.
    assert frame_ap(scores, labels) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # The PR curve points (recall, precision): (0, 1), (.5, 1), (.5, .5), (1, 2/3), (1, .5) -> trapezoids.
    assert frame_ap_trapz(scores, labels) == pytest.approx(0.5 * 1 + 0.5 * (0.5 + 2 / 3) / 2)


def test_evaluate_abnormal_only_and_per_class():
    test = make_test_set(
        lengths=[2, 2, 2],
        labels=[1, 1, 0],
        snippet_labels=[0, 1, 1, 0, 0, 0],
        classes=["Fight", "Theft", "Normal"],
    )
    scores = np.array([0.2, 0.9, 0.3, 0.1, 0.5, 0.4])
    metrics = evaluate(scores, test)
    frames = np.repeat(scores, 16)
    labels = np.repeat([0, 1, 1, 0, 0, 0], 16)
    assert metrics["auc"] == pytest.approx(frame_auc(frames, labels))
    assert metrics["auc_abnormal"] == pytest.approx(frame_auc(frames[:64], labels[:64]))
    # Fight video: positive 0.9 beats all negatives (0.2 and the normal video's 0.5, 0.4) -> 1.0.
    assert metrics["per_class_auc"]["Fight"] == pytest.approx(1.0)
    # Theft video: positive 0.3 beats 0.1 only, not 0.5 or 0.4 -> 1/3.
    assert metrics["per_class_auc"]["Theft"] == pytest.approx(1 / 3)


def test_test_set_refuses_ground_truth_of_the_wrong_length():
    with pytest.raises(ValueError, match="expected 16 x 4 snippets = 64"):
        TestSet(np.zeros((4, 1, 2), np.float32), np.array([0, 4]), np.array([1]), np.zeros(60),
                ("v",), ("A",))


def test_false_alarm_rate_counts_frames_of_normal_videos_at_or_above_one_half():
    test = make_test_set(lengths=[2, 3, 2], labels=[1, 0, 0], snippet_labels=[1, 1, 0, 0, 0, 0, 0])
    # The abnormal video's 0.9 is no false alarm; normal snippets 0.5 (at the threshold), 0.7, 0.6 are:
    # 3 of 5 normal snippets, each 16 frames -> 48 / 80 frames.
    scores = np.array([0.9, 0.1, 0.5, 0.49, 0.7, 0.2, 0.6])
    assert evaluate(scores, test)["far"] == pytest.approx(3 / 5)
    assert false_alarm_rate(np.array([0.0, 0.5, 1.0]), threshold=0.6) == pytest.approx(1 / 3)


def test_false_alarm_rate_is_undefined_without_normal_test_videos():
    test = make_test_set(lengths=[2], labels=[1], snippet_labels=[0, 1])
    assert np.isnan(evaluate(np.array([0.9, 0.8]), test)["far"])
