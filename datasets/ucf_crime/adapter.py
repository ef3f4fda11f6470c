"""UCF-Crime from pre-extracted features: RTFM's ``<id>_i3d.npy`` or Wu's ``<id>__<crop>.npy``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vadbench.api.errors import UsageError
from vadbench.data.annotations import (
    NORMAL,
    VideoAnnotation,
    parse_ucf_annotation,
    parse_ucf_mat,
    parse_ucf_train_split,
)
from vadbench.data.check import Problems
from vadbench.data.feature_dataset import FeatureDataset, ListsConfig
from vadbench.data.file_index import FileIndex, read_text
from vadbench.data.groundtruth import GtConvention, labels_from_ranges, with_convention
from vadbench.data.manifest import Manifest, TestVideo
from vadbench.data.npy import VideoFiles
from vadbench.data.official import Bundle
from vadbench.data.video_lists import OFFICIAL_ORDER, Located, abnormal_first

#: The official test annotation: its name in the dataset zip, then in Sultani et al.'s repository
#: (the name it is bundled under).
ANNOTATION_FILES = ("Temporal_Anomaly_Annotation_for_Testing_Videos.txt", "Temporal_Anomaly_Annotation.txt")
TRAIN_SPLIT = "Anomaly_Train.txt"
#: Published list pairs, preferred in this order: RTFM (I3D ResNet50), Wu/UR-DMU (I3D), DeepMIL (C3D).
KNOWN_LISTS = (
    ("ucf-i3d.list", "ucf-i3d-test.list"),
    ("UCF_Train.list", "UCF_Test.list"),
    ("ucf-c3d.list", "ucf-c3d-test.list"),
)


@dataclass(frozen=True)
class UCFCrimeConfig(ListsConfig):
    """UCF-Crime options (see `vadbench.data.feature_dataset.FeatureConfig` and `ListsConfig`).

    gt_convention: how an annotated pair (s, e) is read, "half-open" [s, e) or "inclusive" [s, e] (the
    convention of RTFM's own ``gt-ucf.npy``; see `vadbench.data.groundtruth.GtConvention`).
    """

    gt_convention: GtConvention = "half-open"


#: The anomaly classes, numbered from 1 in this (alphabetical) order, as PEL4VAD numbers them.
CLASSES = ("Normal", "Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting", "RoadAccidents",
           "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism")
_CLASS = re.compile(r"^(?P<name>[A-Za-z]+?)\d+_x264$")


def is_normal(video_id: str) -> bool:
    return video_id.startswith("Normal_Videos")


def category(video_id: str) -> str:
    """A training video's class from its official name (``RoadAccidents012_x264`` -> RoadAccidents)."""
    if is_normal(video_id):
        return "Normal"
    match = _CLASS.match(video_id)
    if match is None or match.group("name") not in CLASSES:
        raise UsageError(f"training video {video_id}: not an official UCF-Crime name (<Class><number>_x264), "
                         "so its anomaly class is unknown")
    return match.group("name")


class UCFCrime(FeatureDataset):
    """UCF-Crime (Sultani et al. 2018): 1,610 train / 290 test videos, 13 anomaly classes, frame AUC."""

    Config = UCFCrimeConfig
    config: UCFCrimeConfig
    name = "ucf-crime"
    needs = (
        "the I3D/C3D feature files; the official Anomaly_Train.txt and test annotation ship with vadbench, "
        "list files or your own copies under the root replace them"
    )
    bundle = Bundle.beside(__file__)

    def resolve(self, index: FileIndex, problems: Problems) -> Manifest:
        annotations, sources = self._annotations(index)
        normals = {video for video, (note, _) in annotations.items() if note.category == NORMAL}
        train = self.locate(index, problems, "train", KNOWN_LISTS, lambda: self._official_train(index))
        test = self.locate(
            index,
            problems,
            "test",
            KNOWN_LISTS,
            lambda: abnormal_first(list(annotations), lambda v: v not in normals),
        )
        tests = [self._test_video(video, annotations, problems) for video in test.videos]
        listed = set(test.ids)
        for video_id, (_, source) in annotations.items():
            if test.complete and video_id not in listed:
                problems.add(f"{source}: names video {video_id}, which is not among the test videos")
        split_file = self.bundle.find(index, TRAIN_SPLIT) if train.order == OFFICIAL_ORDER else None
        return Manifest(
            train=[
                VideoFiles(v.video_id, int(not is_normal(v.video_id)), v.files, v.per_crop,
                           category=category(v.video_id))
                for v in train.videos
            ],
            test=[t for t in tests if t is not None],
            sources=sources + ([split_file] if split_file else []),
            meta={"train_order": train.order, "test_order": test.order},
            class_names=CLASSES,
        )

    def _official_train(self, index: FileIndex) -> list[str]:
        path = self.bundle.require(index, TRAIN_SPLIT, "the official training split, needed without list files")
        return abnormal_first(parse_ucf_train_split(read_text(path), str(path)), lambda v: not is_normal(v))

    def _annotations(self, index: FileIndex) -> tuple[dict[str, tuple[VideoAnnotation, str]], list[Path]]:
        """Each test video's annotation and its source, from the root's text file, else the root's RTFM
        ``*_x264.mat`` files, else the bundled text file."""
        text = next(filter(None, (index.find(name) for name in ANNOTATION_FILES)), None)
        mats = [index.require(name, "") for name in index.names(lambda n: n.endswith("_x264.mat"))]
        if text is None and not mats:
            text = self.bundle.require(index, ANNOTATION_FILES[1], "the official test annotation")
        if text is not None:
            table = parse_ucf_annotation(read_text(text), str(text))
            return {video: (note, str(text)) for video, note in table.items()}, [text]
        found: dict[str, tuple[VideoAnnotation, str]] = {}
        for path in mats:
            video, note = parse_ucf_mat(path.read_bytes(), str(path))
            if video != path.stem:
                raise UsageError(f"{path}: holds the annotation of {video}, not of {path.stem}")
            found[video] = (note, str(path))
        return found, mats

    def _test_video(
        self, video: Located, annotations: dict[str, tuple[VideoAnnotation, str]], problems: Problems
    ) -> TestVideo | None:
        if video.video_id not in annotations:
            sources = sorted({source for _, source in annotations.values()})
            where = sources[0] if len(sources) == 1 else "the Matlab_formate/*.mat files"
            problems.add(f"{where}: no annotation for test video {video.video_id}")
            return None
        note, source = annotations[video.video_id]
        if (note.category == NORMAL) != is_normal(video.video_id):
            problems.add(f"{source}: {video.video_id} is annotated as {note.category}")
            return None
        files = VideoFiles(
            video.video_id, int(note.category != NORMAL), video.files, video.per_crop, category=note.category
        )
        ranges = with_convention(note.ranges, self.config.gt_convention)
        return TestVideo(files, labels_from_ranges(ranges, source, video.video_id))
