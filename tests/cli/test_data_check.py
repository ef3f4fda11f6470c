"""`vadbench data check`: a summary and exit 0, or one line per problem naming the file, and exit 2."""

from __future__ import annotations

import pickle

import fakeroots
import numpy as np
import pytest

from vadbench.cli import main

GT_LINE = "TestVideoFile{end+1}.gt_frame = [61:120];\n"


def write(path, array):
    np.save(path, np.asarray(array))


def ucsd_root(tmp_path):
    """A small Ped2-like root: 8 abnormal clips (frames 61-120 abnormal) and 6 normal clips, T = 8."""
    (tmp_path / "UCSDped2.m").write_text("TestVideoFile = {};\n" + GT_LINE * 8)
    for name in [f"Test{i:03d}" for i in range(1, 9)] + [f"Train{i:03d}" for i in range(1, 7)]:
        write(tmp_path / f"{name}_i3d.npy", np.random.default_rng(len(name)).random((8, 10, 8), np.float32))
    return tmp_path


def sh_root(tmp_path):
    """A small ShanghaiTech-like root with RTFM lists: 2 + 2 training and 2 + 2 test videos."""
    (tmp_path / "test_frame_mask").mkdir()
    for video in ("01_0014", "01_0015", "01_0016", "01_0025"):
        write(
            tmp_path / "test_frame_mask" / f"{video}.npy", np.r_[np.zeros(60), np.ones(40)].astype(np.uint8)
        )
    train, test = ["01_0014", "01_0016", "01_001", "01_002"], ["01_0015", "01_0025", "01_003", "01_004"]
    (tmp_path / "shanghai-i3d-train-10crop.list").write_text(
        "".join(f"/home/yu/{v}_i3d.npy\n" for v in train)
    )
    (tmp_path / "shanghai-i3d-test-10crop.list").write_text("".join(f"/home/yu/{v}_i3d.npy\n" for v in test))
    for video in train + test:
        write(tmp_path / f"{video}_i3d.npy", np.ones((7, 10, 8), np.float32))
    return tmp_path


def check(capsys, dataset, root, *extra):
    code = main(["data", "check", dataset, "--root", str(root), *extra])
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def test_a_good_root_prints_the_summary_and_exits_0(capsys, tmp_path):
    code, out, err = check(capsys, "ucsd-ped2", ucsd_root(tmp_path), "--set", "split=2")
    assert code == 0 and not err
    assert "train: 10 videos (6 abnormal, 4 normal)" in out
    assert "test:  4 videos (2 abnormal, 2 normal), 32 snippets, 512 frames, 120 positive" in out
    assert "split: 2" in out
    assert not (tmp_path / ".vadbench-cache").exists()  # checking writes nothing


def append(path, text):
    path.write_text(path.read_text() + text)


def truncate(path):
    path.write_bytes(path.read_bytes()[:-7])


@pytest.mark.parametrize(
    ("case", "break_root", "file", "needle"),
    [
        ("missing", lambda r: (r / "Test003_i3d.npy").unlink(), "Test003_i3d.npy", "not found under"),
        ("truncated", lambda r: truncate(r / "Test003_i3d.npy"), "Test003_i3d.npy", "truncated"),
        (
            "object",
            lambda r: np.save(r / "Test003_i3d.npy", np.array([1, "a"], object), allow_pickle=True),
            "Test003_i3d.npy",
            "pickled object array",
        ),
        (
            "pickle",
            lambda r: (r / "Test003_i3d.npy").write_bytes(pickle.dumps([1.0])),
            "Test003_i3d.npy",
            "not a .npy array file",
        ),
        (
            "ndim",
            lambda r: write(r / "Test003_i3d.npy", np.ones((8, 8), np.float32)),
            "Test003_i3d.npy",
            "has 2 dimensions, expected 3",
        ),
        (
            "int",
            lambda r: write(r / "Test003_i3d.npy", np.ones((8, 10, 8), np.int32)),
            "Test003_i3d.npy",
            "dtype int32, expected float",
        ),
        (
            "crops",
            lambda r: write(r / "Test003_i3d.npy", np.ones((8, 5, 8), np.float32)),
            "Test003_i3d.npy",
            "C=5 crops, D=8, but Test001_i3d.npy has C=10, D=8",
        ),
        (
            "dim",
            lambda r: write(r / "Train004_i3d.npy", np.ones((8, 10, 9), np.float32)),
            "Train004_i3d.npy",
            "C=10 crops, D=9, but",
        ),
        (
            "nan",
            lambda r: write(r / "Test003_i3d.npy", np.full((8, 10, 8), np.nan, np.float32)),
            "Test003_i3d.npy",
            "640 NaN or Inf values",
        ),
        (
            "inf",
            lambda r: write(r / "Test003_i3d.npy", np.r_[np.ones((7, 10, 8)), np.full((1, 10, 8), np.inf)]),
            "Test003_i3d.npy",
            "80 NaN or Inf values (first at snippet 7)",
        ),
        (
            "empty",
            lambda r: write(r / "Test003_i3d.npy", np.ones((0, 10, 8), np.float32)),
            "Test003_i3d.npy",
            "T = 0 snippets",
        ),
        (
            "ambiguous",
            lambda r: (r / "copy").mkdir() or write(r / "copy" / "Test003_i3d.npy", np.ones(1)),
            "Test003_i3d.npy",
            "is found 2 times under",
        ),
        (
            "gt-length",
            lambda r: write(r / "gt-ped2.npy", np.zeros(100)),
            "gt-ped2.npy",
            "100 frames, expected 16 x 16 test snippets = 256",
        ),
    ],
)
def test_each_malformed_feature_file_is_one_line_naming_it(capsys, tmp_path, case, break_root, file, needle):
    root = ucsd_root(tmp_path)
    break_root(root)
    extra = ["--set", "gt=gt-ped2.npy"] if case == "gt-length" else []
    # every clip is read, whether the seeded split makes it a training or a test clip
    code, out, err = check(
        capsys, "ucsd-ped2", root, "--set", "train_abnormal=7", "--set", "train_normal=5", *extra
    )
    assert code == 2 and not out
    assert len(err) == 1, err
    assert err[0].startswith("vadbench: error: ") and file in err[0] and needle in err[0], err[0]


