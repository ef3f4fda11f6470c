"""The embedded synthetic benchmark: WSVAD data generated from a seed, runnable anywhere.

It is built to contain the two phenomena that RTFM (Tian et al., ICCV 2021) is designed around, so
that the whole protocol can be exercised and the paper's claims probed where the truth is known:

* abnormal videos hold one contiguous anomalous event of `mu` snippets whose features move along
  an anomaly direction (one per anomaly class) by `anomaly_shift` (relative to the typical normal
  feature norm; small values make the anomaly subtle) and so gain feature magnitude;
* every video (normal ones included) holds rare isolated "hard negative" snippets: short spikes of
  large magnitude that partly resemble anomalies (`hard_negative_similarity`). A single-snippet
  maximum (MIL ranking) is fooled by them; a mean over the top-k magnitudes with temporal context
  is less so.

Snippet features are non-negative (like post-ReLU I3D features) and temporally correlated (AR(1)).
The train split carries video labels only; the test split carries frame labels (16 per snippet).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vadbench import hookimpl
from vadbench.api.dataset import Dataset
from vadbench.api.reduction import DEFAULT_REDUCTION, Reduction
from vadbench.api.types import SNIPPET_FRAMES, TRAIN_SEGMENTS, Benchmark, TestSet, TrainSet, prompted_fingerprint
from vadbench.data.pooling import reduce_video
from vadbench.data.prompts import load_prompts, with_prompts


@dataclass(frozen=True)
class SyntheticConfig:
    """Options of the synthetic benchmark; defaults are sized for a CPU run of about a minute.

    abnormal_subset: train on this many of the `train_abnormal` generated videos (0: all); the test
    set and every other video stay the same, unlike a change of `train_abnormal` itself.
    prompts: a ``.npy`` of class prompt vectors, one row per class (Normal, anomaly-0, ...), see
    `vadbench.data.prompts`; empty: none (a method needing them gets a marked stand-in).
    """

    seed: int = 0
    train_normal: int = 64
    train_abnormal: int = 64
    test_normal: int = 40
    test_abnormal: int = 40
    min_length: int = 32
    max_length: int = 96
    crops: int = 1
    feature_dim: int = 64
    mu: int = 6
    anomaly_shift: float = 0.5
    anomaly_classes: int = 3
    hard_negative_rate: float = 0.03
    hard_negative_gain: float = 1.5
    hard_negative_similarity: float = 0.6
    temporal_correlation: float = 0.8
    crop_noise: float = 0.1
    steps: int = 200
    abnormal_subset: int = 0
    prompts: str = ""

    def __post_init__(self) -> None:
        counts = ("train_normal", "train_abnormal", "test_normal", "test_abnormal")
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError("min_length must be >= 1 and <= max_length")
        if self.crops < 1 or self.feature_dim < 1 or self.anomaly_classes < 1 or self.steps < 1:
            raise ValueError("crops, feature_dim, anomaly_classes and steps must be at least 1")
        if not 1 <= self.mu <= self.min_length:
            raise ValueError(f"mu must be between 1 and min_length ({self.min_length}), got {self.mu}")
        for name in ("hard_negative_rate", "hard_negative_similarity"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if not 0.0 <= self.temporal_correlation < 1.0:
            raise ValueError("temporal_correlation must be in [0, 1)")
        if self.anomaly_shift < 0 or self.hard_negative_gain < 0 or self.crop_noise < 0:
            raise ValueError("anomaly_shift, hard_negative_gain and crop_noise must be >= 0")
        if self.abnormal_subset < 0:
            raise ValueError(f"abnormal_subset must be >= 0 (0: all), got {self.abnormal_subset}")


class Synthetic(Dataset):
    """Synthetic WSVAD benchmark with known anomalies and magnitude-spike hard negatives (no files)."""

    Config = SyntheticConfig
    config: SyntheticConfig
    #: The prompt file is named by its content (`fingerprint`), not its path: a copy is the same run.
    access_options = frozenset({"prompts"})

    def load(self, reduction: Reduction = DEFAULT_REDUCTION) -> Benchmark:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        directions = _unit_directions(rng, cfg.anomaly_classes + 1, cfg.feature_dim)
        generator = _VideoGenerator(cfg, rng, anomaly=directions[:-1], distractor=directions[-1])
        train = _train_set(generator, cfg, reduction)
        test = _test_set(generator, cfg)
        # Taken after generation, so the test set and the other videos do not change with the subset.
        train = train.with_abnormal(cfg.abnormal_subset)
        meta = {"anomaly_snippets": cfg.mu, "anomaly_segments": anomaly_segments(cfg), "feature_set": "synthetic",
                "crops": cfg.crops, "feature_dim": cfg.feature_dim}
        benchmark = Benchmark(
            "synthetic", train, test, primary_metric="auc", meta=meta,
            class_names=self.class_names(),
        )
        return with_prompts(benchmark, cfg.prompts)

    def class_names(self) -> tuple[str, ...]:
        return ("Normal", *(f"anomaly-{kind}" for kind in range(self.config.anomaly_classes)))

    def fingerprint(self, reduction: Reduction = DEFAULT_REDUCTION) -> str | None:
        """None (the options define the generated data) unless a prompt file is given: then the hash of
        its vectors, so that the same vectors under another path are the same run."""
        if not self.config.prompts:
            return None
        return prompted_fingerprint("synthetic", load_prompts(self.config.prompts, self.class_names()))

    def suggested_steps(self) -> int:
        """`steps` (default 200): sized for a CPU run of about a minute, as the published schedules are not."""
        return self.config.steps

    def feature_dim(self) -> int:
        """`feature_dim` (default 64): the generated features' dimension."""
        return self.config.feature_dim

    def longest_training_video(self) -> int:
        """`max_length` (default 96): no generated video is longer."""
        return self.config.max_length


