"""UCF-Crime adapter on fake roots holding the official lists and annotations (tiny features, real T)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from fakeroots import UCF, bundled, list_names, needs_shared, ucf_ids, ucf_root

from vadbench.api.errors import UsageError
from vadbench.data.check import check_dataset
from vadbench.datasets.ucf_crime.adapter import UCFCrime, UCFCrimeConfig

ANNOTATION = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"


def load(root, **options):
    return UCFCrime(UCFCrimeConfig(root=str(root), **options)).load()


@pytest.fixture(scope="module")
def rtfm_root(tmp_path_factory):
    return ucf_root(tmp_path_factory.mktemp("ucf-rtfm"))


@pytest.fixture(scope="module")
def rtfm_benchmark(rtfm_root):
    return load(rtfm_root, cache=False)


@pytest.fixture(scope="module")
def published_gt():
    """The per-video ground truth of Wu's extraction (PEL4VAD), concatenated in RTFM's test-list order."""
    names = list_names(UCF / "ucf-i3d-test.list")
    folder = UCF / "yujiangpu20_PEL4VAD" / "single_gt"
    return np.concatenate([np.load(folder / f"{n[: -len('_i3d.npy')]}__9_gt.npy") for n in names])


def features_only(tmp_path, root):
    """A root holding only `root`'s feature folders."""
    for folder in ("train", "test"):
        (tmp_path / folder).symlink_to(root / folder)
    return tmp_path


def test_rtfm_layout_with_published_lists(rtfm_benchmark):
    train, test = rtfm_benchmark.train, rtfm_benchmark.test
    assert train.features.shape == (1610, 10, 32, 8)
    assert train.labels[:810].all() and not train.labels[810:].any()
    assert len(test) == 290 and test.labels.sum() == 140
    assert list(test.video_ids) == ucf_ids()[1]
    assert test.frame_labels.sum() == 84128
    assert len(set(test.classes)) == 14 and test.classes[0] == "Abuse" and test.classes[-1] == "Normal"
    assert all((c == "Normal") == (y == 0) for c, y in zip(test.classes, test.labels, strict=True))


@needs_shared
def test_the_built_ground_truth_is_pel4vads_single_gt_and_the_lists_rtfms(rtfm_root, rtfm_benchmark, published_gt):
    assert np.array_equal(rtfm_benchmark.test.frame_labels, published_gt)
    for name in ("ucf-i3d.list", "ucf-i3d-test.list"):
        assert list_names(rtfm_root / name) == list_names(UCF / name)


def test_wu_layout_stacks_ten_crop_files(tmp_path, rtfm_benchmark):
    benchmark = load(ucf_root(tmp_path, per_crop=True), cache=False)
    assert benchmark.test.features.shape == (69355, 10, 8)
    assert benchmark.train.features.shape == (40, 10, 32, 8)
    assert np.array_equal(benchmark.test.frame_labels, rtfm_benchmark.test.frame_labels)
    assert benchmark.meta["layout"] == "wu (one file per crop)"


def test_features_alone_give_the_published_order_and_labels_from_the_bundled_files(
    tmp_path, rtfm_root, rtfm_benchmark
):
    """The bundled Anomaly_Train.txt and annotation reproduce RTFM's list order (abnormal first)."""
    benchmark = load(features_only(tmp_path, rtfm_root), cache=False)
    assert benchmark.train.video_ids == rtfm_benchmark.train.video_ids
    assert benchmark.test.video_ids == rtfm_benchmark.test.video_ids
    assert np.array_equal(benchmark.test.frame_labels, rtfm_benchmark.test.frame_labels)
    assert benchmark.meta["test_order"] == "the official split files"
    assert benchmark.meta["bundled"] == "Anomaly_Train.txt, Temporal_Anomaly_Annotation.txt"


def test_an_annotation_under_the_root_replaces_the_bundled_one(tmp_path, rtfm_root):
    root = features_only(tmp_path, rtfm_root)
    bundled_labels = load(root, cache=False).test.frame_labels
    text = bundled(UCFCrime, "Temporal_Anomaly_Annotation.txt").read_text()
    (root / ANNOTATION).write_text(text.replace("Abuse  165  240", "Abuse  165  250"))
    benchmark = load(root, cache=False)
    assert benchmark.test.frame_labels.sum() == bundled_labels.sum() + 10
    assert benchmark.meta["bundled"] == "Anomaly_Train.txt"


@needs_shared
def test_rtfms_mat_annotations_give_the_published_order(tmp_path, rtfm_root, rtfm_benchmark, published_gt):
    """RTFM's .mat annotations under the root replace the bundled text annotation."""
    shutil.copytree(UCF / "Matlab_formate", features_only(tmp_path, rtfm_root) / "Matlab_formate")
    benchmark = load(tmp_path, cache=False)
    assert benchmark.test.video_ids == rtfm_benchmark.test.video_ids
    assert np.array_equal(benchmark.test.frame_labels, published_gt)
    assert benchmark.meta["bundled"] == "Anomaly_Train.txt"


def test_gt_convention_inclusive_adds_each_events_end_frame(tmp_path):
    """Abuse028 is annotated 165 240: [165, 240) is 75 frames, RTFM's inclusive [165, 240] 76."""
    root = small_root(tmp_path, ["Abuse028_x264", "Normal_Videos_003_x264"])
    half_open = load(root, cache=False).test.frame_labels
    inclusive = load(root, cache=False, gt_convention="inclusive").test.frame_labels
    assert np.flatnonzero(half_open).tolist() == list(range(165, 240))
    assert np.flatnonzero(inclusive).tolist() == list(range(165, 241))


