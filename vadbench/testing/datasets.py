"""Conformance checks of a dataset adapter (`vadbench.api.dataset.Dataset`): `load` gives a Benchmark of the
declared types, video labels only in training, test ground truth of 16 frames per snippet consistent with
the video labels, unique video ids in disjoint splits, the primary metric computable, the same data twice.
"""

from __future__ import annotations

import numpy as np

from vadbench.api.dataset import Dataset
from vadbench.api.types import Benchmark, TestSet, TrainSet
from vadbench.report.metrics import evaluate
from vadbench.testing.common import SEED


def check_benchmark_types(dataset: Dataset) -> None:
    """`load` returns a Benchmark whose train set is a TrainSet, test set a TestSet, of float features."""
    benchmark = dataset.load()
    assert isinstance(benchmark, Benchmark), f"load() must return a Benchmark, got {type(benchmark).__name__}"
    assert isinstance(benchmark.train, TrainSet), f"Benchmark.train must be a TrainSet, got {type(benchmark.train)}"
    assert isinstance(benchmark.test, TestSet), f"Benchmark.test must be a TestSet, got {type(benchmark.test)}"
    for split in ("train", "test"):
        dtype = getattr(benchmark, split).features.dtype
        assert dtype == np.float32, f"{split} features must be float32, got {dtype}"
    assert benchmark.name, "the benchmark needs a name"


def check_weak_training_labels(dataset: Dataset) -> None:
    """Training carries one 0/1 label per video (no frame labels), and both classes occur."""
    train = dataset.load().train
    # The exact type: a subclass could carry frame-level labels into training.
    assert type(train) is TrainSet, f"the training set must be a plain TrainSet (video labels only), got {type(train)}"
    labels = np.asarray(train.labels)
    assert labels.shape == (len(train),), f"training labels must be one per video, got shape {labels.shape}"
    classes = set(np.unique(labels).tolist())
    assert classes == {0, 1}, f"training needs normal (0) and abnormal (1) videos only, got labels {sorted(classes)}"


def check_test_ground_truth(dataset: Dataset) -> None:
    """Test offsets cover every snippet once, frame labels are 0/1, 16 per snippet, and agree with video labels.

    A normal video has no anomalous frame; an abnormal video has at least one.
    """
    test = dataset.load().test
    offsets = np.asarray(test.offsets)
    assert offsets[0] == 0 and offsets[-1] == len(test.features), "test offsets must run from 0 to the snippet count"
    assert (np.diff(offsets) >= 1).all(), "every test video needs at least one snippet (offsets strictly increasing)"
    frames = np.asarray(test.frame_labels)
    assert len(frames) == test.snippet_frames * len(test.features), (
        f"test ground truth has {len(frames)} frames, expected {test.snippet_frames} per snippet"
    )
    assert set(np.unique(frames).tolist()) <= {0, 1}, "test frame labels must be 0 or 1"
    assert set(np.unique(test.labels).tolist()) <= {0, 1}, "test video labels must be 0 or 1"
    for video, label in enumerate(test.labels):
        start, end = test.snippet_frames * offsets[video], test.snippet_frames * offsets[video + 1]
        anomalous = bool(frames[start:end].any())
        assert anomalous == bool(label), (
            f"test video {test.video_ids[video]!r} is labelled {label} but has "
            f"{'some' if anomalous else 'no'} anomalous frames"
        )


def check_video_ids(dataset: Dataset) -> None:
    """Video ids are unique within each split, and no test video is also a training video."""
    benchmark = dataset.load()
    train, test = benchmark.train.video_ids, benchmark.test.video_ids
    assert len(set(train)) == len(train), "training video ids repeat"
    assert len(set(test)) == len(test), "test video ids repeat"
    shared = sorted(set(train) & set(test))
    assert not shared, f"test videos also in training: {shared[:5]}"


def check_primary_metric(dataset: Dataset) -> None:
    """The benchmark's primary metric comes out of `vadbench.report.metrics.evaluate` as a finite number."""
    benchmark = dataset.load()
    scores = np.random.default_rng(SEED).random(len(benchmark.test.features))
    metrics = evaluate(scores, benchmark.test)
    value = metrics.get(benchmark.primary_metric)
    assert isinstance(value, float) and np.isfinite(value), (
        f"primary metric {benchmark.primary_metric!r} is {value!r}; metrics are {sorted(metrics)}"
    )


def check_deterministic_load(dataset: Dataset) -> None:
    """Loading twice gives the same videos, labels and features (a seed or the files decide, nothing else)."""
    first, second = dataset.load(), dataset.load()
    for split in ("train", "test"):
        a, b = getattr(first, split), getattr(second, split)
        assert a.video_ids == b.video_ids, f"{split} video ids differ between two loads"
        assert np.array_equal(a.labels, b.labels), f"{split} labels differ between two loads"
        assert np.array_equal(a.features, b.features), f"{split} features differ between two loads"
    assert np.array_equal(first.test.frame_labels, second.test.frame_labels), "test ground truth differs"


DATASET_CHECKS = (
    check_benchmark_types, check_weak_training_labels, check_test_ground_truth, check_video_ids,
    check_primary_metric, check_deterministic_load,
)