def anomaly_segments(cfg: SyntheticConfig) -> float:
    """The anomaly length mu in pooled training segments (RTFM's k counts segments, mu snippets).

    A video of T snippets is pooled to 32 segments, so an event of mu snippets covers about
    mu * 32 / T of them; T is uniform on [min_length, max_length].
    """
    return float(cfg.mu * np.mean(TRAIN_SEGMENTS / np.arange(cfg.min_length, cfg.max_length + 1)))


def _train_set(generator: _VideoGenerator, cfg: SyntheticConfig, reduction: Reduction) -> TrainSet:
    labels = np.array([1] * cfg.train_abnormal + [0] * cfg.train_normal, dtype=np.int8)
    kept, lengths, classes = [], [], []
    for label in labels:
        features, _, kind = generator.video(int(label))
        # Reduced at once (a full-length video is kept whole until the longest one is known).
        kept.append(features if reduction.kind == "full" else reduce_video(features, reduction, reduction.segments))
        lengths.append(reduction.length(len(features)))
        classes.append(kind + 1)
    if reduction.kind == "full":
        kept = [reduce_video(features, reduction, max(lengths)) for features in kept]
    ids = tuple(f"train_{'abnormal' if y else 'normal'}_{i:04d}" for i, y in enumerate(labels))
    return TrainSet(
        np.stack(kept), labels, ids,
        lengths=np.array(lengths, np.int64) if reduction.pads else None, classes=np.array(classes, np.int64),
    )


def _test_set(generator: _VideoGenerator, cfg: SyntheticConfig) -> TestSet:
    labels = np.array([1] * cfg.test_abnormal + [0] * cfg.test_normal, dtype=np.int8)
    videos = [generator.video(int(label)) for label in labels]
    features = np.concatenate([v[0] for v in videos])
    snippet_labels = np.concatenate([v[1] for v in videos])
    offsets = np.concatenate([[0], np.cumsum([len(v[0]) for v in videos])])
    ids = tuple(f"test_{'abnormal' if y else 'normal'}_{i:04d}" for i, y in enumerate(labels))
    classes = tuple(f"anomaly-{v[2]}" if y else "Normal" for v, y in zip(videos, labels, strict=True))
    return TestSet(
        features=features,
        offsets=offsets,
        labels=labels,
        frame_labels=np.repeat(snippet_labels, SNIPPET_FRAMES),
        video_ids=ids,
        classes=classes,
    )


