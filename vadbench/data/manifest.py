"""What a file-backed adapter resolved from its data root: the files to read and how to label them.

An adapter (`vadbench.data.feature_dataset.FeatureDataset.resolve`) only says *which* files make up its
benchmark; reading, validating and arranging them (`vadbench.data.assembly`) works from this description
alone, so that every adapter is read the same way and holds no reading code of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vadbench.data.check import Problems
from vadbench.data.npy import VideoFiles

#: Builds one test video's frame labels from its number of snippets.
FrameLabels = Callable[[int], np.ndarray]


@dataclass
class TestVideo:
    """A test video's files and how to label its frames once its T is known."""

    files: VideoFiles
    frame_labels: FrameLabels


@dataclass
class Manifest:
    """What an adapter resolved from the root, the files to read and how: the videos in split order with their
    labels and feature files, each test video's frame labelling, and the list and annotation files it read."""

    train: list[VideoFiles]
    test: list[TestVideo]
    sources: list[Path] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    #: the classes of `VideoFiles.category` (and `other_categories`), "Normal" first, where the adapter knows
    #: the training videos' classes (then `TrainSet.classes` and `class_sets` number them); empty: no classes
    class_names: tuple[str, ...] = ()
    #: a prebuilt ground truth to use instead of the built one (option ``gt``)
    prebuilt: Path | None = None


def refuse_shared_videos(manifest: Manifest, problems: Problems) -> None:
    """A video in both splits would be trained on and then tested: a leak that inflates every metric."""
    training = {video.video_id for video in manifest.train}
    for test in manifest.test:
        if test.files.video_id in training:
            problems.add(
                f"{test.files.files[0]}: video {test.files.video_id} is both a training and a test video; "
                "expected disjoint splits"
            )
