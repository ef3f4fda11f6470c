"""ShanghaiTech adapter: the ground truth built from the masks and RTFM's T equals the published gt-sh.npy."""

from __future__ import annotations

import numpy as np
import pytest
from fakeroots import SH, bundled, needs_shared, public_lengths, sh_ids, sh_masks, sh_root

from vadbench.api.reduction import Reduction
from vadbench.data.check import check_dataset
from vadbench.data.groundtruth import from_mask
from vadbench.data.pooling import pool_segments, pool_segments_sultani
from vadbench.datasets.shanghaitech.adapter import ShanghaiTech, ShanghaiTechConfig


def load(root, **options):
    return ShanghaiTech(ShanghaiTechConfig(root=str(root), cache=False, **options)).load()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return sh_root(tmp_path_factory.mktemp("sh"))


@needs_shared
def test_ground_truth_builder_reproduces_gt_sh_from_masks_and_t():
    lengths = public_lengths("shanghaitech")
    masks = sh_masks()
    parts = []
    for video in sh_ids("test"):
        frames = 16 * lengths[video]
        parts.append(from_mask(masks[video], frames) if video in masks else np.zeros(frames, np.int8))
    assert np.array_equal(np.concatenate(parts), np.load(SH / "gt-sh.npy"))


def test_published_lists_give_the_weak_split(root):
    benchmark = load(root)
    train, test = benchmark.train, benchmark.test
    assert len(train) == 238 and train.labels.sum() == 63 and train.labels[:63].all()
    assert len(test) == 199 and test.labels.sum() == 44 and test.labels[:44].all()
    assert train.features.shape == (238, 10, 32, 8) and test.features.shape == (8932, 10, 8)
    assert test.frame_labels.sum() == 8028
    assert set(test.classes) == {"Anomaly", "Normal"}


@needs_shared
def test_the_built_ground_truth_is_gt_sh(root):
    assert np.array_equal(load(root).test.frame_labels, np.load(SH / "gt-sh.npy"))


def test_split_files_without_lists_give_the_same_order(tmp_path, root):
    for folder in ("train", "test", "test_frame_mask"):
        (tmp_path / folder).symlink_to(root / folder)
    for name in ("SH_Train.txt", "SH_Test.txt", "relabel.list"):
        (tmp_path / name).write_bytes(bundled(ShanghaiTech, name).read_bytes())
    benchmark = load(tmp_path)
    listed = load(root)
    assert benchmark.train.video_ids == listed.train.video_ids
    assert benchmark.test.video_ids == listed.test.video_ids
    assert benchmark.meta["train_order"] == "the official split files"
    assert "bundled" not in benchmark.meta


def test_features_alone_give_the_same_videos_and_labels_from_the_bundled_files(tmp_path, root):
    for folder in ("train", "test"):
        (tmp_path / folder).symlink_to(root / folder)
    benchmark, listed = load(tmp_path), load(root)
    assert benchmark.train.video_ids == listed.train.video_ids
    assert np.array_equal(benchmark.train.labels, listed.train.labels)
    assert benchmark.test.video_ids == listed.test.video_ids
    assert np.array_equal(benchmark.test.frame_labels, listed.test.frame_labels)
    assert benchmark.meta["bundled"] == "SH_Test.txt, SH_Train.txt, relabel.list, test_frame_mask.json"


def test_features_of_another_length_than_the_mask_are_refused(tmp_path):
    (tmp_path / "test_frame_mask").mkdir()
    np.save(tmp_path / "test_frame_mask" / "01_0015.npy", np.r_[np.zeros(400), np.ones(33)].astype(np.uint8))
    np.save(tmp_path / "test_frame_mask" / "01_0014.npy", np.ones(100, np.uint8))
    (tmp_path / "shanghai-i3d-train-10crop.list").write_text("/h/01_0014_i3d.npy\n/h/01_001_i3d.npy\n")
    (tmp_path / "shanghai-i3d-test-10crop.list").write_text("/h/01_0015_i3d.npy\n/h/01_002_i3d.npy\n")
    for video, snippets in (("01_0014", 6), ("01_001", 5), ("01_0015", 26), ("01_002", 4)):
        np.save(tmp_path / f"{video}_i3d.npy", np.ones((snippets, 10, 8), np.float32))
    report = check_dataset(ShanghaiTech(ShanghaiTechConfig(root=str(tmp_path))))
    assert len(report.problems) == 1
    assert "01_0015.npy: 433 frames, but the features have 26 snippets (416 frames)" in report.problems[0]
    np.save(tmp_path / "01_0015_i3d.npy", np.ones((28, 10, 8), np.float32))
    assert load(tmp_path).test.frame_labels[:448].sum() == 33 + 15  # padded with its last label


