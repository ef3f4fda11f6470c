"""Frame-level ground truth at the pseudo-frame level: 16 frames per snippet of the user's features.

Every public code base evaluates on ``16 x T`` pseudo-frames per test video (T = snippets in *that*
feature file), so a ground truth must be built from the annotations and the user's T, never taken
from a prebuilt array made for another extraction. Labels are int8 0/1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.types import SNIPPET_FRAMES
from vadbench.data.annotations import Range

#: How an annotated frame pair (s, e) is read: "half-open" labels s .. e - 1 (the public per-video
#: ground truths of PEL4VAD, for UCF-Crime and XD-Violence), "inclusive" labels s .. e (RTFM's own
#: ``make_gt_ucf.py``, which wrote its ``gt-ucf.npy``).
GtConvention = Literal["half-open", "inclusive"]


def with_convention(ranges: tuple[Range, ...], convention: GtConvention) -> tuple[Range, ...]:
    """Annotated (s, e) pairs as the half-open ranges that `convention` means."""
    return ranges if convention == "half-open" else tuple((start, end + 1) for start, end in ranges)


def pseudo_frames(snippets: int, snippet_frames: int = SNIPPET_FRAMES) -> int:
    return snippets * snippet_frames


def from_ranges(ranges: Iterable[Range], frames: int) -> np.ndarray:
    """Labels of `frames` pseudo-frames, 1 inside the half-open 0-based `ranges` (clipped to the length)."""
    labels = np.zeros(frames, dtype=np.int8)
    for start, end in ranges:
        labels[min(start, frames) : min(end, frames)] = 1
    return labels


def labels_from_ranges(ranges: tuple[Range, ...], source: str, video_id: str) -> Callable[[int], np.ndarray]:
    """A builder of one video's labels from its annotated ranges, given the video's T.

    An event that starts after the last pseudo-frame means the annotation and the features disagree
    (another extraction, or a cut feature file), which would silently drop positives: it is an error.
    """

    def build(snippets: int) -> np.ndarray:
        frames = pseudo_frames(snippets)
        for start, end in ranges:
            if start >= frames:
                raise UsageError(
                    f"{source}: {video_id}: event at frames [{start}, {end}) starts after the {frames} "
                    f"frames covered by its {snippets} feature snippets (features of another extraction?)"
                )
        return from_ranges(ranges, frames)

    return build


def from_mask(mask: np.ndarray, frames: int) -> np.ndarray:
    """A true-frame-count 0/1 mask fitted to `frames` pseudo-frames (ShanghaiTech, RTFM's ``gt-sh.npy``).

    Padded with its last label when the features cover more frames (T = ceil(N / 16)), cut when they
    cover fewer (T = floor(N / 16)).
    """
    mask = np.asarray(mask).astype(np.int8).ravel()
    if len(mask) >= frames:
        return mask[:frames].copy()
    return np.concatenate([mask, np.full(frames - len(mask), mask[-1], dtype=np.int8)])


def check_prebuilt(labels: np.ndarray, snippets: int, source: str) -> np.ndarray:
    """A prebuilt ``gt-*.npy`` as int8 labels, if it fits `snippets` test snippets and holds only 0/1."""
    expected = pseudo_frames(snippets)
    if labels.ndim != 1 or len(labels) != expected:
        found = len(labels) if labels.ndim == 1 else f"shape {labels.shape}"
        raise UsageError(
            f"{source}: {found} frames, expected {SNIPPET_FRAMES} x {snippets} test snippets = {expected} "
            "(a prebuilt ground truth fits only the feature extraction it was made for; omit gt= to build "
            "it from the annotations)"
        )
    values = np.unique(labels)
    if not np.isin(values, (0, 1)).all():
        raise UsageError(f"{source}: labels must be 0 or 1, found {values[:5].tolist()}")
    return labels.astype(np.int8)
