"""XD-Violence adapter: Wu's 5-crop layout, audio, the official annotations and the published ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from fakeroots import XD, list_names, needs_shared, xd_ids, xd_root

from vadbench.api.errors import UsageError
from vadbench.data.check import check_dataset
from vadbench.datasets.xd_violence.adapter import XDViolence, XDViolenceConfig, category


def load(root, **options):
    return XDViolence(XDViolenceConfig(root=str(root), cache=False, **options)).load()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return xd_root(tmp_path_factory.mktemp("xd"), audio=True)


@pytest.fixture(scope="module")
def rgb(root):
    return load(root)


def test_lists_give_800_test_videos_500_violent(rgb):
    test = rgb.test
    assert len(test) == 800 and test.labels.sum() == 500 and test.labels[:500].all()
    assert test.features.shape == (145649, 5, 8) and rgb.primary_metric == "ap"
    assert list(test.video_ids) == xd_ids("test") and test.frame_labels.sum() == 537805
    assert test.classes[0] == "Explosion" and test.classes[-1] == "Normal"
    assert len(rgb.train) == 20 and rgb.train.labels.sum() == 10


@needs_shared
def test_the_built_ground_truth_is_pel4vads_xd_gt_and_the_lists_wus(root, rgb):
    names = list_names(XD / "Roc-Ng_XDVioDet" / "rgb_test.list")[::5]
    folder = XD / "yujiangpu20_PEL4VAD" / "xd-gt"
    assert np.array_equal(rgb.test.frame_labels, np.concatenate([np.load(folder / n) for n in names]))
    assert list_names(root / "rgb_test.list") == list_names(XD / "Roc-Ng_XDVioDet" / "rgb_test.list")


def test_audio_is_appended_and_cut_to_the_shorter_stream(root, rgb):
    with_audio = load(root, modality="rgb+audio")
    assert with_audio.test.features.shape == (145649, 5, 8 + 128)
    assert np.array_equal(with_audio.test.features[..., :8], rgb.test.features)
    assert np.array_equal(with_audio.test.frame_labels, rgb.test.frame_labels)
    assert with_audio.meta["audio_trimmed_videos"] == 7 + 267  # every third video's VGGish is one longer


def test_features_alone_give_wus_split_and_labels_from_the_bundled_files(tmp_path):
    """Every video in one folder, no list, no annotation: the bundled split and annotation decide."""
    for folder in ("listed", "alone"):
        (tmp_path / folder).mkdir()
    listed = xd_root(tmp_path / "listed", train_videos=None, crops=1)
    for folder in ("RGB", "RGBTest"):
        for path in (listed / folder).iterdir():
            (tmp_path / "alone" / path.name).symlink_to(path)
    with_files, alone = load(listed), load(tmp_path / "alone")
    assert alone.train.video_ids == with_files.train.video_ids and len(alone.train) == 3954
    assert alone.test.video_ids == with_files.test.video_ids
    assert np.array_equal(alone.test.frame_labels, with_files.test.frame_labels)
    assert alone.meta["bundled"] == "annotations.txt, test_videos.txt, train_videos.txt"


def test_gt_convention_inclusive_adds_each_events_end_frame(tmp_path):
    train, test = ["v=tr__#1_label_B1-0-0", "tr__#1_label_A"], ["v=te__#1_label_B1-0-0", "te__#1_label_A"]
    (tmp_path / "annotations.txt").write_text(f"{test[0]} 3 5 20 24\n")
    for name, videos in (("rgb.list", train), ("rgb_test.list", test)):
        (tmp_path / name).write_text("".join(f"/m/{video}__0.npy\n" for video in videos))
    for video in train + test:
        np.save(tmp_path / f"{video}__0.npy", np.ones((2, 8), np.float32))
    half_open = load(tmp_path).test.frame_labels[:32]
    inclusive = load(tmp_path, gt_convention="inclusive").test.frame_labels[:32]
    assert np.flatnonzero(half_open).tolist() == [3, 4, 20, 21, 22, 23]
    assert np.flatnonzero(inclusive).tolist() == [3, 4, 5, 20, 21, 22, 23, 24]


def test_missing_audio_and_unknown_annotated_videos_are_all_reported(tmp_path):
    video, normal = "v=abc__#1_label_B1-0-0", "film__#1_label_A"
    (tmp_path / "annotations.txt").write_text(f"{video} 0 16\nghost__#1_label_B2-0-0 0 16\n")
    (tmp_path / "rgb.list").write_text(f"/m/{video}__0.npy\n/m/{normal}__0.npy\n")
    (tmp_path / "rgb_test.list").write_text(f"/m/{video}__0.npy\n/m/{normal}__0.npy\n")
    for name in (video, normal):
        np.save(tmp_path / f"{name}__0.npy", np.ones((3, 8), np.float32))
    report = check_dataset(XDViolence(XDViolenceConfig(root=str(tmp_path), modality="rgb+audio")))
    assert len(report.problems) == 5, report.problems
    problems = "\n".join(report.problems)
    assert problems.count(f"{video}__vggish.npy not found under") == 2
    assert problems.count(f"{normal}__vggish.npy not found under") == 2
    assert "names video ghost__#1_label_B2-0-0, which is not among the test videos" in problems


@pytest.mark.parametrize(
    ("video", "expected"),
    [
        ("Bad.Boys.1995__#01-11-55_01-12-40_label_G-B2-B6", "Explosion"),
        ("x__#1_label_B2-0-0", "Shooting"),
        ("A.Beautiful.Mind.2001__#00-25-20_00-29-20_label_A", "Normal"),
    ],
)
def test_class_comes_from_the_first_label_code(video, expected):
    assert category(video) == expected


def test_a_name_without_label_is_refused():
    with pytest.raises(UsageError, match="no '_label_<codes>' in its name"):
        category("some_video")
