"""ShanghaiTech from pre-extracted features, labelled by RTFM's ``test_frame_mask/<id>.npy`` masks.

The 107 masks cover every anomalous video of the original test set; in the weak split 63 of them are
abnormal training videos and 44 abnormal test videos, so a video is abnormal exactly when it has a mask.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadbench.annotations import parse_id_list
from vadbench.datacheck import Problems
from vadbench.errors import UsageError
from vadbench.features import VideoFiles, load_npy
from vadbench.featureset import (
    FeatureDataset,
    FrameLabels,
    ListsConfig,
    Located,
    Plan,
    TestVideo,
    abnormal_first,
)
from vadbench.groundtruth import from_mask, pseudo_frames
from vadbench.layout import FileIndex, read_text
from vadbench.types import SNIPPET_FRAMES

MASK_FOLDER = "test_frame_mask"
SPLIT_FILES = {"train": "SH_Train.txt", "test": "SH_Test.txt"}
KNOWN_LISTS = (("shanghai-i3d-train-10crop.list", "shanghai-i3d-test-10crop.list"),)


@dataclass(frozen=True)
class ShanghaiTechConfig(ListsConfig):
    """ShanghaiTech options (see `vadbench.featureset.FeatureConfig` and `ListsConfig`)."""


class ShanghaiTech(FeatureDataset):
    """ShanghaiTech weak split (Zhong et al. 2019): 238 train / 199 test videos, frame AUC."""

    Config = ShanghaiTechConfig
    config: ShanghaiTechConfig
    name = "shanghaitech"
    needs = (
        "the I3D feature files, test_frame_mask/<id>.npy, and the list files or SH_Train.txt and SH_Test.txt"
    )

    def plan(self, index: FileIndex, problems: Problems) -> Plan:
        masks = self._masks(index)
        train, test = (
            self.locate(
                index, problems, split, KNOWN_LISTS, functools.partial(self._official, index, split, masks)
            )
            for split in ("train", "test")
        )
        known = {*train.ids, *test.ids}
        for video_id, path in masks.items():
            if train.complete and test.complete and video_id not in known:
                problems.add(f"{path}: names video {video_id}, which is neither a training nor a test video")
        split_files = [index.find(name) for name in SPLIT_FILES.values()]
        return Plan(
            train=[self._files(v, masks) for v in train.videos],
            test=[TestVideo(self._files(v, masks), self._labels(masks.get(v.video_id))) for v in test.videos],
            sources=[*masks.values(), *(p for p in split_files if p is not None)],
            meta={"train_order": train.order, "test_order": test.order},
        )

    @staticmethod
    def _masks(index: FileIndex) -> dict[str, Path]:
        masks = {
            path.stem: path
            for name in index.names(lambda n: n.endswith(".npy"))
            for path in index.paths(name)
            if path.parent.name == MASK_FOLDER
        }
        if not masks:
            raise UsageError(
                f"no {MASK_FOLDER}/<id>.npy masks under {index.root} (RTFM's list/{MASK_FOLDER}: they "
                "give the frame labels and tell the abnormal videos apart)"
            )
        return masks

    @staticmethod
    def _official(index: FileIndex, split: str, masks: dict[str, Path]) -> list[str]:
        path = index.require(
            SPLIT_FILES[split], f"the official {split} split, needed when no list file is there"
        )
        return abnormal_first(parse_id_list(read_text(path), str(path)), masks.__contains__)

    @staticmethod
    def _files(video: Located, masks: dict[str, Path]) -> VideoFiles:
        abnormal = video.video_id in masks
        return VideoFiles(
            video.video_id,
            int(abnormal),
            video.files,
            video.per_crop,
            category="Anomaly" if abnormal else "Normal",
        )

    @staticmethod
    def _labels(mask: Path | None) -> FrameLabels:
        """Frame labels of a test video: its mask fitted to 16 x T, or all normal without a mask."""

        def build(snippets: int) -> np.ndarray:
            frames = pseudo_frames(snippets)
            if mask is None:
                return np.zeros(frames, dtype=np.int8)
            values = np.asarray(load_npy(mask))
            if values.ndim != 1 or len(values) == 0 or not np.isin(np.unique(values), (0, 1)).all():
                raise UsageError(
                    f"{mask}: expected a non-empty 1-D array of 0/1 frame labels, got {values.shape}"
                )
            if abs(frames - len(values)) >= SNIPPET_FRAMES:
                raise UsageError(
                    f"{mask}: {len(values)} frames, but the features have {snippets} snippets "
                    f"({frames} frames); expected T = floor or ceil of {len(values)}/{SNIPPET_FRAMES} "
                    "(features of another video?)"
                )
            return from_mask(values, frames)

        return build
