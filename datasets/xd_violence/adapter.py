"""XD-Violence from Wu et al.'s 5-crop I3D features (``<id>__<crop>.npy``), optionally with VGGish audio.

Labels come from the video names (``_label_A`` means normal); frame labels of violent test videos from
the official ``annotations.txt``. Without list files, the videos of each split are those of Wu et al.'s
lists, whose ids ship with vadbench (``train_videos.txt``, ``test_videos.txt``) as does the annotation.
With ``modality=rgb+audio`` the 128-d ``<id>__vggish.npy`` snippet features are appended to every crop;
when the two streams differ in length both are cut to the shorter (the only rule; the number of videos
cut is recorded in the benchmark meta).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from vadbench.api.errors import UsageError
from vadbench.data.annotations import Range, parse_id_list, parse_xd_annotation
from vadbench.data.check import Problems
from vadbench.data.feature_dataset import FeatureDataset, ListsConfig
from vadbench.data.file_index import FileIndex, read_text
from vadbench.data.groundtruth import GtConvention, labels_from_ranges, with_convention
from vadbench.data.manifest import Manifest, TestVideo
from vadbench.data.npy import VideoFiles
from vadbench.data.official import Bundle
from vadbench.data.video_lists import OFFICIAL_ORDER, Located

ANNOTATION_FILES = ("annotations.txt", "XD_Annotation.txt")
#: The bundled video ids of each split, in the order of Wu et al.'s ``rgb.list`` and ``rgb_test.list``.
SPLIT_FILES = {"train": "train_videos.txt", "test": "test_videos.txt"}
#: Wu et al.'s lists (XDVioDet), then the same videos as listed by UR-DMU and BN-WVAD.
KNOWN_LISTS = (("rgb.list", "rgb_test.list"), ("XD_Train.list", "XD_Test.list"))
#: Violence classes of the label codes in the video names (the first code names the video's class).
CLASSES = {
    "A": "Normal",
    "B1": "Fighting",
    "B2": "Shooting",
    "B4": "Riot",
    "B5": "Abuse",
    "B6": "Car accident",
    "G": "Explosion",
}
#: The class names numbered as PEL4VAD numbers them (A, B5, B6, G, B1, B4, B2).
CLASS_NAMES = ("Normal", "Abuse", "Car accident", "Explosion", "Fighting", "Riot", "Shooting")
_LABEL = re.compile(r"_label_(?P<codes>[A-Z0-9-]+)$")


@dataclass(frozen=True)
class XDViolenceConfig(ListsConfig):
    """XD-Violence options; modality "rgb+audio" appends the VGGish features (D + 128).

    gt_convention: how an annotated pair (s, e) is read, "half-open" [s, e) or "inclusive" [s, e] (see
    `vadbench.data.groundtruth.GtConvention`).
    """

    modality: Literal["rgb", "rgb+audio"] = "rgb"
    gt_convention: GtConvention = "half-open"


def category(video_id: str) -> str:
    """The class of a video from the first label code in its name (``..._label_B2-G-0`` -> Shooting)."""
    match = _LABEL.search(video_id)
    if match is None:
        raise UsageError(f"video {video_id}: no '_label_<codes>' in its name, so its label is unknown")
    code = match.group("codes").split("-")[0]
    if code not in CLASSES:
        raise UsageError(f"video {video_id}: unknown label code {code!r} (known: {', '.join(CLASSES)})")
    return CLASSES[code]


class XDViolence(FeatureDataset):
    """XD-Violence (Wu et al. 2020): 3,954 train / 800 test videos, 5 crops, audio, frame AP."""

    Config = XDViolenceConfig
    config: XDViolenceConfig
    name = "xd-violence"
    needs = (
        "the I3D feature files (<video>__<crop>.npy); the official annotations.txt and the videos of each "
        "split ship with vadbench, list files (rgb.list, rgb_test.list) or your own copies replace them"
    )
    primary_metric = "ap"
    bundle = Bundle.beside(__file__)

    def resolve(self, index: FileIndex, problems: Problems) -> Manifest:
        annotation_file = next(filter(None, (index.find(name) for name in ANNOTATION_FILES)), None)
        if annotation_file is None:
            annotation_file = self.bundle.require(index, ANNOTATION_FILES[0], "XD-Violence test annotations")
        annotations = parse_xd_annotation(read_text(annotation_file), str(annotation_file))
        train = self.locate(index, problems, "train", KNOWN_LISTS, lambda: self._official(index, "train"))
        test = self.locate(index, problems, "test", KNOWN_LISTS, lambda: self._official(index, "test"))
        tests, trains = [], []
        for video in test.videos:
            with problems.collect():
                tests.append(self._test_video(index, video, annotations, str(annotation_file)))
        for video_id in annotations.keys() - set(test.ids) if test.complete else ():
            problems.add(f"{annotation_file}: names video {video_id}, which is not among the test videos")
        for video in train.videos:
            with problems.collect():
                trains.append(self._video(index, video))
        split_files = [
            self.bundle.find(index, SPLIT_FILES[name])
            for name, split in (("train", train), ("test", test))
            if split.order == OFFICIAL_ORDER
        ]
        return Manifest(
            train=trains,
            test=tests,
            sources=[annotation_file, *(path for path in split_files if path is not None)],
            meta={"train_order": train.order, "test_order": test.order, "modality": self.config.modality},
            class_names=CLASS_NAMES,
        )

    def _video(self, index: FileIndex, video: Located) -> VideoFiles:
        kind = category(video.video_id)
        audio = None
        if self.config.modality == "rgb+audio":
            audio = index.require(
                f"{video.video_id}__vggish.npy", "VGGish audio features, modality=rgb+audio"
            )
        return VideoFiles(video.video_id, int(kind != "Normal"), video.files, video.per_crop, audio, kind)

    def _test_video(
        self, index: FileIndex, video: Located, annotations: dict[str, tuple[Range, ...]], source: str
    ) -> TestVideo:
        files = self._video(index, video)
        ranges = annotations.get(video.video_id, ())
        if files.label and not ranges:
            raise UsageError(f"{source}: no annotation for violent test video {video.video_id}")
        if ranges and not files.label:
            raise UsageError(f"{source}: {video.video_id} is annotated but its name says normal (_label_A)")
        ranges = with_convention(ranges, self.config.gt_convention)
        return TestVideo(files, labels_from_ranges(ranges, source, video.video_id))

    def _official(self, index: FileIndex, split: str) -> list[str]:
        """The video ids of `split` from the split file (bundled, unless the root has one)."""
        path = self.bundle.require(index, SPLIT_FILES[split], f"the {split} videos, needed without list files")
        return parse_id_list(read_text(path), str(path))
