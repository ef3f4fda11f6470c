"""UCSD Ped1/Ped2 adapters: the seeded weak splits and the frame ground truth from UCSDped*.m."""

from __future__ import annotations

import numpy as np
import pytest
from fakeroots import ucsd_root

from vadbench.api.errors import UsageError
from vadbench.datasets.ucsd_peds.adapter import UCSDConfig, UCSDPed1, UCSDPed2
from vadbench.plugins.manager import load_plugins


@pytest.fixture(scope="module")
def ped2(tmp_path_factory):
    return ucsd_root(tmp_path_factory.mktemp("ped2"))


def load(root, cls=UCSDPed2, **options):
    return cls(UCSDConfig(root=str(root), cache=False, **options)).load()


def test_ped2_weak_split_is_6_abnormal_and_4_normal_clips_from_the_seed(ped2):
    benchmark = load(ped2, split=3)
    train, test = benchmark.train, benchmark.test
    assert len(train) == 10 and train.labels.sum() == 6
    assert len(test) == 18 and test.labels.sum() == 6
    assert not set(train.video_ids) & set(test.video_ids)
    assert benchmark.meta["split"] == 3 and benchmark.meta["train_clips"] == ",".join(train.video_ids)
    assert load(ped2, split=3).train.video_ids == train.video_ids
    assert len({load(ped2, split=s).train.video_ids for s in range(10)}) == 10


def test_ped2_ground_truth_is_the_1_based_inclusive_ranges(ped2):
    test = load(ped2, split=0).test
    labels = {
        video: test.frame_labels[16 * a : 16 * b]
        for video, a, b in zip(test.video_ids, test.offsets[:-1], test.offsets[1:], strict=True)
    }
    assert "Test002" in labels  # [95:180] -> frames 94..179, cut to 16 x 11 = 176 pseudo-frames
    assert np.flatnonzero(labels["Test002"]).tolist() == list(range(94, 176))
    assert not any(labels[v].any() for v in labels if v.startswith("Train"))


def test_ped1_has_36_abnormal_clips(tmp_path):
    benchmark = load(ucsd_root(tmp_path, "ped1"), UCSDPed1)
    assert len(benchmark.test) == 60 and benchmark.test.labels.sum() == 30
    assert benchmark.name == "ucsd-ped1"


def test_both_are_registered_and_the_split_is_an_option(ped2):
    datasets = load_plugins().datasets
    assert {"ucsd-ped1", "ucsd-ped2"} <= set(datasets.names())
    assert datasets.config("ucsd-ped2", {"root": str(ped2), "split": "7"}).split == 7


def test_a_split_that_leaves_no_test_clip_is_refused(ped2):
    with pytest.raises(UsageError, match="12 abnormal clips .* but train_abnormal=12 must leave at least"):
        load(ped2, train_abnormal=12)


def test_the_bundled_m_file_serves_a_root_of_features_and_a_copy_under_the_root_replaces_it(tmp_path, ped2):
    root = ucsd_root(tmp_path, with_files=False)
    alone = load(root, split=0)
    assert alone.meta["bundled"] == "UCSDped2.m" and "bundled" not in load(ped2, split=0).meta
    assert np.array_equal(alone.test.frame_labels, load(ped2, split=0).test.frame_labels)
    (root / "UCSDped2.m").write_text("TestVideoFile{end+1}.gt_frame = [1:16];\n" * 12)
    own = load(root, split=0)
    assert own.test.frame_labels.sum() == 16 * own.test.labels.sum() and "bundled" not in own.meta
