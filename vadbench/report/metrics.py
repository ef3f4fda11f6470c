"""Frame-level metrics computed the way the WSVAD literature does, in one code path for every method.

Snippet scores are expanded to pseudo-frames (each repeated `snippet_frames` times), all test videos
are concatenated in list order, and ROC AUC / AP are computed over that one long vector. AP is
reported in both conventions in use: sklearn's `average_precision_score` ("ap") and the trapezoidal
area under the PR curve ``auc(recall, precision)`` that RTFM and XDVioDet report ("ap_trapz").

The false-alarm rate ("far") is the share of the frames of NORMAL test videos scored at or above 0.5,
the false-alarm rate at a 50% threshold that Sultani et al. (CVPR 2018, Table 2) report on normal test
videos. The fixed threshold assumes scores are probabilities in [0, 1] (every built-in method ends in
a sigmoid, and `Method.score` promises [0, 1]); for a method whose scores are not calibrated
probabilities, FAR at 0.5 says more about its scale than about its false alarms, while AUC and AP,
which depend only on the ranking, do not. A method that declares ``probability_scores = False`` (its
scores are not probabilities at all) gets no FAR: the engine records it as None, shown as "-" in tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from vadbench.api.types import TestSet

#: The score at or above which a frame counts as an alarm in the false-alarm rate.
ALARM_THRESHOLD = 0.5


def expand_to_frames(snippet_scores: np.ndarray, snippet_frames: int = 16) -> np.ndarray:
    """Pseudo-frame scores: every snippet score repeated `snippet_frames` times."""
    return np.repeat(np.asarray(snippet_scores, dtype=np.float64), snippet_frames)


def check_lengths(frame_scores: np.ndarray, frame_labels: np.ndarray) -> None:
    """Refuse a score/ground-truth length mismatch before sklearn fails obscurely on it."""
    if len(frame_scores) != len(frame_labels):
        raise ValueError(
            f"scores cover {len(frame_scores)} frames but the ground truth has {len(frame_labels)}: "
            "the ground truth must be built for the T of these features"
        )


def frame_auc(frame_scores: np.ndarray, frame_labels: np.ndarray) -> float:
    """ROC AUC over frames; NaN when only one class is present (AUC is undefined there)."""
    check_lengths(frame_scores, frame_labels)
    if len(np.unique(frame_labels)) < 2:
        return float("nan")
    return float(roc_auc_score(frame_labels, frame_scores))


def frame_ap(frame_scores: np.ndarray, frame_labels: np.ndarray) -> float:
    """sklearn average precision (step-wise interpolation)."""
    check_lengths(frame_scores, frame_labels)
    if not np.any(frame_labels):
        return float("nan")
    return float(average_precision_score(frame_labels, frame_scores))


def frame_ap_trapz(frame_scores: np.ndarray, frame_labels: np.ndarray) -> float:
    """Trapezoidal area under the precision-recall curve, the AP that RTFM and XDVioDet report."""
    check_lengths(frame_scores, frame_labels)
    if not np.any(frame_labels):
        return float("nan")
    precision, recall, _ = precision_recall_curve(frame_labels, frame_scores)
    return float(auc(recall, precision))


def false_alarm_rate(normal_frame_scores: np.ndarray, threshold: float = ALARM_THRESHOLD) -> float:
    """Share of frames of normal videos scored >= `threshold`; NaN without any normal frame."""
    if len(normal_frame_scores) == 0:
        return float("nan")
    return float(np.mean(np.asarray(normal_frame_scores) >= threshold))


def evaluate(snippet_scores: np.ndarray, test: TestSet) -> dict[str, Any]:
    """All metrics of one run from the concatenated snippet scores (sum T,) of a test set.

    Keys: auc, ap, ap_trapz over all videos; auc_abnormal, ap_abnormal over abnormal videos only;
    far: the false-alarm rate over the frames of normal videos;
    per_class_auc: for each anomaly class, AUC over that class's videos plus all normal videos.
    """
    frame_scores = expand_to_frames(snippet_scores, test.snippet_frames)
    labels = np.asarray(test.frame_labels)
    check_lengths(frame_scores, labels)
    abnormal = _frames_of(test, np.flatnonzero(test.labels == 1))
    normal = _frames_of(test, np.flatnonzero(test.labels == 0))
    metrics: dict[str, Any] = {
        "auc": frame_auc(frame_scores, labels),
        "ap": frame_ap(frame_scores, labels),
        "ap_trapz": frame_ap_trapz(frame_scores, labels),
        "auc_abnormal": frame_auc(frame_scores[abnormal], labels[abnormal]),
        "ap_abnormal": frame_ap(frame_scores[abnormal], labels[abnormal]),
        "far": false_alarm_rate(frame_scores[normal]),
    }
    metrics["per_class_auc"] = per_class_auc(frame_scores, test)
    return metrics


def per_class_auc(frame_scores: np.ndarray, test: TestSet) -> dict[str, float]:
    """AUC per anomaly class over that class's videos plus every normal video (as RTFM reports it)."""
    classes = np.asarray(test.classes)
    normal = np.flatnonzero(test.labels == 0)
    result = {}
    for name in sorted(set(classes[test.labels == 1])):
        videos = np.concatenate([np.flatnonzero((classes == name) & (test.labels == 1)), normal])
        frames = _frames_of(test, np.sort(videos))
        result[str(name)] = frame_auc(frame_scores[frames], np.asarray(test.frame_labels)[frames])
    return result


def _frames_of(test: TestSet, videos: np.ndarray) -> np.ndarray:
    """Indices of the pseudo-frames of the given test videos."""
    f = test.snippet_frames
    if len(videos) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(f * test.offsets[v], f * test.offsets[v + 1]) for v in videos])