def test_cache_is_written_once_then_memory_mapped_and_keyed_on_mtimes(rtfm_root, rtfm_benchmark, tmp_path):
    cache = tmp_path / "cache"
    first = load(rtfm_root, cache_dir=str(cache))
    entries = set(cache.iterdir())
    assert sorted(p.name.split("-")[2] for p in entries) == ["test", "train"]
    second = load(rtfm_root, cache_dir=str(cache))
    assert isinstance(second.test.features, np.memmap) and not second.test.features.flags.writeable
    assert isinstance(second.train.features, np.memmap) and not second.train.features.flags.writeable
    assert np.array_equal(first.train.features, second.train.features)
    assert np.array_equal(first.test.features, rtfm_benchmark.test.features)
    assert second.test.classes == first.test.classes and second.meta["cache"] == str(cache)
    assert second.meta["fingerprint"] == rtfm_benchmark.fingerprint()  # combined from the entries' digests
    touched = rtfm_root / "test" / "Abuse028_x264_i3d.npy"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load(rtfm_root, cache_dir=str(cache))
    (new,) = set(cache.iterdir()) - entries
    assert "-test-" in new.name  # the training entry still serves


def test_a_prebuilt_ground_truth_is_used_when_it_fits(rtfm_root, rtfm_benchmark, tmp_path):
    prebuilt = rtfm_benchmark.test.frame_labels.astype(np.float64)
    prebuilt[:16] = 1  # marks it apart from the built one
    np.save(tmp_path / "gt-ucf.npy", prebuilt)
    frame_labels = load(rtfm_root, cache=False, gt=str(tmp_path / "gt-ucf.npy")).test.frame_labels
    assert np.array_equal(frame_labels, prebuilt)


def test_a_prebuilt_ground_truth_of_another_extraction_names_both_lengths(rtfm_root):
    """The known failure of the public code: 1,114,144 ground-truth frames for 69,355 snippets."""
    report = check_dataset(UCFCrime(UCFCrimeConfig(root=str(rtfm_root), gt="gt-ucf.npy")))
    assert report.problems and "gt=gt-ucf.npy: no such file" in report.problems[0]
    np.save(rtfm_root / "gt-ucf.npy", np.zeros(1114144))
    try:
        report = check_dataset(UCFCrime(UCFCrimeConfig(root=str(rtfm_root), gt="gt-ucf.npy")))
    finally:
        (rtfm_root / "gt-ucf.npy").unlink()
    (problem,) = report.problems
    expected = "1114144 frames, expected 16 x 69355 test snippets = 1109680"
    assert problem.startswith(f"{rtfm_root / 'gt-ucf.npy'}: {expected}")


def test_missing_root_says_what_the_root_holds():
    with pytest.raises(UsageError, match=r"dataset 'ucf-crime' needs --root DIR \(the folder with the I3D/C3D fea"):
        UCFCrime(UCFCrimeConfig()).load()


def small_root(tmp_path, videos):
    """A root with the real annotation lines of `videos` only, and a 1-video training list."""
    annotation = bundled(UCFCrime, "Temporal_Anomaly_Annotation.txt")
    lines = [line for line in annotation.read_text().splitlines() if line.split()[0][:-4] in videos]
    (tmp_path / ANNOTATION).write_text("\n".join(lines) + "\n")
    windows = "G:\\UCF_Train_ten_crop_i3d\\"
    train = [f"{windows}Abuse001_x264_i3d.npy", f"{windows}Normal_Videos001_x264_i3d.npy"]
    (tmp_path / "ucf-i3d.list").write_text("\r\n".join(train) + "\r\n")
    (tmp_path / "ucf-i3d-test.list").write_text("".join(f"/home/x/{v}_i3d.npy\n" for v in videos))
    for i, video in enumerate(["Abuse001_x264", "Normal_Videos001_x264", *videos]):
        np.save(tmp_path / f"{video}_i3d.npy", np.ones((100, 10, 8), np.float32) * i)
    return tmp_path


def test_problems_of_lists_and_annotations_are_all_reported(tmp_path):
    root = small_root(tmp_path, ["Abuse028_x264", "Arrest001_x264", "Normal_Videos_003_x264"])
    (root / "Arrest001_x264_i3d.npy").unlink()
    with open(root / "ucf-i3d-test.list", "a") as handle:
        handle.write("/home/x/Burglary005_x264_i3d.npy\n")
    np.save(root / "Burglary005_x264_i3d.npy", np.ones((100, 10, 8), np.float32))
    with open(root / ANNOTATION, "a") as handle:
        handle.write("Unknown001_x264.mp4  Abuse  1  5  -1  -1\n")
    report = check_dataset(UCFCrime(UCFCrimeConfig(root=str(root))))
    assert len(report.problems) == 3, report.problems
    missing, unannotated, unknown = report.problems
    assert "ucf-i3d-test.list: line 2: Arrest001_x264_i3d.npy not found under" in missing
    assert f"{ANNOTATION}: no annotation for test video Burglary005" in unannotated
    assert "names video Unknown001_x264, which is not among the test videos" in unknown


def test_an_event_past_the_features_end_is_an_error(tmp_path):
    root = small_root(tmp_path, ["Abuse028_x264", "Normal_Videos_003_x264"])
    np.save(root / "Abuse028_x264_i3d.npy", np.ones((5, 10, 8), np.float32))
    with pytest.raises(UsageError, match=r"Abuse028_x264: event at frames \[165, 240\) starts after the 80 "):
        load(root, cache=False)
