"""A tiny, valid UCF-Crime data root (RTFM layout) for tests that break it in one way each.

Four training and four test videos of T = 12 snippets, C = 2 crops, D = 8, with the published list
names and annotation format, so that a run on it takes a second and every file the adapter reads is
one a test can damage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SNIPPETS, CROPS, DIM = 12, 2, 8
TRAIN = ("Abuse001_x264", "Arson001_x264", "Normal_Videos001_x264", "Normal_Videos002_x264")
#: test video -> its annotation after the file name (frames 0-based, -1 -1 = no event)
TEST = {
    "Abuse028_x264": "Abuse  32  96  -1  -1",
    "Arson009_x264": "Arson  16  48  100  140",
    "Normal_Videos_003_x264": "Normal  -1  -1  -1  -1",
    "Normal_Videos_006_x264": "Normal  -1  -1  -1  -1",
}
TRAIN_LIST = "ucf-i3d.list"
TEST_LIST = "ucf-i3d-test.list"
ANNOTATION = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"


def feature_file(root: Path, video: str) -> Path:
    """Where the tiny root keeps `video`'s ``[T, C, D]`` features."""
    return root / ("train" if video in TRAIN else "test") / f"{video}_i3d.npy"


def tiny_ucf_root(root: Path) -> Path:
    """Write the tiny root at `root` (lists with the authors' absolute paths, as published)."""
    rng = np.random.default_rng(0)
    for folder, videos in (("train", TRAIN), ("test", tuple(TEST))):
        (root / folder).mkdir(parents=True)
        for video in videos:
            np.save(feature_file(root, video), rng.random((SNIPPETS, CROPS, DIM), dtype=np.float32))
    (root / TRAIN_LIST).write_text("".join(f"/home/yu/UCF_Train/{v}_i3d.npy\n" for v in TRAIN))
    (root / TEST_LIST).write_text("".join(f"/home/yu/UCF_Test/{v}_i3d.npy\n" for v in TEST))
    (root / ANNOTATION).write_text("".join(f"{video}.mp4  {note}\n" for video, note in TEST.items()))
    return root
