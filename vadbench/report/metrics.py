"""Frame-level metrics computed the way the WSVAD literature does, in one code path for every method, and
the one registry of them (`METRICS`) that the engine, the CLI, the tables, model selection, the
statistics and the run store read.

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

Adding a metric is one entry in `METRICS`: every run computes it (`evaluate`), ``--metrics`` offers it,
tables title it, and a paired bootstrap compares it when the entry says how to weight videos.
sklearn is imported where a metric is computed, so that reading the registry (the CLI's help) stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

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
    from sklearn.metrics import roc_auc_score

    check_lengths(frame_scores, frame_labels)
    if len(np.unique(frame_labels)) < 2:
        return float("nan")
    return float(roc_auc_score(frame_labels, frame_scores))


def frame_ap(frame_scores: np.ndarray, frame_labels: np.ndarray) -> float:
    """sklearn average precision (step-wise interpolation)."""
    from sklearn.metrics import average_precision_score

    check_lengths(frame_scores, frame_labels)
    if not np.any(frame_labels):
        return float("nan")
    return float(average_precision_score(frame_labels, frame_scores))


def frame_ap_trapz(frame_scores: np.ndarray, frame_labels: np.ndarray) -> float:
    """Trapezoidal area under the precision-recall curve, the AP that RTFM and XDVioDet report."""
    from sklearn.metrics import auc, precision_recall_curve

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
    """All metrics of one run from the concatenated snippet scores (sum T,) of a test set: every metric of
    `METRICS` under its key, and per_class_auc: for each anomaly class, AUC over that class's videos plus
    all normal videos."""
    frame_scores = expand_to_frames(snippet_scores, test.snippet_frames)
    check_lengths(frame_scores, np.asarray(test.frame_labels))
    metrics: dict[str, Any] = {key: metric.of(frame_scores, test) for key, metric in METRICS.items()}
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


@dataclass(frozen=True)
class RankedRun:
    """One run's snippet scores sorted once, with the positive and negative frames of every snippet: the
    frame-level metrics with each test video counted any number of times (a bootstrap replicate) without
    sorting millions of frames again."""

    video: np.ndarray  # (n,) video index of each snippet, in ascending score order
    positives: np.ndarray  # (n,) abnormal frames of each snippet
    negatives: np.ndarray  # (n,) normal frames of each snippet
    starts: np.ndarray  # first position of each group of tied scores

    @classmethod
    def create(
        cls, scores: Sequence[np.ndarray], frame_labels: Sequence[np.ndarray], snippet_frames: int
    ) -> RankedRun:
        """`scores[v]`: (T_v,) snippet scores of video v; `frame_labels[v]`: its (frames * T_v,) 0/1."""
        positives = []
        for v, (video_scores, labels) in enumerate(zip(scores, frame_labels, strict=True)):
            length = len(video_scores)
            if len(labels) != snippet_frames * length:
                raise ValueError(f"video {v}: {length} snippet scores but {len(labels)} ground-truth frames")
            positives.append(np.asarray(labels, dtype=float).reshape(length, snippet_frames).sum(1))
        flat = np.concatenate([np.asarray(s, dtype=float) for s in scores])
        video = np.repeat(np.arange(len(scores)), [len(s) for s in scores])
        order = np.argsort(flat, kind="stable")
        ordered = flat[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        pos = np.concatenate(positives)[order]
        return cls(video[order], pos, snippet_frames - pos, starts)

    def auc(self, counts: np.ndarray) -> np.ndarray:
        """Frame-level ROC AUC with each video counted `counts[..., v]` times: (R, V) -> (R,)."""
        counts = np.atleast_2d(counts).astype(float)
        weights = counts[:, self.video]
        pos = np.add.reduceat(weights * self.positives, self.starts, axis=1)
        neg = np.add.reduceat(weights * self.negatives, self.starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        # Each positive frame wins against every negative frame scored lower and ties count half.
        wins = (pos * (below + 0.5 * neg)).sum(axis=1)
        total = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, wins / total, np.nan)

    def ap(self, counts: np.ndarray) -> np.ndarray:
        """Frame-level average precision (sklearn's step-wise sum of precision x recall gain over the
        distinct scores, highest first) with each video counted `counts[..., v]` times: (R, V) -> (R,)."""
        counts = np.atleast_2d(counts).astype(float)
        weights = counts[:, self.video]
        pos = np.add.reduceat(weights * self.positives, self.starts, axis=1)[:, ::-1]
        neg = np.add.reduceat(weights * self.negatives, self.starts, axis=1)[:, ::-1]
        true, false = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(true + false > 0, true / (true + false), 0.0)
            return np.where(true[:, -1] > 0, (pos * precision).sum(axis=1) / true[:, -1], np.nan)


# --- the registry -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One metric, everything vadbench knows about it.

    key: its name in results and in ``--metrics``; title: its column title in tables (csv: the key);
    help: what it is, for ``--help``; compute: the metric of pseudo-frame scores and their 0/1 ground
    truth; videos: the test videos whose frames it is computed over ("all", "abnormal" or "normal");
    weighted: the same metric with each test video counted a given number of times, over a
    `RankedRun` (what a paired bootstrap replicate computes), None when no bootstrap compares it;
    required: every successful stored result must hold it (the run store refuses one without it, and two
    results of one run are compared on these).
    """

    key: str
    title: str
    help: str
    compute: Callable[[np.ndarray, np.ndarray], float]
    videos: Literal["all", "abnormal", "normal"] = "all"
    weighted: Callable[[RankedRun, np.ndarray], np.ndarray] | None = None
    required: bool = False

    def of(self, frame_scores: np.ndarray, test: TestSet) -> float:
        """The metric of a run's pseudo-frame scores over the frames of the test videos it covers."""
        labels = np.asarray(test.frame_labels)
        if self.videos == "all":
            return self.compute(frame_scores, labels)
        frames = _frames_of(test, np.flatnonzero(test.labels == (1 if self.videos == "abnormal" else 0)))
        return self.compute(frame_scores[frames], labels[frames])


def frame_far(frame_scores: np.ndarray, frame_labels: np.ndarray) -> float:
    """`false_alarm_rate` as a registered metric: of frames that are all normal, so their labels say nothing."""
    return false_alarm_rate(frame_scores)


#: Every metric, by key, in the order runs record them and ``--help`` lists them.
METRICS: dict[str, Metric] = {
    metric.key: metric
    for metric in (
        Metric("auc", "AUC", "frame-level ROC AUC", frame_auc, weighted=RankedRun.auc, required=True),
        Metric("ap", "AP", "average precision (sklearn's average_precision_score)", frame_ap,
               weighted=RankedRun.ap, required=True),
        Metric("ap_trapz", "AP (PR area)", "AP as the trapezoidal area under the precision-recall curve, as RTFM "
               "and XDVioDet report it", frame_ap_trapz, required=True),
        Metric("auc_abnormal", "AUC (abnormal videos)", "frame-level ROC AUC over the abnormal test videos only",
               frame_auc, videos="abnormal"),
        Metric("ap_abnormal", "AP (abnormal videos)", "average precision over the abnormal test videos only",
               frame_ap, videos="abnormal"),
        Metric("far", "FAR", "false-alarm rate: share of the frames of normal test videos scored >= 0.5, as "
               "Sultani et al. report it (assumes scores are probabilities)", frame_far, videos="normal"),
    )
}