def _unit_directions(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    """Non-negative unit vectors, each on its own random quarter of the feature dimensions."""
    directions = np.zeros((count, dim))
    width = max(1, dim // 4)
    for row in directions:
        row[rng.choice(dim, size=width, replace=False)] = rng.uniform(0.5, 1.5, size=width)
    return directions / np.linalg.norm(directions, axis=1, keepdims=True)


class _VideoGenerator:
    """Draws one video at a time from the shared random stream (so the whole set follows the seed)."""

    def __init__(
        self, cfg: SyntheticConfig, rng: np.random.Generator, anomaly: np.ndarray, distractor: np.ndarray
    ) -> None:
        self.cfg, self.rng, self.anomaly, self.distractor = cfg, rng, anomaly, distractor
        # Norm of a typical normal snippet: the unit in which shifts and spikes are expressed.
        self.scale = np.sqrt(cfg.feature_dim)

    def video(self, label: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Features (T, C, D) float32, snippet labels (T,), and the anomaly class (-1 when normal)."""
        cfg, rng = self.cfg, self.rng
        length = int(rng.integers(cfg.min_length, cfg.max_length + 1))
        base = self._background(length)
        snippet_labels = np.zeros(length, dtype=np.int8)
        spikes = rng.random(length) < cfg.hard_negative_rate
        spike_direction = (
            cfg.hard_negative_similarity * self.anomaly[rng.integers(len(self.anomaly))]
            + (1 - cfg.hard_negative_similarity) * self.distractor
        )
        base[spikes] += cfg.hard_negative_gain * self.scale * spike_direction
        kind = -1
        if label:
            kind = int(rng.integers(len(self.anomaly)))
            start = int(rng.integers(0, length - cfg.mu + 1))
            base[start : start + cfg.mu] += cfg.anomaly_shift * self.scale * self.anomaly[kind]
            snippet_labels[start : start + cfg.mu] = 1
        crops = base[:, None, :] + cfg.crop_noise * rng.standard_normal((length, cfg.crops, cfg.feature_dim))
        return np.maximum(crops, 0.0).astype(np.float32), snippet_labels, kind

    def _background(self, length: int) -> np.ndarray:
        """Temporally correlated non-negative normal features (AR(1) noise, folded to >= 0)."""
        rho = self.cfg.temporal_correlation
        noise = self.rng.standard_normal((length, self.cfg.feature_dim))
        for t in range(1, length):
            noise[t] = rho * noise[t - 1] + np.sqrt(1 - rho**2) * noise[t]
        return np.abs(noise)


#: Presets shaped like the real benchmarks: published split sizes (abnormal / normal), crops, anomaly
#: classes, and a uniform T range around the real test-set mean (UCF-Crime 239 snippets, ShanghaiTech 45,
#: XD-Violence 182, UCSD Ped2 7-11 with the 6 + 4 weak training split). feature_dim is kept small for
#: CPU runs; --set feature_dim=2048 gives the real width.
BENCHMARK_SHAPES = {
    "synthetic-ucf-crime": dict(
        train_abnormal=810, train_normal=800, test_abnormal=140, test_normal=150,
        min_length=9, max_length=470, crops=10, anomaly_classes=13, feature_dim=32,
    ),
    "synthetic-shanghaitech": dict(
        train_abnormal=63, train_normal=175, test_abnormal=44, test_normal=155,
        min_length=13, max_length=80, crops=10, feature_dim=32,
    ),
    "synthetic-xd-violence": dict(
        train_abnormal=1905, train_normal=2049, test_abnormal=500, test_normal=300,
        min_length=6, max_length=358, crops=5, anomaly_classes=6, feature_dim=32,
    ),
    "synthetic-ucsd-ped2": dict(
        train_abnormal=6, train_normal=4, test_abnormal=6, test_normal=12,
        min_length=7, max_length=11, crops=10, mu=4, feature_dim=32,
    ),
}


#: The default without its magnitude-spike hard negatives: the ground the generator built around RTFM's
#: phenomena removed, so that a comparison of methods does not show only that ground.
NO_HARD_NEGATIVES = {"hard_negative_rate": 0.0}


@hookimpl
def vadbench_register_datasets(register):
    register("synthetic", Synthetic)
    register("synthetic-no-hard-negatives", Synthetic,
             "Synthetic benchmark without magnitude-spike hard negatives", **NO_HARD_NEGATIVES)
    for name, shape in BENCHMARK_SHAPES.items():
        description = f"Synthetic benchmark shaped like {name.removeprefix('synthetic-')} (split sizes, crops, T)"
        register(name, Synthetic, description, **shape)
