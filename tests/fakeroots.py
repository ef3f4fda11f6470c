"""Fake data roots in each published layout: the official files vadbench ships, tiny random features.

Features are random with a tiny D, but every test video gets the T of a public extraction
(``data/public_test_lengths.json``, taken from the published per-video ground truths), so that the
ground truth the adapters build has the published numbers of frames and positives. List files are
written in the published formats (the authors' absolute paths and line ends) from the bundled video ids.
`with_files=False` leaves only the features: the adapters then read their bundled files. Tests that
compare with the published files themselves (../shared/data) skip without them (`needs_shared`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vadbench.data.annotations import NORMAL, parse_id_list, parse_ucf_annotation, parse_ucf_train_split, parse_ucsd_m
from vadbench.data.feature_dataset import FeatureDataset
from vadbench.data.official import unpack_masks
from vadbench.data.video_lists import abnormal_first
from vadbench.datasets.shanghaitech.adapter import ShanghaiTech
from vadbench.datasets.ucf_crime.adapter import UCFCrime
from vadbench.datasets.ucsd_peds.adapter import UCSDPeds
from vadbench.datasets.xd_violence.adapter import XDViolence

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"published files not found at {SHARED}")

UCF = SHARED / "ucf_crime"
SH = SHARED / "shanghaitech"
XD = SHARED / "xd_violence"
UCSD = SHARED / "ucsd_peds"
DIM = 8
UCF_ANNOTATION = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
LENGTHS = json.loads((Path(__file__).parent / "data" / "public_test_lengths.json").read_text())


def bundled(adapter: type[FeatureDataset], name: str) -> Path:
    """A file the adapter ships (its ``official/`` folder)."""
    path = adapter.bundle.bundled(name)
    assert path is not None, f"{adapter.__name__} does not ship {name}"
    return path


def public_lengths(dataset: str) -> dict[str, int]:
    """T of each test video of `dataset` in its public extraction (see the module docstring)."""
    return LENGTHS[dataset]["lengths"]


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


def write_list(path: Path, lines: list[str], end: str = "\n") -> None:
    """A list file of `lines`, each ended by `end` (RTFM's UCF-Crime lists end lines with CR LF)."""
    path.write_text("".join(f"{line}{end}" for line in lines), newline="")


def ucf_ids() -> tuple[list[str], list[str]]:
    """UCF-Crime training and test ids in the published order (abnormal first)."""
    train = parse_ucf_train_split(bundled(UCFCrime, "Anomaly_Train.txt").read_text(), "train")
    notes = parse_ucf_annotation(bundled(UCFCrime, "Temporal_Anomaly_Annotation.txt").read_text(), "test")
    return (
        abnormal_first(train, lambda v: not v.startswith("Normal")),
        abnormal_first(list(notes), lambda v: notes[v].category != NORMAL),
    )


def ucf_root(
    root: Path, per_crop: bool = False, with_lists: bool = True, with_files: bool = True, mat: bool = False
) -> Path:
    """UCF-Crime: all 290 test videos (T of Wu's extraction), 1,610 training videos (RTFM) or 40 (Wu).

    mat: RTFM's per-video ``.mat`` annotations (from ../shared/data) in place of the text file.
    """
    train_ids, test_ids = ucf_ids()
    if per_crop:  # 10 files per video: keep 20 abnormal and 20 normal training videos, listed like UR-DMU's
        train_ids = train_ids[:20] + [v for v in train_ids if v.startswith("Normal")][:20]
    if mat:
        shutil.copytree(UCF / "Matlab_formate", root / "Matlab_formate")
    elif with_files:
        shutil.copy(bundled(UCFCrime, "Temporal_Anomaly_Annotation.txt"), root / UCF_ANNOTATION)
    if with_files and per_crop:
        write_list(root / "Anomaly_Train.txt", [f"X/{v}.mp4" for v in train_ids])
    elif with_files:
        shutil.copy(bundled(UCFCrime, "Anomaly_Train.txt"), root / "Anomaly_Train.txt")
    if with_lists and per_crop:
        write_list(root / "UCF_Train.list", [f"dataset/X/{v}__{c}.npy" for v in train_ids for c in range(10)])
        write_list(root / "UCF_Test.list", [f"dataset/X/{v}__{c}.npy" for v in test_ids for c in range(10)])
    elif with_lists:
        write_list(root / "ucf-i3d.list", [f"G:\\UCF_Train_ten_crop_i3d\\{v}_i3d.npy" for v in train_ids], "\r\n")
        write_list(root / "ucf-i3d-test.list", [f"G:\\UCF_Test_ten_crop_i3d\\{v}_i3d.npy" for v in test_ids], "\r\n")
    lengths = public_lengths("ucf-crime")
    for i, video in enumerate(train_ids):
        write_video(root / "train", video, 3 + i % 7, 10, per_crop, seed=i)
    for i, video in enumerate(test_ids):
        write_video(root / "test", video, lengths[video], 10, per_crop, seed=10_000 + i)
    return root


def sh_masks() -> dict[str, np.ndarray]:
    """The 107 frame masks (RTFM's ``list/test_frame_mask``), from the bundle."""
    packed = bundled(ShanghaiTech, "test_frame_mask.json")
    return unpack_masks(packed.read_text(), str(packed))


def sh_ids(split: str) -> list[str]:
    """ShanghaiTech ids of a split in the published order (the masked, abnormal videos first)."""
    name = {"train": "SH_Train.txt", "test": "SH_Test.txt"}[split]
    return abnormal_first(parse_id_list(bundled(ShanghaiTech, name).read_text(), name), sh_masks().__contains__)


def sh_root(root: Path, with_lists: bool = True, with_files: bool = True) -> Path:
    """ShanghaiTech in RTFM's layout: 238 + 199 videos (test T of RTFM's features), masks, PEL4VAD's action
    classes, lists or splits."""
    lengths = public_lengths("shanghaitech")
    if with_files:
        (root / "test_frame_mask").mkdir()
        for video, mask in sh_masks().items():
            np.save(root / "test_frame_mask" / f"{video}.npy", mask)
        shutil.copy(bundled(ShanghaiTech, "relabel.list"), root / "relabel.list")  # PEL4VAD's action classes
    for split, folder in (("train", "SH_Train_ten_crop_i3d"), ("test", "SH_Test_ten_crop_i3d")):
        ids = sh_ids(split)
        if with_lists:
            lines = [f"/home/yu/yu_ssd/{folder}/{v}_i3d.npy" for v in ids]
            write_list(root / f"shanghai-i3d-{split}-10crop.list", lines)
        elif with_files:
            shutil.copy(bundled(ShanghaiTech, f"SH_{split.title()}.txt"), root / f"SH_{split.title()}.txt")
        for i, video in enumerate(ids):
            write_video(root / split, video, lengths.get(video, 3 + i % 5), 10, False, seed=i)
    return root


def xd_ids(split: str) -> list[str]:
    """XD-Violence ids of a split in the order of Wu et al.'s lists (violent first), from the bundle."""
    name = f"{split}_videos.txt"
    return parse_id_list(bundled(XDViolence, name).read_text(), name)


def xd_root(
    root: Path,
    audio: bool = False,
    with_lists: bool = True,
    with_files: bool = True,
    train_videos: int | None = 10,
    crops: int = 5,
) -> Path:
    """XD-Violence in Wu's per-crop layout: all 800 test videos, `train_videos` violent + as many normal
    (None: all 3,954), in folders RGB/ and RGBTest/ as Wu et al. distribute them."""
    lengths = public_lengths("xd-violence")
    if with_files:
        shutil.copy(bundled(XDViolence, "annotations.txt"), root / "annotations.txt")
    train, test = xd_ids("train"), xd_ids("test")
    if train_videos is not None:
        train = train[:train_videos] + [v for v in train if "_label_A" in v][:train_videos]
    for split, ids, folder in (("train", train, "RGB"), ("test", test, "RGBTest")):
        if with_lists:
            lines = [f"/media/peng/Samsung_T5/i3d-features/{folder}/{v}__{c}.npy" for v in ids for c in range(crops)]
            write_list(root / ("rgb.list" if split == "train" else "rgb_test.list"), lines)
        for i, video in enumerate(ids):
            snippets = lengths[video] if split == "test" else 3 + i % 5
            write_video(root / folder, video, snippets, crops, True, seed=i)
            if audio:  # VGGish one snippet longer for every third video: the documented mismatch
                vggish = np.random.default_rng(i).random((snippets + (i % 3 == 0), 128), dtype=np.float32)
                (root / f"vggish-{split}").mkdir(exist_ok=True)
                np.save(root / f"vggish-{split}" / f"{video}__vggish.npy", vggish)
    return root


def ucsd_root(root: Path, subset: str = "ped2", with_files: bool = True) -> Path:
    """UCSD Ped2 (16 normal + 12 abnormal clips) or Ped1 (34 + 36), RTFM layout, the official .m file."""
    source = bundled(UCSDPeds, f"UCSD{subset}.m")
    if with_files:
        shutil.copy(source, root / source.name)
    abnormal = len(parse_ucsd_m(source.read_text(), source.name))
    normal = 16 if subset == "ped2" else 34
    for i in range(1, abnormal + 1):
        write_video(root / "Test", f"Test{i:03d}", 11 if subset == "ped2" else 12, 10, False, seed=i)
    for i in range(1, normal + 1):
        write_video(root / "Train", f"Train{i:03d}", 11 if subset == "ped2" else 12, 10, False, seed=100 + i)
    return root
