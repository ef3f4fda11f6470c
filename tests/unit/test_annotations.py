"""Annotation, split and list parsers on the official files (as vadbench ships them, and as published) and on
malformed text."""

from __future__ import annotations

import numpy as np
import pytest
from fakeroots import UCF, UCSD, XD, bundled, needs_shared

from vadbench.api.errors import UsageError
from vadbench.data.annotations import (
    NORMAL,
    parse_feature_list,
    parse_id_list,
    parse_ucf_annotation,
    parse_ucf_mat,
    parse_ucf_train_split,
    parse_ucsd_m,
    parse_xd_annotation,
)
from vadbench.data.groundtruth import check_prebuilt, from_mask, from_ranges, with_convention
from vadbench.datasets.shanghaitech.adapter import ShanghaiTech
from vadbench.datasets.ucf_crime.adapter import UCFCrime
from vadbench.datasets.ucsd_peds.adapter import UCSDPeds
from vadbench.datasets.xd_violence.adapter import XDViolence

UCF_TXT = bundled(UCFCrime, "Temporal_Anomaly_Annotation.txt")
XD_TXT = bundled(XDViolence, "annotations.txt")


def test_ucf_annotation_has_every_test_video_with_classes_and_double_events():
    table = parse_ucf_annotation(UCF_TXT.read_text(), "ucf.txt")
    assert len(table) == 290
    assert sum(note.category == NORMAL for note in table.values()) == 150
    assert sum(len(note.ranges) == 2 for note in table.values()) == 16
    assert len({note.category for note in table.values()} - {NORMAL}) == 13
    assert table["Abuse028_x264"].ranges == ((165, 240),)
    assert table["Vandalism017_x264"].ranges == ((270, 330), (780, 840))
    assert table["Normal_Videos_003_x264"].ranges == ()


@needs_shared
def test_ucf_mat_files_agree_with_the_text_annotation():
    table = parse_ucf_annotation(UCF_TXT.read_text(), "ucf.txt")
    mats = sorted((UCF / "Matlab_formate").glob("*.mat"))
    assert len(mats) == 290
    for path in mats:
        video, note = parse_ucf_mat(path.read_bytes(), str(path))
        assert video == path.stem
        assert note == table[video]


def test_xd_annotation_lists_the_500_violent_test_videos_with_or_without_mp4():
    table = parse_xd_annotation(XD_TXT.read_text(), "annotations.txt")
    assert len(table) == 500
    assert ".mp4" in XD_TXT.read_text() and not any(video.endswith(".mp4") for video in table)
    assert all("_label_A" not in video for video in table)


@needs_shared
def test_xd_annotation_is_ur_dmus_without_mp4():
    table = parse_xd_annotation(XD_TXT.read_text(), "annotations.txt")
    same = parse_xd_annotation(
        (XD / "henrryzh1_UR-DMU" / "XD_Annotation.txt").read_text(), "XD_Annotation.txt"
    )
    assert same == table


def test_ucsd_ground_truth_files_are_1_based_inclusive_ranges():
    ped2 = parse_ucsd_m(bundled(UCSDPeds, "UCSDped2.m").read_text(), "UCSDped2.m")
    assert len(ped2) == 12
    assert ped2[0] == ((60, 180),)
    ped1 = parse_ucsd_m(bundled(UCSDPeds, "UCSDped1.m").read_text(), "UCSDped1.m")
    assert len(ped1) == 36
    assert ped1[4] == ((4, 90), (139, 200))


@needs_shared
def test_ucsd_ped2_m_file_matches_the_mat_copy():
    from scipy.io import loadmat

    ped2 = parse_ucsd_m((UCSD / "priyanka011011_Crowd-Anomaly-Detection" / "UCSDped2.m").read_text(), "m")
    cells = loadmat(str(UCSD / "annguyen94_ped2" / "ped2.mat"))["gt"][0]
    assert [((int(c[0][0]) - 1, int(c[1][0])),) for c in cells] == ped2


def test_split_files_parse_with_their_published_sizes():
    assert len(parse_id_list(bundled(ShanghaiTech, "SH_Train.txt").read_text(), "SH_Train.txt")) == 238
    assert len(parse_id_list(bundled(ShanghaiTech, "SH_Test.txt").read_text(), "SH_Test.txt")) == 199
    assert len(parse_id_list(bundled(XDViolence, "train_videos.txt").read_text(), "train_videos.txt")) == 3954
    assert len(parse_id_list(bundled(XDViolence, "test_videos.txt").read_text(), "test_videos.txt")) == 800
    train = parse_ucf_train_split(bundled(UCFCrime, "Anomaly_Train.txt").read_text(), "a")
    assert len(train) == 1610 and train[0] == "Abuse001_x264"


@needs_shared
def test_published_lists_parse_in_the_order_of_the_split_files():
    train = parse_ucf_train_split(bundled(UCFCrime, "Anomaly_Train.txt").read_text(), "a")
    rtfm = parse_feature_list((UCF / "ucf-i3d.list").read_text(), "ucf-i3d.list")
    assert [v.video_id for v in rtfm] == [v for v in train if not v.startswith("Normal")] + [
        v for v in train if v.startswith("Normal")
    ]
    wu = parse_feature_list((XD / "Roc-Ng_XDVioDet" / "rgb_test.list").read_text(), "rgb_test.list")
    assert len(wu) == 800 and all(len(v.names) == 5 and v.per_crop for v in wu)


