"""Synthetic presets shaped like the real benchmarks: split sizes, abnormal fractions, crops and T."""

from __future__ import annotations

import numpy as np
import pytest

from vadbench.plugins.manager import load_plugins

SHAPES = {  # train abnormal / normal, test abnormal / normal, crops
    "synthetic-ucf-crime": (810, 800, 140, 150, 10),
    "synthetic-shanghaitech": (63, 175, 44, 155, 10),
    "synthetic-xd-violence": (1905, 2049, 500, 300, 5),
    "synthetic-ucsd-ped2": (6, 4, 6, 12, 10),
}


@pytest.fixture(scope="module")
def datasets():
    return load_plugins().datasets


@pytest.mark.parametrize(("name", "shape"), SHAPES.items())
def test_presets_have_the_published_split_sizes(datasets, name, shape):
    c = datasets.config(name)
    assert (c.train_abnormal, c.train_normal, c.test_abnormal, c.test_normal, c.crops) == shape
    assert c.feature_dim == 32 and datasets.config(name, {"feature_dim": "2048"}).feature_dim == 2048


def test_shanghaitech_preset_has_the_real_test_length_distribution(datasets):
    benchmark = datasets.create("synthetic-shanghaitech", {"feature_dim": "8"}).load()
    assert benchmark.train.features.shape == (238, 10, 32, 8)
    assert len(benchmark.test) == 199 and benchmark.test.labels.sum() == 44
    assert 35 < np.mean(benchmark.test.lengths) < 56  # real mean 45 snippets


def test_the_preset_without_hard_negatives_differs_from_the_default_only_there(datasets):
    plain = datasets.create("synthetic").load()
    clean = datasets.create("synthetic-no-hard-negatives").load()
    assert datasets.config("synthetic-no-hard-negatives").hard_negative_rate == 0.0
    assert plain.test.video_ids == clean.test.video_ids and np.array_equal(plain.test.frame_labels,
                                                                           clean.test.frame_labels)
    # Spikes are the rare snippets of normal videos far above their typical norm: only the default has them.
    def spikes(benchmark):
        test = benchmark.test
        norms = np.linalg.norm(test.features[:, 0], axis=-1)
        normal = np.concatenate([norms[test.offsets[v] : test.offsets[v + 1]]
                                 for v in np.flatnonzero(test.labels == 0)])
        return int((normal > 1.5 * np.median(normal)).sum())

    assert spikes(clean) == 0 < spikes(plain)