def test_masks_under_the_root_replace_all_bundled_masks(tmp_path, root):
    """One set of masks says which videos are abnormal: a root with one mask has one abnormal video."""
    for folder in ("train", "test"):
        (tmp_path / folder).symlink_to(root / folder)
    (tmp_path / "test_frame_mask").mkdir()
    np.save(tmp_path / "test_frame_mask" / "01_0015.npy", sh_masks()["01_0015"])
    benchmark = load(tmp_path)
    assert benchmark.train.labels.sum() == 0 and benchmark.test.labels.sum() == 1
    assert benchmark.test.video_ids[0] == "01_0015"
    assert benchmark.meta["bundled"] == "SH_Test.txt, SH_Train.txt"


def test_each_reduction_pools_the_training_videos_and_has_its_own_training_entry(tmp_path, root):
    cache = tmp_path / "cache"
    rtfm = ShanghaiTech(ShanghaiTechConfig(root=str(root), cache_dir=str(cache))).load()
    sultani = ShanghaiTech(ShanghaiTechConfig(root=str(root), cache_dir=str(cache))).load(Reduction("c3d"))
    entries = sorted(p.name.rsplit("-", 1)[0] for p in cache.iterdir() if not p.name.startswith("."))
    assert entries == ["shanghaitech-test", "shanghaitech-train-c3d-32", "shanghaitech-train-mean-32"]  # one test copy
    np.testing.assert_array_equal(rtfm.test.features, sultani.test.features)
    video = sultani.train.video_ids[0]
    raw = np.load(root / "train" / f"{video}_i3d.npy")
    np.testing.assert_array_equal(rtfm.train.features[0], pool_segments(raw))
    np.testing.assert_array_equal(sultani.train.features[0], pool_segments_sultani(raw))


def test_abnormal_subset_trains_on_fewer_abnormal_videos_from_one_cache(tmp_path, root):
    cache = tmp_path / "cache"
    full = ShanghaiTech(ShanghaiTechConfig(root=str(root), cache_dir=str(cache))).load()
    subset = ShanghaiTech(ShanghaiTechConfig(root=str(root), cache_dir=str(cache), abnormal_subset=25)).load()
    assert subset.train.labels.sum() == 25 and (subset.train.labels == 0).sum() == 175
    assert np.array_equal(subset.test.frame_labels, full.test.frame_labels)
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2  # one test, one training entry


def test_two_action_videos_keep_both_actions_through_the_cache(tmp_path, root):
    """A video's class is its first action in relabel.list, its class set every action it lists."""
    relabel = bundled(ShanghaiTech, "relabel.list").read_text()
    actions = {video: listed.split(",") for video, listed in (line.split() for line in relabel.splitlines() if line)}
    for _ in range(2):  # built into the cache, then read from it
        benchmark = ShanghaiTech(ShanghaiTechConfig(root=str(root), cache_dir=str(tmp_path / "cache"))).load()
        train, names = benchmark.train, benchmark.class_names
        assert train.classes is not None and train.class_sets is not None
        found = [[names[c] for c in row if c >= 0] for row in train.class_sets]
        assert found == [actions[v] if y else ["Normal"] for v, y in zip(train.video_ids, train.labels, strict=True)]
        assert [names[c] for c in train.classes] == [classes[0] for classes in found]
    assert sum(len(classes) == 2 for classes in found) == 7