def test_feature_list_keeps_file_names_of_windows_and_unix_paths():
    videos = parse_feature_list("G:\\UCF\\A_x264_i3d.npy\r\n/home/u/B__0.npy\n/home/u/B__1.npy\n\n", "l")
    assert [(v.video_id, v.names, v.per_crop, v.line) for v in videos] == [
        ("A_x264", ("A_x264_i3d.npy",), False, 1),
        ("B", ("B__0.npy", "B__1.npy"), True, 2),
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "the list is empty"),
        ("/a/A_i3d.npy\n/a/B_i3d.npy\n/a/A_i3d.npy\n", "line 3: video 'A' already listed on line 1"),
        ("/a/B__0.npy\n/a/B__0.npy\n", "line 2: B__0.npy listed twice"),
        ("/a/A.mp4\n", "line 1: expected a .npy feature file"),
    ],
)
def test_malformed_feature_lists_are_refused_naming_the_file(text, needle):
    with pytest.raises(UsageError, match="my.list") as error:
        parse_feature_list(text, "my.list")
    assert needle in str(error.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("A.mp4  Abuse  10  20  -1\n", "line 1: expected start/end frame pairs"),
        ("A.mp4  Abuse  10  x  -1  -1\n", "expected a frame number, got 'x'"),
        ("A.mp4  Abuse  30  20  -1  -1\n", "bad frame range 30 20"),
        ("A.mp4  Abuse  -1  -1  -1  -1\n", "a Abuse video without any event"),
        ("N.mp4  Normal  1  2  -1  -1\n", "a Normal video with an event"),
        ("A.mp4  Abuse  1  2\nA.mp4  Abuse  1  2\n", "line 2: video 'A' appears twice"),
        ("\n\n", "no annotation lines"),
        ("A.mp4\n", "expected 'video.mp4 Class s1 e1 s2 e2'"),
    ],
)
def test_malformed_ucf_annotations_name_the_file_and_line(text, needle):
    with pytest.raises(UsageError, match="Temporal.txt") as error:
        parse_ucf_annotation(text, "Temporal.txt")
    assert needle in str(error.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("v 1 2 3\n", "expected start/end frame pairs"),
        ("v\n", "has no frame range"),
        ("v 1 2\nv.mp4 3 4\n", "twice"),
    ],
)
def test_malformed_xd_annotations_name_the_file(text, needle):
    with pytest.raises(UsageError, match="annotations.txt") as error:
        parse_xd_annotation(text, "annotations.txt")
    assert needle in str(error.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("x = 1;\n", "no 'TestVideoFile"),
        ("T{end+1}.gt_frame = [0:5];\n", "bad range"),
        ("T{end+1}.gt_frame = [a:5];\n", "expected a 1-based range"),
        ("T{end+1}.gt_frame = 5;\n", "expected 'gt_frame"),
    ],
)
def test_malformed_ucsd_files_name_the_file(text, needle):
    with pytest.raises(UsageError, match="UCSDped2.m") as error:
        parse_ucsd_m(text, "UCSDped2.m")
    assert needle in str(error.value)


def test_ucsd_single_frames_and_several_ranges():
    assert parse_ucsd_m("T{end+1}.gt_frame = [3, 5:6];\nT{end+1}.gt_frame = [];", "m") == [
        ((2, 3), (4, 6)),
        (),
    ]


def test_duplicate_ids_in_a_split_file_are_refused():
    with pytest.raises(UsageError, match="SH_Train.txt: line 3: video '01_001' appears twice"):
        parse_id_list("01_001\n01_002\n01_001\n", "SH_Train.txt")


def test_the_inclusive_convention_adds_each_end_frame():
    assert with_convention(((2, 5), (14, 40)), "half-open") == ((2, 5), (14, 40))
    assert with_convention(((2, 5), (14, 40)), "inclusive") == ((2, 6), (14, 41))
    assert from_ranges(with_convention(((2, 5),), "inclusive"), 16).tolist() == [0, 0, 1, 1, 1, 1] + [0] * 10


def test_ranges_are_half_open_and_clipped_to_the_pseudo_frames():
    labels = from_ranges([(2, 5), (14, 40)], 16)
    assert labels.tolist() == [0, 0, 1, 1, 1] + [0] * 9 + [1, 1]
    assert from_ranges([(20, 30)], 16).sum() == 0


def test_masks_are_padded_with_their_last_label_or_cut():
    assert from_mask(np.array([0, 1, 1]), 5).tolist() == [0, 1, 1, 1, 1]
    assert from_mask(np.array([1, 0, 0]), 5).tolist() == [1, 0, 0, 0, 0]
    assert from_mask(np.array([0, 1, 1, 0]), 2).tolist() == [0, 1]


def test_a_prebuilt_ground_truth_of_the_wrong_length_names_expected_and_found():
    with pytest.raises(
        UsageError, match=r"gt-ucf.npy: 1114144 frames, expected 16 x 69489 test snippets = 1111824"
    ):
        check_prebuilt(np.zeros(1114144), 69489, "gt-ucf.npy")
    with pytest.raises(UsageError, match="labels must be 0 or 1"):
        check_prebuilt(np.full(32, 0.5), 2, "gt.npy")
    assert check_prebuilt(np.ones(32), 2, "gt.npy").dtype == np.int8