@pytest.mark.parametrize(
    ("case", "break_root", "file", "needle"),
    [
        (
            "entry-not-found",
            lambda r: (r / "01_003_i3d.npy").unlink(),
            "shanghai-i3d-test-10crop.list",
            "line 3: 01_003_i3d.npy not found under",
        ),
        (
            "empty-list",
            lambda r: (r / "shanghai-i3d-test-10crop.list").write_text("\n"),
            "shanghai-i3d-test-10crop.list",
            "the list is empty",
        ),
        (
            "duplicate",
            lambda r: append(r / "shanghai-i3d-test-10crop.list", "/x/01_0015_i3d.npy\n"),
            "shanghai-i3d-test-10crop.list",
            "line 5: video '01_0015' already listed on line 1",
        ),
        (
            "unknown-video",
            lambda r: write(r / "test_frame_mask" / "09_0099.npy", np.ones(5, np.uint8)),
            "09_0099.npy",
            "names video 09_0099, which is neither a training nor a test video",
        ),
        (
            "mask-length",
            lambda r: write(r / "test_frame_mask" / "01_0025.npy", np.ones(300, np.uint8)),
            "01_0025.npy",
            "300 frames, but the features have 7 snippets (112 frames)",
        ),
    ],
)
def test_each_malformed_list_or_annotation_is_one_line_naming_it(
    capsys, tmp_path, case, break_root, file, needle
):
    root = sh_root(tmp_path)
    break_root(root)
    code, _, err = check(capsys, "shanghaitech", root)
    assert code == 2
    assert len(err) == 1, err
    assert file in err[0] and needle in err[0], err[0]


def test_events_after_the_end_of_the_features_are_reported_per_clip(capsys, tmp_path):
    root = ucsd_root(tmp_path)
    for i in range(1, 9):
        write(root / f"Test{i:03d}_i3d.npy", np.ones((3, 10, 8), np.float32))
    code, _, err = check(capsys, "ucsd-ped2", root)
    assert code == 2 and len(err) == 2  # the two abnormal test clips; training clips carry no frame labels
    assert all(
        "UCSDped2.m: Test" in line and "event at frames [60, 120) starts after the 48" in line for line in err
    )


def test_every_problem_is_listed_up_to_20_then_counted(capsys, tmp_path):
    root = sh_root(tmp_path)
    missing = "".join(f"/home/yu/missing_{i:02d}_i3d.npy\n" for i in range(23))
    kept = "".join(f"/home/yu/{video}_i3d.npy\n" for video in ("01_0014", "01_0016", "01_001"))
    (root / "shanghai-i3d-train-10crop.list").write_text(missing + kept)
    write(root / "01_0015_i3d.npy", np.full((7, 10, 8), np.nan, np.float32))
    code, _, err = check(capsys, "shanghaitech", root)
    assert code == 2
    assert len(err) == 21 and err[-1] == "vadbench: error: ... and 4 more problems"
    assert "line 1: missing_00_i3d.npy not found under" in err[0]


