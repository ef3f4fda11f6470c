"""Fake data roots in each published layout: the real list, split and annotation files, tiny features.

Features are random with a tiny D, but every test video gets the T of the public extraction (taken from
the published per-video ground truths), so the ground truth built by the adapters can be compared with
the published one. The real files come from ../shared/data; tests using these helpers skip without it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"real annotation files not found at {SHARED}")

UCF = SHARED / "ucf_crime"
SH = SHARED / "shanghaitech"
XD = SHARED / "xd_violence"
UCSD = SHARED / "ucsd_peds"
DIM = 8


def write_video(
    folder: Path, video_id: str, snippets: int, crops: int, per_crop: bool, seed: int = 0
) -> None:
    """Random float32 features of one video in the RTFM (one file) or Wu (one file per crop) layout."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    features = rng.random((snippets, crops, DIM), dtype=np.float32)
    if per_crop:
        for crop in range(crops):
            np.save(folder / f"{video_id}__{crop}.npy", features[:, crop])
    else:
        np.save(folder / f"{video_id}_i3d.npy", features)


def list_names(path: Path) -> list[str]:
    """File names of a list file (the authors' absolute paths dropped)."""
    return [
        line.strip().replace("\\", "/").split("/")[-1]
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def ucf_test_lengths() -> dict[str, int]:
    """T of each UCF-Crime test video in Wu's I3D extraction (PEL4VAD's per-video ground truth is 16 T)."""
    folder = UCF / "yujiangpu20_PEL4VAD" / "single_gt"
    return {p.name[: -len("__9_gt.npy")]: len(np.load(p)) // 16 for p in folder.glob("*__9_gt.npy")}


def ucf_root(root: Path, per_crop: bool = False, with_lists: bool = True, mat: bool = False) -> Path:
    """UCF-Crime: all 290 test videos (T of Wu's extraction), 1,610 training videos (RTFM) or 40 (Wu)."""
    lengths = ucf_test_lengths()
    annotation = UCF / "WaqasSultani_AnomalyDetectionCVPR2018" / "Temporal_Anomaly_Annotation.txt"
    if mat:
        shutil.copytree(UCF / "Matlab_formate", root / "Matlab_formate")
    else:
        shutil.copy(annotation, root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt")
    shutil.copy(
        UCF / "WaqasSultani_AnomalyDetectionCVPR2018" / "Anomaly_Train.txt", root / "Anomaly_Train.txt"
    )
    train_ids = [
        name[: -len(".mp4")].split("/")[-1] for name in (root / "Anomaly_Train.txt").read_text().split()
    ]
    if per_crop:  # 10 files per video: keep 20 abnormal and 20 normal training videos, listed like UR-DMU's
        train_ids = train_ids[:20] + [v for v in train_ids if v.startswith("Normal")][:20]
        (root / "Anomaly_Train.txt").write_text("\n".join(f"X/{v}.mp4" for v in train_ids) + "\n")
    test_ids = list(lengths)
    if with_lists:
        if per_crop:
            lines = [f"dataset/X/{v}__{c}.npy" for v in train_ids for c in range(10)]
            (root / "UCF_Train.list").write_text("\n".join(lines) + "\n")
            shutil.copy(UCF / "henrryzh1_UR-DMU" / "UCF_Test.list", root / "UCF_Test.list")
            test_ids = [n[: -len("__0.npy")] for n in list_names(root / "UCF_Test.list")[::10]]
        else:
            shutil.copy(UCF / "ucf-i3d.list", root / "ucf-i3d.list")
            shutil.copy(UCF / "ucf-i3d-test.list", root / "ucf-i3d-test.list")
            test_ids = [n[: -len("_i3d.npy")] for n in list_names(root / "ucf-i3d-test.list")]
    for i, video in enumerate(train_ids):
        write_video(root / "train", video, 3 + i % 7, 10, per_crop, seed=i)
    for i, video in enumerate(test_ids):
        write_video(root / "test", video, lengths[video], 10, per_crop, seed=10_000 + i)
    return root


def sh_test_lengths() -> dict[str, int]:
    """T of each ShanghaiTech test video in RTFM's extraction (S3R's num_frames = 16 T)."""
    table = json.loads((SH / "louisYen_S3R" / "shanghaitech_ground_truth.testing.json").read_text())
    return {video: entry["num_frames"] // 16 for video, entry in table.items()}


def sh_root(root: Path, with_lists: bool = True) -> Path:
    """ShanghaiTech in RTFM's layout: 238 + 199 videos (test T of RTFM's features), masks, lists or splits."""
    lengths = sh_test_lengths()
    shutil.copytree(SH / "test_frame_mask", root / "test_frame_mask")
    names = ("shanghai-i3d-train-10crop.list", "shanghai-i3d-test-10crop.list")
    if with_lists:
        for name in names:
            shutil.copy(SH / name, root / name)
    else:
        for name in ("SH_Train.txt", "SH_Test.txt"):
            shutil.copy(SH / name, root / name)
    for split, name in zip(("train", "test"), names, strict=True):
        for i, file_name in enumerate(list_names(SH / name)):
            video = file_name[: -len("_i3d.npy")]
            write_video(root / split, video, lengths.get(video, 3 + i % 5), 10, False, seed=i)
    return root


def xd_test_lengths() -> dict[str, int]:
    """T of each XD-Violence test video in Wu's extraction (PEL4VAD's per-video ground truth is 16 T)."""
    folder = XD / "yujiangpu20_PEL4VAD" / "xd-gt"
    return {p.name[: -len("__0.npy")]: len(np.load(p)) // 16 for p in folder.glob("*__0.npy")}


def xd_root(root: Path, audio: bool = False, with_lists: bool = True, train_videos: int = 10) -> Path:
    """XD-Violence in Wu's 5-crop layout: all 800 test videos, `train_videos` violent + as many normal."""
    lengths = xd_test_lengths()
    shutil.copy(XD / "nwpu-zxr_VadCLIP" / "annotations.txt", root / "annotations.txt")
    train = list_names(XD / "Roc-Ng_XDVioDet" / "rgb.list")
    train = train[: 5 * train_videos] + [n for n in train if "_label_A" in n][: 5 * train_videos]
    test = list_names(XD / "Roc-Ng_XDVioDet" / "rgb_test.list")
    if with_lists:
        (root / "rgb.list").write_text("\n".join(f"/media/x/RGB/{n}" for n in train))
        shutil.copy(XD / "Roc-Ng_XDVioDet" / "rgb_test.list", root / "rgb_test.list")
    for split, names, folder in (("train", train, "RGB"), ("test", test, "RGBTest")):
        for i, name in enumerate(names[::5]):
            video = name[: -len("__0.npy")]
            snippets = lengths[video] if split == "test" else 3 + i % 5
            write_video(root / folder, video, snippets, 5, True, seed=i)
            if audio:  # VGGish one snippet longer for every third video: the documented mismatch
                vggish = np.random.default_rng(i).random((snippets + (i % 3 == 0), 128), dtype=np.float32)
                (root / f"vggish-{split}").mkdir(exist_ok=True)
                np.save(root / f"vggish-{split}" / f"{video}__vggish.npy", vggish)
    return root


def ucsd_root(root: Path, subset: str = "ped2") -> Path:
    """UCSD Ped2 (16 normal + 12 abnormal clips) or Ped1 (34 + 36), RTFM layout, the official .m file."""
    source = (
        UCSD
        / "priyanka011011_Crowd-Anomaly-Detection"
        / ("UCSDped2.m" if subset == "ped2" else "UCSDped1.m~")
    )
    shutil.copy(source, root / f"UCSD{subset}.m")
    abnormal = sum("gt_frame" in line for line in source.read_text().splitlines())
    normal = 16 if subset == "ped2" else 34
    for i in range(1, abnormal + 1):
        write_video(root / "Test", f"Test{i:03d}", 11 if subset == "ped2" else 12, 10, False, seed=i)
    for i in range(1, normal + 1):
        write_video(root / "Train", f"Train{i:03d}", 11 if subset == "ped2" else 12, 10, False, seed=100 + i)
    return root
