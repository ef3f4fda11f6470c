"""A benchmark assembled from a manifest's files: read, validated, the training videos reduced, the test videos
concatenated with their ground truth.

The shapes come from the files' headers first, so that the arrays are allocated once at their final size (by
`allocate`: in the preparation cache, or in memory). Validation collects every problem instead of stopping at
the first, so one code path serves both a load (which raises the first problem) and `vadbench data check`
(which lists them all): once a problem is known, every readable video is still read, and nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.mapped import release
from vadbench.api.reduction import Reduction
from vadbench.api.types import Benchmark, TestSet, TrainSet
from vadbench.data.check import Problems
from vadbench.data.groundtruth import check_prebuilt, pseudo_frames
from vadbench.data.manifest import Manifest
from vadbench.data.npy import VideoFiles, VideoShape, load_npy, probe_video, read_video
from vadbench.data.pooling import reduce_video
from vadbench.data.prepcache import Allocate, TestPart, TrainPart


@dataclass(frozen=True)
class Shapes:
    """The shapes of the videos a preparation reads (none for a part taken from the cache), and the (C, D)
    every video has."""

    train: list[VideoShape]
    test: list[VideoShape]
    crops: int
    dim: int


def assemble(
    name: str, primary_metric: str, manifest: Manifest, problems: Problems, allocate: Allocate | None,
    reduction: Reduction,
) -> Benchmark | None:
    """Read, validate and arrange every video; None (with `problems` filled) when something is wrong.

    allocate None only validates (data check): nothing is stored and the returned benchmark's
    features are zero-stride stand-ins that carry the shapes for the summary.
    """
    shapes = measure(name, manifest, problems)
    train = build_train_part(manifest, shapes, problems, allocate, reduction)
    test = build_test_part(manifest, shapes, problems, allocate)
    return None if train is None or test is None else benchmark_of(name, primary_metric, manifest, train, test)


def in_memory(field: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Arrays of a benchmark built without the cache: held whole in the process's memory, the prepared training
    set and the test set (UCF-Crime's 10 x 2048-d features: 4.2 and 5.7 GB for RTFM's 32 segments), per process."""
    return np.empty(shape, dtype=dtype)


def measure(
    name: str, manifest: Manifest, problems: Problems, train: TrainPart | None = None, test: TestPart | None = None
) -> Shapes:
    """The shapes of the training and test videos from their headers, but for a part already prepared
    (`train`, `test`): its files are not opened, and its first video stands for it in the check that every
    video has the same crops and dimension (its videos had the first one's when it was prepared)."""
    test_videos = [t.files for t in manifest.test]
    train_shapes = _probe(manifest.train, problems) if train is None else []
    test_shapes = _probe(test_videos, problems) if test is None else []
    prepared = []
    if train is not None and manifest.train:
        prepared.append((manifest.train[0], VideoShape(1, train.train.crops, train.train.feature_dim)))
    if test is not None and test_videos:
        prepared.append((test_videos[0], VideoShape(1, *test.test.features.shape[1:])))
    probed = [*zip(manifest.train, train_shapes, strict=False), *zip(test_videos, test_shapes, strict=False)]
    crops, dim = _consistent_crops_and_dim(prepared + probed, problems)
    if not problems.messages and (not manifest.train or not manifest.test):  # else already explained
        problems.add(f"dataset {name!r}: no {'training' if not manifest.train else 'test'} videos found")
    return Shapes(train_shapes, test_shapes, crops, dim)


def build_train_part(
    manifest: Manifest, shapes: Shapes, problems: Problems, allocate: Allocate | None, reduction: Reduction
) -> TrainPart | None:
    """The training videos reduced by `reduction` (None when a problem is known). Once a problem is known,
    every readable video is still read, so that all problems are listed; nothing more is stored."""
    segments = reduction.size(max((s.snippets for s in shapes.train), default=1))
    features = _features(
        allocate, problems, "train_features", (len(manifest.train), shapes.crops, segments, shapes.dim)
    )
    for i, (video, shape) in enumerate(zip(manifest.train, shapes.train, strict=True)):
        with problems.collect():
            if shape.snippets:  # else its problem is known already
                reduced = reduce_video(read_video(video, shape), reduction, segments)
                if features.flags.writeable:  # stored (a stand-in is read-only)
                    features[i] = reduced
                    release(features)  # written into the cache entry: out of this process's memory
    if problems.messages:
        return None
    classes, class_sets = _class_indices(manifest)
    train = TrainSet(
        features,
        np.array([v.label for v in manifest.train], np.int8),
        tuple(v.video_id for v in manifest.train),
        lengths=np.array([reduction.length(s.snippets) for s in shapes.train]) if reduction.pads else None,
        classes=classes,
        class_sets=class_sets,
    )
    return TrainPart(train, sum(s.snippets for s in shapes.train), sum(1 for s in shapes.train if s.trimmed))


