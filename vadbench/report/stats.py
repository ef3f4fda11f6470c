"""Statistics over runs: mean +- std over seeds, and a paired bootstrap interval for an AUC or AP difference.

A difference between two methods is uncertain in two ways: training randomness (seeds) and the
finite test set (videos). The paired bootstrap resamples both at once and with the same draws for the
two methods: seeds with replacement, and test videos with replacement within each class (normal and
abnormal videos separately, so every replicate has both classes and a defined AUC). In each replicate,
each method's frame-level AUC (or AP) is recomputed per drawn seed from its stored per-video scores and the
ground truth, and the difference of the seed-means is recorded; the interval is the percentile interval
of the replicates. A resampled video simply counts as often as it was drawn, so a replicate is a
weighted AUC (AP) over snippets that were sorted once per run (`vadbench.report.metrics.RankedRun`), not
a new sort of millions of frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from vadbench.report.metrics import METRICS, RankedRun

#: Replicates computed at once (bounds memory: replicates x snippets float64 values).
_CHUNK = 128


def mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation, as the leaderboard reports them; NaN when empty."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return float("nan"), float("nan")
    return float(array.mean()), float(array.std())


@dataclass(frozen=True)
class Difference:
    """metric(A) - metric(B) averaged over seeds, with its paired bootstrap interval (as a fraction).

    A table cell (`vadbench.report.aggregate.render_table`): ``+1.23 [+0.45, +2.01]``, or three csv columns.
    """

    SUFFIXES: ClassVar[tuple[str, ...]] = ("", "low", "high")
    estimate: float
    low: float
    high: float
    confidence: float
    replicates: int
    seeds: int
    videos: int

    def describe(self, scale: float = 100.0) -> str:
        """``+1.23 [0.45, 2.01]`` (in percent by default)."""
        return f"{scale * self.estimate:+.2f} [{scale * self.low:+.2f}, {scale * self.high:+.2f}]"

    def text(self, fmt: str) -> str:
        """The cell in markdown or latex: `describe`, in percent."""
        return self.describe()

    def fields(self) -> list[str]:
        """The csv fields: estimate, low and high, in percent."""
        return [f"{100 * value:.4f}" for value in (self.estimate, self.low, self.high)]


def paired_bootstrap(
    scores_a: Sequence[Sequence[np.ndarray]],
    scores_b: Sequence[Sequence[np.ndarray]],
    frame_labels: Sequence[np.ndarray],
    video_labels: np.ndarray,
    *,
    snippet_frames: int = 16,
    replicates: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    metric: str = "auc",
) -> Difference:
    """Paired bootstrap of the frame-level `metric` difference (one of `bootstrap_metrics`: AUC, sklearn's AP)
    between methods A and B.

    `scores_a[s][v]` are method A's snippet scores of test video v in its run with the s-th seed;
    `scores_b[s]` must be B's run with the same seed (that is the pairing). `frame_labels[v]` is video
    v's pseudo-frame ground truth and `video_labels[v]` its video label (the resampling strata).
    """
    if len(scores_a) != len(scores_b) or not scores_a:
        raise ValueError(f"paired bootstrap needs the same seeds for both methods, got {len(scores_a)} and "
                         f"{len(scores_b)} runs")
    labels = np.asarray(video_labels)
    strata = [np.flatnonzero(labels == value) for value in (0, 1)]
    if any(len(s) == 0 for s in strata):
        raise ValueError("the test set needs normal and abnormal videos for a frame-level AUC bootstrap")
    weighted = METRICS[metric].weighted if metric in METRICS else None
    if weighted is None:
        raise ValueError(f"paired bootstrap metric must be one of {', '.join(bootstrap_metrics())}, got {metric!r}")
    runs_a = [RankedRun.create(s, frame_labels, snippet_frames) for s in scores_a]
    runs_b = [RankedRun.create(s, frame_labels, snippet_frames) for s in scores_b]
    seeds, videos = len(runs_a), len(labels)
    ones = np.ones((1, videos))

    observed = np.mean([weighted(a, ones)[0] - weighted(b, ones)[0] for a, b in zip(runs_a, runs_b, strict=True)])

    rng = np.random.default_rng(seed)
    differences = []
    for start in range(0, replicates, _CHUNK):
        size = min(_CHUNK, replicates - start)
        counts = np.sum([_multiplicities(rng, stratum, size, videos) for stratum in strata], axis=0)
        seed_counts = _multiplicities(rng, np.arange(seeds), size, seeds)
        per_seed = np.stack([weighted(a, counts) - weighted(b, counts) for a, b in zip(runs_a, runs_b, strict=True)], 1)
        differences.append((per_seed * seed_counts).sum(axis=1) / seeds)
    values = np.concatenate(differences)
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    return Difference(float(observed), float(low), float(high), confidence, replicates, seeds, videos)


def bootstrap_metrics() -> list[str]:
    """The metrics a paired bootstrap can compare: those registered with a `Metric.weighted` form."""
    return [key for key, metric in METRICS.items() if metric.weighted is not None]


def _multiplicities(rng: np.random.Generator, items: np.ndarray, size: int, length: int) -> np.ndarray:
    """(size, length) counts of `items` in `size` draws of len(items) items with replacement."""
    drawn = items[rng.integers(0, len(items), size=(size, len(items)))]
    counts = np.zeros((size, length))
    np.add.at(counts, (np.arange(size)[:, None], drawn), 1)
    return counts


def topk_separability(
    magnitudes: Sequence[np.ndarray], video_labels: np.ndarray, ks: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """How well the mean of each video's k largest magnitudes separates abnormal from normal videos.

    Returns, per k: the video-level ROC AUC (a fraction) and the standardized gap
    (mean abnormal - mean normal) / pooled std. k is clamped to each video's length.
    The RTFM paper's Theorem 1 says this separability grows with k up to about the anomaly length.
    """
    labels = np.asarray(video_labels)
    ordered = [np.sort(np.asarray(m, dtype=float))[::-1] for m in magnitudes]
    aucs, gaps = [], []
    for k in ks:
        means = np.array([m[: max(1, min(k, len(m)))].mean() for m in ordered])
        abnormal, normal = means[labels == 1], means[labels == 0]
        aucs.append(_rank_auc(abnormal, normal))
        pooled = np.sqrt((abnormal.var() + normal.var()) / 2)
        gaps.append((abnormal.mean() - normal.mean()) / pooled if pooled > 0 else np.nan)
    return np.array(aucs), np.array(gaps)


def _rank_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(positive > negative) + P(tie) / 2 over all pairs."""
    greater = (positive[:, None] > negative[None, :]).mean()
    ties = (positive[:, None] == negative[None, :]).mean()
    return float(greater + 0.5 * ties)