def test_a_missing_root_and_a_bad_option_are_one_line(capsys, tmp_path):
    code = main(["data", "check", "ucf-crime"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "dataset 'ucf-crime' needs --root DIR" in err[0]
    code, _, err = check(capsys, "xd-violence", tmp_path, "--set", "modality=audio")
    assert code == 2 and len(err) == 1 and "option 'modality' must be one of rgb, rgb+audio" in err[0]


def test_run_on_a_fake_root_succeeds_and_a_broken_root_is_one_line(capsys, tmp_path):
    (tmp_path / "sh").mkdir()
    root = sh_root(tmp_path / "sh")
    args = [
        "run",
        "--dataset",
        "shanghaitech",
        "--root",
        str(root),
        "--method",
        "sultani-mil",
        "--seeds",
        "0",
        "--steps",
        "2",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "runs"),
        "--quiet",
    ]
    assert main(args) == 0
    assert "shanghaitech" in capsys.readouterr().out
    (root / "01_003_i3d.npy").unlink()
    write(root / "01_004_i3d.npy", np.ones((7, 10, 3), np.float32))
    assert main([*args, "--seeds", "1"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "01_003_i3d.npy not found under" in line and "(and 1 more problem; `vadbench data check" in line


ALONE = {"with_lists": False, "with_files": False}


@pytest.mark.parametrize(
    ("dataset", "make_root", "alone", "test_line"),
    [
        (
            "ucf-crime",
            fakeroots.ucf_root,
            ALONE,
            "test:  290 videos (140 abnormal, 150 normal), 69355 snippets, 1109680 frames, 84128 positive",
        ),
        (
            "shanghaitech",
            fakeroots.sh_root,
            ALONE,
            "test:  199 videos (44 abnormal, 155 normal), 8932 snippets, 142912 frames, 8028 positive",
        ),
        (
            "xd-violence",
            lambda root, **options: fakeroots.xd_root(root, train_videos=None, crops=1, **options),
            ALONE,
            "test:  800 videos (500 abnormal, 300 normal), 145649 snippets, 2330384 frames, 537805 positive",
        ),
        (
            "ucsd-ped2",
            fakeroots.ucsd_root,
            {"with_files": False},
            "test:  18 videos (6 abnormal, 12 normal), 198 snippets, 3168 frames",
        ),
    ],
    ids=["ucf-crime", "shanghaitech", "xd-violence", "ucsd-ped2"],
)
def test_a_root_of_features_alone_reports_what_the_official_files_beside_them_report(
    capsys, tmp_path, dataset, make_root, alone, test_line
):
    """The official files ship with vadbench: --root needs only the features."""
    for folder in ("with-files", "alone"):
        (tmp_path / folder).mkdir()
    make_root(tmp_path / "with-files")
    make_root(tmp_path / "alone", **alone)
    code, with_files, err = check(capsys, dataset, tmp_path / "with-files")
    assert code == 0 and not err and "bundled:" not in with_files
    code, features_alone, err = check(capsys, dataset, tmp_path / "alone")
    assert code == 0 and not err, err
    assert features_alone.splitlines()[:3] == with_files.splitlines()[:3]
    assert features_alone.splitlines()[2].startswith(test_line) and "bundled: " in features_alone


def test_gt_convention_is_an_option_of_range_annotated_datasets(capsys, tmp_path):
    fakeroots.ucf_root(tmp_path, with_lists=False, with_files=False)
    code, out, err = check(capsys, "ucf-crime", tmp_path, "--set", "gt_convention=inclusive")
    assert code == 0 and not err, err
    assert "1109680 frames, 84277 positive" in out  # one more frame per event, except events cut at the end
    code, _, err = check(capsys, "ucf-crime", tmp_path, "--set", "gt_convention=closed")
    assert code == 2 and "option 'gt_convention' must be one of half-open, inclusive" in err[0]


def test_a_video_in_both_layouts_names_the_layout_option_and_the_option_chooses(capsys, tmp_path):
    root = ucsd_root(tmp_path)
    for crop in range(10):  # Test001 also in Wu's one-file-per-crop layout
        write(root / f"Test001__{crop}.npy", np.ones((8, 8), np.float32))
    code, _, err = check(capsys, "ucsd-ped2", root, "--set", "split=2")
    assert code == 2 and len(err) == 1
    assert "Test001 has features in both layouts" in err[0] and "--set layout=rtfm" in err[0]
    code, out, err = check(capsys, "ucsd-ped2", root, "--set", "split=2", "--set", "layout=rtfm")
    assert code == 0 and not err and "train: 10 videos" in out
