"""UCSD Ped1/Ped2 clips from pre-extracted features, split into weak train/test sets by a seed.

Clip ids follow the dataset's folders: ``Test001``... are the abnormal clips, in the order of the
``gt_frame`` lines of ``UCSDped*.m``; ``Train001``... are the normal clips (found under the root).
Features are ``<clip>_i3d.npy`` ``[T, C, D]`` or ``<clip>__<crop>.npy`` ``[T, D]``.
Frame labels: the 1-based inclusive MATLAB ranges, clipped to each clip's ``16 x T`` pseudo-frames
(pseudo-frames past a clip's true end, when T = ceil(N/16), are labelled normal: the .m file does not
give clip lengths). MATLAB's ``a:b`` includes b, so there is no convention to choose (no
``gt_convention`` option). ``UCSDped2.m`` and ``UCSDped1.m`` ship with vadbench; a copy under the root
replaces them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.data.annotations import parse_ucsd_m
from vadbench.data.check import Problems
from vadbench.data.feature_dataset import FeatureConfig, FeatureDataset
from vadbench.data.file_index import FileIndex, find_video, read_text
from vadbench.data.groundtruth import labels_from_ranges
from vadbench.data.manifest import Manifest, TestVideo
from vadbench.data.npy import VideoFiles
from vadbench.data.official import Bundle

_NORMAL_CLIP = re.compile(r"^(?P<clip>Train\d+)(?:_i3d|__0)\.npy$")


@dataclass(frozen=True)
class UCSDConfig(FeatureConfig):
    """UCSD options: `split` seeds the weak split of `train_abnormal` + `train_normal` training clips."""

    split: int = 0
    train_abnormal: int = 6
    train_normal: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.split < 0:
            raise ValueError(f"split must be a seed >= 0, got {self.split}")
        if self.train_abnormal < 1 or self.train_normal < 1:
            raise ValueError("train_abnormal and train_normal must be at least 1")


class UCSDPeds(FeatureDataset):
    """UCSD pedestrian clips with a seeded weak split (base of the Ped1 and Ped2 adapters)."""

    Config = UCSDConfig
    config: UCSDConfig
    #: The weak split seed: papers report the mean over splits, as over seeds.
    replicate_options = frozenset({"split"})
    subset: ClassVar[str]
    bundle = Bundle.beside(__file__)

    @property
    def annotation_name(self) -> str:
        return f"UCSD{self.subset}.m"

    def resolve(self, index: FileIndex, problems: Problems) -> Manifest:
        cfg = self.config
        annotation = self.bundle.require(index, self.annotation_name, f"the official {self.subset} frame annotation")
        ranges = {
            f"Test{i:03d}": clip
            for i, clip in enumerate(parse_ucsd_m(read_text(annotation), str(annotation)), 1)
        }
        normal = sorted({m.group("clip") for n in index.names(bool) if (m := _NORMAL_CLIP.match(n))})
        abnormal = sorted(ranges)
        for kind, pool, wanted in (
            ("abnormal", abnormal, cfg.train_abnormal),
            ("normal", normal, cfg.train_normal),
        ):
            if len(pool) <= wanted:
                raise UsageError(
                    f"dataset {self.name!r}: {len(pool)} {kind} clips under {index.root}, but "
                    f"train_{kind}={wanted} must leave at least one for testing"
                )
        rng = np.random.default_rng(cfg.split)
        train_abnormal = sorted(rng.choice(abnormal, cfg.train_abnormal, replace=False).tolist())
        train_normal = sorted(rng.choice(normal, cfg.train_normal, replace=False).tolist())
        train_ids = train_abnormal + train_normal
        test_ids = [c for c in abnormal if c not in train_ids] + [c for c in normal if c not in train_ids]
        clips: dict[str, VideoFiles] = {}
        for clip in train_ids + test_ids:
            with problems.collect():
                files, per_crop = find_video(index, clip, cfg.layout)
                clips[clip] = VideoFiles(
                    clip,
                    int(clip in ranges),
                    files,
                    per_crop,
                    category="Anomaly" if clip in ranges else "Normal",
                )
        return Manifest(
            train=[clips[c] for c in train_ids if c in clips],
            test=[
                TestVideo(clips[c], labels_from_ranges(ranges.get(c, ()), str(annotation), c))
                for c in test_ids
                if c in clips
            ],
            sources=[annotation],
            meta={"split": cfg.split, "train_clips": ",".join(train_ids)},
        )


class UCSDPed2(UCSDPeds):
    """UCSD Ped2 (Mahadevan et al. 2010), weak split by seed: 6 abnormal + 4 normal training clips."""

    name = "ucsd-ped2"
    subset = "ped2"
    needs = "the clip features (Test001_i3d.npy ... and Train001_i3d.npy ... or __<crop>.npy)"


class UCSDPed1(UCSDPeds):
    """UCSD Ped1 (Mahadevan et al. 2010), weak split by seed: 6 abnormal + 4 normal training clips."""

    name = "ucsd-ped1"
    subset = "ped1"
    needs = "the clip features (Test001_i3d.npy ... and Train001_i3d.npy ... or __<crop>.npy)"
