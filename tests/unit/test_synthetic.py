import dataclasses

import numpy as np
import pytest
from conftest import TINY_SYNTHETIC

from vadbench.api.reduction import Reduction
from vadbench.api.types import SNIPPET_FRAMES, TRAIN_SEGMENTS
from vadbench.datasets.synthetic import Synthetic, SyntheticConfig


def load(**options):
    return Synthetic(SyntheticConfig(**{**TINY_SYNTHETIC, **options})).load()


def test_same_seed_gives_identical_data_and_another_seed_differs():
    a, b, c = load(seed=3), load(seed=3), load(seed=4)
    np.testing.assert_array_equal(a.train.features, b.train.features)
    np.testing.assert_array_equal(a.test.frame_labels, b.test.frame_labels)
    assert not np.array_equal(a.test.features[:10], c.test.features[:10])


def test_shapes_counts_and_weak_labels():
    cfg = SyntheticConfig(**TINY_SYNTHETIC)
    bench = load()
    assert bench.train.features.shape == (16, cfg.crops, TRAIN_SEGMENTS, cfg.feature_dim)
    assert not hasattr(bench.train, "frame_labels")  # weak supervision: no frame labels in training
    assert list(bench.train.labels) == [1] * 8 + [0] * 8  # abnormal first, as the public lists
    lengths = bench.test.lengths
    assert len(lengths) == 12 and lengths.min() >= cfg.min_length and lengths.max() <= cfg.max_length
    assert len(bench.test.frame_labels) == SNIPPET_FRAMES * lengths.sum()
    assert bench.test.features.dtype == np.float32 and np.all(bench.test.features >= 0)


def test_each_abnormal_test_video_has_one_event_of_mu_snippets_and_normals_none():
    bench = load(mu=5)
    for i in range(len(bench.test)):
        start, end = bench.test.offsets[i], bench.test.offsets[i + 1]
        snippets = bench.test.frame_labels[SNIPPET_FRAMES * start : SNIPPET_FRAMES * end : SNIPPET_FRAMES]
        if bench.test.labels[i]:
            assert snippets.sum() == 5
            first = int(np.argmax(snippets))
            assert snippets[first : first + 5].all()  # contiguous
            assert bench.test.classes[i].startswith("anomaly-")
        else:
            assert snippets.sum() == 0 and bench.test.classes[i] == "Normal"


def test_anomalies_raise_feature_magnitude_and_hard_negatives_spike_in_normal_videos():
    bench = load(hard_negative_rate=0.2, hard_negative_gain=3.0, anomaly_shift=1.0, test_normal=20)
    norms = np.linalg.norm(bench.test.features.mean(axis=1), axis=1)
    labels = bench.test.frame_labels[::SNIPPET_FRAMES].astype(bool)
    normal_video_snippets = np.repeat(bench.test.labels, bench.test.lengths) == 0
    assert norms[labels].mean() > norms[~labels].mean()
    # Hard negatives: some snippets of normal videos are far above the normal median.
    assert (norms[normal_video_snippets] > 2 * np.median(norms)).any()


@pytest.mark.parametrize("bad", [{"mu": 0}, {"mu": 99}, {"min_length": 0}, {"train_abnormal": 0},
                                 {"hard_negative_rate": 1.5}, {"temporal_correlation": 1.0}])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        dataclasses.replace(SyntheticConfig(**TINY_SYNTHETIC), **bad)


def test_abnormal_subset_keeps_the_test_set_and_nests():
    full, small, smaller = load(), load(abnormal_subset=5), load(abnormal_subset=3)
    np.testing.assert_array_equal(full.test.features, small.test.features)
    assert (small.train.labels == 1).sum() == 5 and (small.train.labels == 0).sum() == 8
    kept = {v for v, y in zip(smaller.train.video_ids, smaller.train.labels, strict=True) if y}
    assert kept < set(small.train.video_ids)  # nested: 3 of the 5
    index = [full.train.video_ids.index(v) for v in small.train.video_ids]
    np.testing.assert_array_equal(full.train.features[index], small.train.features)


def test_sultani_pooling_changes_only_the_training_segments():
    rtfm = load()
    sultani = Synthetic(SyntheticConfig(**TINY_SYNTHETIC)).load(Reduction("c3d"))
    np.testing.assert_array_equal(rtfm.test.features, sultani.test.features)
    assert rtfm.train.video_ids == sultani.train.video_ids
    assert not np.allclose(rtfm.train.features, sultani.train.features)
    np.testing.assert_allclose(np.linalg.norm(sultani.train.features, axis=-1), 1.0, rtol=1e-5)
