"""Statistics: the weighted AUC behind the bootstrap equals sklearn, and intervals with known answers."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from vadbench.report.metrics import RankedRun
from vadbench.report.stats import mean_std, paired_bootstrap

F = 4  # frames per snippet, small to keep the hand-made ground truth short


def test_mean_std_is_the_population_std_and_nan_when_empty():
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
    assert all(np.isnan(mean_std([])))


def make_videos(rng, count=10, abnormal=4):
    """Per-video snippet scores with ties, and frame labels whose events start mid-snippet."""
    scores, labels = [], []
    for v in range(count):
        length = int(rng.integers(3, 9))
        scores.append(np.round(rng.random(length), 1))  # rounding makes ties
        frames = np.zeros(F * length, dtype=np.int8)
        if v < abnormal:
            start = int(rng.integers(0, F * length - 3))
            frames[start : start + int(rng.integers(2, 3 * F))] = 1
        labels.append(frames)
    return scores, labels, np.array([1] * abnormal + [0] * (count - abnormal))


def test_weighted_auc_equals_sklearn_on_the_resampled_frames():
    rng = np.random.default_rng(0)
    scores, labels, _ = make_videos(rng)
    ranked = RankedRun.create(scores, labels, F)
    for counts in (np.ones(10, int), rng.integers(0, 3, 10)):
        counts[0] = max(counts[0], 1)  # keep an abnormal video
        counts[-1] = max(counts[-1], 1)  # and a normal one
        frames = np.concatenate([np.repeat(scores[v], F) for v in range(10) for _ in range(counts[v])])
        truth = np.concatenate([labels[v] for v in range(10) for _ in range(counts[v])])
        assert ranked.auc(counts)[0] == pytest.approx(roc_auc_score(truth, frames), abs=1e-12)


def test_weighted_ap_equals_sklearn_on_the_resampled_frames():
    rng = np.random.default_rng(3)
    scores, labels, _ = make_videos(rng)
    ranked = RankedRun.create(scores, labels, F)
    for counts in (np.ones(10, int), rng.integers(0, 3, 10), rng.integers(0, 4, 10)):
        counts[0] = max(counts[0], 1)
        frames = np.concatenate([np.repeat(scores[v], F) for v in range(10) for _ in range(counts[v])])
        truth = np.concatenate([labels[v] for v in range(10) for _ in range(counts[v])])
        assert ranked.ap(counts)[0] == pytest.approx(average_precision_score(truth, frames), abs=1e-12)


def test_the_ap_difference_of_a_perfect_method_is_one_minus_the_constant_ones_ap():
    _, labels, video_labels = make_videos(np.random.default_rng(2))
    aligned = [np.repeat(lab.reshape(-1, F).max(1), F) for lab in labels]
    perfect = [lab.reshape(-1, F)[:, 0].astype(float) for lab in aligned]
    constant = [np.full(len(s), 0.5) for s in perfect]
    diff = paired_bootstrap([perfect], [constant], aligned, video_labels, snippet_frames=F, replicates=200,
                            metric="ap")
    prevalence = np.concatenate(aligned).mean()  # a constant score's AP is the share of positives
    assert diff.estimate == pytest.approx(1 - prevalence, abs=1e-12)
    assert diff.low <= diff.estimate <= diff.high


def test_identical_methods_differ_by_exactly_zero():
    scores, labels, video_labels = make_videos(np.random.default_rng(1))
    diff = paired_bootstrap([scores, scores], [scores, scores], labels, video_labels, snippet_frames=F,
                            replicates=300)
    assert (diff.estimate, diff.low, diff.high) == (0.0, 0.0, 0.0)
    assert diff.seeds == 2 and diff.videos == 10


def test_a_perfect_method_against_a_constant_one_differs_by_exactly_one_half():
    _, labels, video_labels = make_videos(np.random.default_rng(2))
    # Snippet score 1 where the snippet is fully abnormal, 0 where fully normal, 0.5 where mixed: AUC 1
    # needs no mixed snippet, so use snippet-aligned labels.
    aligned = [np.repeat(lab.reshape(-1, F).max(1), F) for lab in labels]
    perfect = [lab.reshape(-1, F)[:, 0].astype(float) for lab in aligned]
    constant = [np.full(len(s), 0.5) for s in perfect]
    diff = paired_bootstrap([perfect] * 3, [constant] * 3, aligned, video_labels, snippet_frames=F,
                            replicates=300)
    assert (diff.estimate, diff.low, diff.high) == pytest.approx((0.5, 0.5, 0.5))


def test_interval_contains_the_estimate_and_shrinks_with_more_test_videos():
    rng = np.random.default_rng(3)

    def width(count):
        scores, labels, video_labels = make_videos(rng, count=count, abnormal=count // 2)
        noisy = [[s + 0.3 * rng.standard_normal(len(s)) for s in scores] for _ in range(3)]
        diff = paired_bootstrap([scores] * 3, noisy, labels, video_labels, snippet_frames=F, replicates=400)
        assert diff.low <= diff.estimate <= diff.high
        return diff.high - diff.low

    assert width(200) < width(12)


def test_unpaired_inputs_are_refused():
    scores, labels, video_labels = make_videos(np.random.default_rng(4))
    with pytest.raises(ValueError, match="same seeds"):
        paired_bootstrap([scores], [scores, scores], labels, video_labels, snippet_frames=F)