def build_test_part(
    manifest: Manifest, shapes: Shapes, problems: Problems, allocate: Allocate | None
) -> TestPart | None:
    """The test videos at full length, concatenated, with their ground truth (None when a problem is
    known; every readable video is still read and labelled, so that all problems are listed)."""
    lengths = np.array([s.snippets for s in shapes.test], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    features = _features(allocate, problems, "test_features", (int(offsets[-1]), shapes.crops, shapes.dim))
    for i, (test_video, shape) in enumerate(zip(manifest.test, shapes.test, strict=True)):
        with problems.collect():
            if shape.snippets:
                video = read_video(test_video.files, shape)
                if features.flags.writeable:
                    features[offsets[i] : offsets[i + 1]] = video
                    release(features)
    frame_labels = _frame_labels(manifest, lengths, problems)
    if problems.messages or frame_labels is None:
        return None
    test = TestSet(
        features=features,
        offsets=offsets,
        labels=np.array([t.files.label for t in manifest.test], np.int8),
        frame_labels=frame_labels,
        video_ids=tuple(t.files.video_id for t in manifest.test),
        classes=tuple(t.files.category for t in manifest.test),
    )
    return TestPart(test, sum(1 for s in shapes.test if s.trimmed))


def benchmark_of(name: str, primary_metric: str, manifest: Manifest, train: TrainPart, test: TestPart) -> Benchmark:
    """The benchmark of the two parts, with what the adapter reports about them (`Benchmark.meta`)."""
    crops, dim = train.train.crops, train.train.feature_dim
    meta = {**manifest.meta, "layout": _layout(manifest), "crops": crops, "feature_dim": dim}
    if train.trimmed + test.trimmed:
        meta["audio_trimmed_videos"] = train.trimmed + test.trimmed
    meta["train_snippets"] = train.snippets
    return Benchmark(name, train.train, test.test, primary_metric, meta=meta, class_names=manifest.class_names)


def _features(allocate: Allocate | None, problems: Problems, field: str, shape: tuple[int, ...]) -> np.ndarray:
    """Room for the features of one part: allocated when they are stored (nothing is wrong so far), else a
    read-only zero-stride stand-in that carries the shape (validation only)."""
    if allocate is not None and not problems.messages:
        return allocate(field, shape, np.float32)
    return np.broadcast_to(np.zeros((), np.float32), shape)


def _class_indices(manifest: Manifest) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Each training video's index in `Manifest.class_names`, and its class set where some video shows several
    classes (`TrainSet.classes` and `TrainSet.class_sets`; None without classes)."""
    if not manifest.class_names:
        return None, None
    index = {name: i for i, name in enumerate(manifest.class_names)}
    named = [(v.category, *v.other_categories) for v in manifest.train]
    unknown = sorted({name for names in named for name in names} - set(index))
    if unknown:  # an adapter's own inconsistency, not the user's
        raise ValueError(f"training video classes {unknown} are not among the adapter's {manifest.class_names}")
    classes = np.array([index[names[0]] for names in named], np.int64)
    widest = max(map(len, named), default=1)
    if widest == 1:
        return classes, None
    sets = np.full((len(named), widest), -1, np.int64)
    for row, names in zip(sets, named, strict=True):
        row[: len(names)] = [index[name] for name in names]
    return classes, sets


def _frame_labels(manifest: Manifest, lengths: np.ndarray, problems: Problems) -> np.ndarray | None:
    """The concatenated ground truth (built, or the prebuilt one when it fits); None on any problem."""
    parts = []
    for test, length in zip(manifest.test, lengths, strict=True):
        with problems.collect():
            if length:  # an unreadable video: its problem is known already
                parts.append(test.frame_labels(int(length)))
    if problems.messages:
        return None
    built = np.concatenate(parts)
    assert len(built) == pseudo_frames(int(lengths.sum()))
    if manifest.prebuilt is None:
        return built
    try:
        return check_prebuilt(np.asarray(load_npy(manifest.prebuilt)), int(lengths.sum()), str(manifest.prebuilt))
    except UsageError as error:
        problems.add(str(error))
        return None


def _probe(videos: list[VideoFiles], problems: Problems) -> list[VideoShape]:
    """Each video's shape from its headers; an unreadable video gets T = 0 and a problem."""
    shapes = []
    for video in videos:
        try:
            shapes.append(probe_video(video))
        except UsageError as error:
            problems.add(str(error))
            shapes.append(VideoShape(0, 0, 0))
    return shapes


def _consistent_crops_and_dim(videos: list[tuple[VideoFiles, VideoShape]], problems: Problems) -> tuple[int, int]:
    """The (C, D) of the first readable video; every other video with another C or D is a problem."""
    readable = [(v, s) for v, s in videos if s.snippets]
    if not readable:
        return 0, 0
    first, reference = readable[0]
    for video, shape in readable[1:]:
        if (shape.crops, shape.dim) != (reference.crops, reference.dim):
            problems.add(
                f"{video.files[0]}: C={shape.crops} crops, D={shape.dim}, but {first.files[0].name} has "
                f"C={reference.crops}, D={reference.dim}; every video needs the same crops and dimension"
            )
    return reference.crops, reference.dim


def _layout(manifest: Manifest) -> str:
    """The file layouts of the manifest's videos, as `Benchmark.meta` reports them."""
    videos = [*manifest.train, *(t.files for t in manifest.test)]
    kinds = {"wu (one file per crop)" if v.per_crop else "rtfm (one file per video)" for v in videos}
    return " + ".join(sorted(kinds))
