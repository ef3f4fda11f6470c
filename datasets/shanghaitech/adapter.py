"""ShanghaiTech from pre-extracted features, labelled by RTFM's ``test_frame_mask/<id>.npy`` masks.

The 107 masks cover every anomalous video of the original test set; in the weak split 63 of them are
abnormal training videos and 44 abnormal test videos, so a video is abnormal exactly when it has a mask.
The masks and the split files ship with vadbench (the masks packed into one file); masks under the
root replace the bundled ones as a whole, so that one set of masks says which videos are abnormal.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.types import SNIPPET_FRAMES
from vadbench.data.annotations import parse_id_list
from vadbench.data.check import Problems
from vadbench.data.feature_dataset import FeatureDataset, ListsConfig
from vadbench.data.file_index import FileIndex, read_text
from vadbench.data.groundtruth import from_mask, pseudo_frames
from vadbench.data.manifest import FrameLabels, Manifest, TestVideo
from vadbench.data.npy import VideoFiles, load_npy
from vadbench.data.official import Bundle, unpack_masks
from vadbench.data.video_lists import OFFICIAL_ORDER, Located, abnormal_first

MASK_FOLDER = "test_frame_mask"
#: The bundled masks, all in one file (`vadbench.data.official.pack_masks`).
PACKED_MASKS = "test_frame_mask.json"
SPLIT_FILES = {"train": "SH_Train.txt", "test": "SH_Test.txt"}
#: PEL4VAD's fine-grained actions of the abnormal training videos (``01_0026 fighting,chasing``): the
#: training classes, where every abnormal training video has one (a video's class is its first action, and
#: 7 videos show a second one).
ACTIONS_FILE = "relabel.list"
#: The action classes numbered as PEL4VAD's SH loader numbers them (its ``anomaly.list`` says "cart"
#: where the loader and relabel.list say "handcart").
CLASS_NAMES = ("Normal", "cycling", "chasing", "handcart", "fighting", "skateboarding", "vehicle", "running",
               "jumping", "wandering", "lifting", "robbery", "climbing_over", "throwing")
KNOWN_LISTS = (("shanghai-i3d-train-10crop.list", "shanghai-i3d-test-10crop.list"),)


#: A video's frame mask: where it comes from (for messages) and how to read it.
Mask = tuple[str, Callable[[], np.ndarray]]


@dataclass(frozen=True)
class ShanghaiTechConfig(ListsConfig):
    """ShanghaiTech options (see `vadbench.data.feature_dataset.FeatureConfig` and `ListsConfig`)."""


class ShanghaiTech(FeatureDataset):
    """ShanghaiTech weak split (Zhong et al. 2019): 238 train / 199 test videos, frame AUC."""

    Config = ShanghaiTechConfig
    config: ShanghaiTechConfig
    name = "shanghaitech"
    needs = (
        "the I3D feature files; the official masks and split files ship with vadbench, list files or your "
        "own test_frame_mask/<id>.npy under the root replace them"
    )
    bundle = Bundle.beside(__file__)

    def resolve(self, index: FileIndex, problems: Problems) -> Manifest:
        masks, mask_files = self._masks(index)
        train, test = (
            self.locate(
                index, problems, split, KNOWN_LISTS, functools.partial(self._official, index, split, masks)
            )
            for split in ("train", "test")
        )
        known = {*train.ids, *test.ids}
        for video_id, (source, _) in masks.items():
            if train.complete and test.complete and video_id not in known:
                problems.add(f"{source}: names video {video_id}, which is neither a training nor a test video")
        split_files = [
            self.bundle.find(index, SPLIT_FILES[name])
            for name, split in (("train", train), ("test", test))
            if split.order == OFFICIAL_ORDER
        ]
        training = [self._files(v, masks) for v in train.videos]
        actions, class_names, action_files = self._actions(index)
        abnormal = [v.video_id for v in training if v.label]
        if abnormal and all(video in actions for video in abnormal):
            training = [
                dataclasses.replace(v, category=actions[v.video_id][0], other_categories=actions[v.video_id][1:])
                if v.label else v
                for v in training
            ]
        else:
            class_names, action_files = (), []
        return Manifest(
            train=training,
            test=[TestVideo(self._files(v, masks), self._labels(masks.get(v.video_id))) for v in test.videos],
            sources=[*mask_files, *(p for p in split_files if p is not None), *action_files],
            meta={"train_order": train.order, "test_order": test.order},
            class_names=class_names,
        )

    def _actions(self, index: FileIndex) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...], list[Path]]:
        """Each abnormal training video's actions, the class names ("Normal" first) and their file."""
        relabel = self.bundle.require(index, ACTIONS_FILE, "PEL4VAD's action classes")
        classes = CLASS_NAMES
        actions = {}
        for number, line in enumerate(read_text(relabel).splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            listed = tuple(fields[1].split(",")) if len(fields) == 2 else ("",)
            if not set(listed) <= set(classes[1:]):
                raise UsageError(f"{relabel}: line {number}: expected '<video> <action>[,<action>...]' with "
                                 f"actions among {', '.join(classes[1:])}, got {line.strip()!r}")
            actions[fields[0]] = listed
        return actions, classes, [relabel]

    def _masks(self, index: FileIndex) -> tuple[dict[str, Mask], list[Path]]:
        """Every video's mask, and the files they come from: the root's ``.npy`` masks, else the bundled."""
        paths = {
            path.stem: path
            for name in index.names(lambda n: n.endswith(".npy"))
            for path in index.paths(name)
            if path.parent.name == MASK_FOLDER
        }
        if paths:
            root_masks: dict[str, Mask] = {
                video: (str(path), functools.partial(load_npy, path)) for video, path in paths.items()
            }
            return root_masks, list(paths.values())
        packed = self.bundle.require(
            index, PACKED_MASKS, f"RTFM's list/{MASK_FOLDER}/<id>.npy masks give the frame labels"
        )
        unpacked = unpack_masks(read_text(packed), str(packed))
        bundled: dict[str, Mask] = {
            video: (f"{packed}: {video}", functools.partial(np.asarray, mask)) for video, mask in unpacked.items()
        }
        return bundled, [packed]

    def _official(self, index: FileIndex, split: str, masks: dict[str, Mask]) -> list[str]:
        path = self.bundle.require(
            index, SPLIT_FILES[split], f"the official {split} split, needed without list files"
        )
        return abnormal_first(parse_id_list(read_text(path), str(path)), masks.__contains__)

    @staticmethod
    def _files(video: Located, masks: dict[str, Mask]) -> VideoFiles:
        abnormal = video.video_id in masks
        return VideoFiles(
            video.video_id,
            int(abnormal),
            video.files,
            video.per_crop,
            category="Anomaly" if abnormal else "Normal",
        )

    @staticmethod
    def _labels(mask: Mask | None) -> FrameLabels:
        """Frame labels of a test video: its mask fitted to 16 x T, or all normal without a mask."""

        def build(snippets: int) -> np.ndarray:
            frames = pseudo_frames(snippets)
            if mask is None:
                return np.zeros(frames, dtype=np.int8)
            source, read = mask
            values = np.asarray(read())
            if values.ndim != 1 or len(values) == 0 or not np.isin(np.unique(values), (0, 1)).all():
                raise UsageError(
                    f"{source}: expected a non-empty 1-D array of 0/1 frame labels, got {values.shape}"
                )
            if abs(frames - len(values)) >= SNIPPET_FRAMES:
                raise UsageError(
                    f"{source}: {len(values)} frames, but the features have {snippets} snippets "
                    f"({frames} frames); expected T = floor or ceil of {len(values)}/{SNIPPET_FRAMES} "
                    "(features of another video?)"
                )
            return from_mask(values, frames)

        return build
