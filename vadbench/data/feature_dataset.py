"""The shared machinery of adapters that read pre-extracted features from a data root.

An adapter only says *which* files make up its benchmark (its `Manifest`: videos with labels and feature
files, plus how to build each test video's frame labels from its annotations); this module reads and
validates them, pools the training videos, concatenates the test videos, builds the ground truth,
and goes through the preparation cache. Validation collects every problem, so one code path serves
both `load()` (which raises the first problem) and `check()` (which lists them all).
"""

from __future__ import annotations

import abc
import dataclasses
import shlex
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from vadbench.api.dataset import Dataset
from vadbench.api.errors import UsageError
from vadbench.api.mapped import release
from vadbench.api.reduction import DEFAULT_REDUCTION, Reduction
from vadbench.api.types import Benchmark, TestSet, TrainSet
from vadbench.data.annotations import parse_feature_list
from vadbench.data.check import CheckReport, Problems, summarize
from vadbench.data.file_index import FileIndex, find_video, layout_of, read_text, resolve_listed
from vadbench.data.groundtruth import check_prebuilt, pseudo_frames
from vadbench.data.npy import VideoFiles, VideoShape, load_npy, probe_video, read_video
from vadbench.data.official import Bundle
from vadbench.data.pooling import reduce_video
from vadbench.data.prepcache import Allocate, CacheEntry, P, PrepCache, Slot, TestPart, TrainPart, holding
from vadbench.data.prompts import with_prompts

#: Name of the cache folder inside the data root when no ``cache_dir`` is given.
CACHE_FOLDER = ".vadbench-cache"


@dataclass(frozen=True)
class FeatureConfig:
    """Options every file-backed adapter has.

    root: the data root (required). features: the file layout, "auto" detects it per video.
    gt: a prebuilt ``gt-*.npy`` (path or name under the root) used instead of the built ground truth
    when its length fits. cache: use the preparation cache, kept in cache_dir (default
    ``<root>/.vadbench-cache``). abnormal_subset: train on this many of the abnormal training videos
    (0: all; a fixed, nested choice, see `TrainSet.with_abnormal`), for sample-efficiency curves.
    prompts: a ``.npy`` of class prompt vectors (K, P), row 0 normal, then the adapter's classes
    (`vadbench.data.prompts`; PEL4VAD's CLIP embeddings); empty: none (a method needing them gets a
    marked stand-in). feature_set: the name of the features the root holds (e.g. ``i3d-r50``), shown in
    tables with their crops and dimension; empty: named by their file layout, "rtfm" (one [T, C, D] file
    per video, RTFM's I3D-ResNet50 2048-d) or "wu" (one [T, D] file per crop, Wu et al.'s I3D 1024-d).
    """

    root: str = ""
    features: Literal["auto", "rtfm", "wu"] = "auto"
    gt: str = ""
    cache: bool = True
    cache_dir: str = ""
    abnormal_subset: int = 0
    prompts: str = ""
    feature_set: str = ""

    def __post_init__(self) -> None:
        if self.abnormal_subset < 0:
            raise ValueError(f"abnormal_subset must be >= 0 (0: all), got {self.abnormal_subset}")


@dataclass(frozen=True)
class ListsConfig(FeatureConfig):
    """Options of adapters whose videos may come from published list files.

    train_list / test_list: feature list files (a path, or a name found under the root); empty means
    the first published list pair found under the root whose files are there too, else the official
    split files.
    """

    train_list: str = ""
    test_list: str = ""


@dataclass(frozen=True)
class Located:
    """A video id and its feature files, found through a list or by id."""

    video_id: str
    files: tuple[Path, ...]
    per_crop: bool


@dataclass
class SplitVideos:
    """One split as resolved: the videos whose files were found, every id named, and the order's source."""

    videos: list[Located] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    order: str = "nothing"
    #: False when the list or split file could not be read: then no id is known, and cross-checks
    #: of annotations against the ids would only repeat that problem.
    complete: bool = False


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


class FeatureDataset(Dataset):
    """Base of the real-benchmark adapters: subclasses set `name`, `Config`, `needs` and write `resolve`."""

    name: ClassVar[str]
    #: What the root must hold, for the message when --root is missing.
    needs: ClassVar[str]
    primary_metric: ClassVar[str] = "auc"
    #: The official files the adapter ships (`vadbench.data.official`), used when the root lacks them.
    bundle: ClassVar[Bundle] = Bundle(None)
    #: Where the files lie and whether the cache is used: the run key has the data's fingerprint instead.
    access_options: ClassVar[frozenset[str]] = frozenset({"root", "cache", "cache_dir", "prompts"})
    config: FeatureConfig

    @abc.abstractmethod
    def resolve(self, index: FileIndex, problems: Problems) -> Manifest:
        """The benchmark's manifest: its videos, labels, feature files and annotations as found under the root;
        every problem found is added to `problems`."""

    # -- public API --------------------------------------------------------------------------------

    def load(self, reduction: Reduction = DEFAULT_REDUCTION) -> Benchmark:
        benchmark = with_prompts(self._load_all(reduction), self.config.prompts)
        layout = str(benchmark.meta.get("layout", ""))
        name = self.config.feature_set or ("wu" if layout.startswith("wu") else "rtfm")
        return dataclasses.replace(benchmark, train=benchmark.train.with_abnormal(self.config.abnormal_subset),
                                   meta={**benchmark.meta, "feature_set": name})

    def fingerprint(self, reduction: Reduction = DEFAULT_REDUCTION) -> str:
        """The fingerprint of every video of the root as `reduction` prepares it (and of the prompt vectors,
        if any): kept in the cache entry, so hashed on its first use only (without the cache, each time)."""
        benchmark = with_prompts(self._load_all(reduction), self.config.prompts)
        return benchmark.meta.get("fingerprint") or benchmark.fingerprint()

    def _load_all(self, reduction: Reduction) -> Benchmark:
        """Every video of the root (through the cache), before any training subset is taken."""
        root = self.root()
        problems = Problems()
        manifest = self._resolve(root, problems)
        if problems.messages:
            self._assemble(manifest, problems, None, reduction)  # to count every problem in the one-line error
            self._raise(problems)
        if self.config.cache:
            benchmark = self._through_cache(PrepCache(self.cache_folder(root)), manifest, problems, reduction)
        else:
            benchmark = self._assemble(manifest, problems, _in_memory, reduction)
        self._raise(problems)
        assert benchmark is not None
        return benchmark

    def _through_cache(
        self, cache: PrepCache, manifest: Manifest, problems: Problems, reduction: Reduction
    ) -> Benchmark | None:
        """The benchmark from its cached test and training parts, preparing (and caching) the missing ones.

        The test part depends on the configuration alone, so a new reduction reads the training files only.
        """
        identity = self._identity()
        test_videos = [t.files for t in manifest.test]
        train_slot = cache.slot(self.name, f"train-{reduction.key}", identity,
                                self._source_files(manifest, manifest.train))
        test_slot = cache.slot(self.name, "test", identity, self._source_files(manifest, test_videos))
        train, test = cache.load(train_slot, TrainPart), cache.load(test_slot, TestPart)
        if train is None or test is None:
            shapes = self._measure(manifest, problems, train, test)
            if train is None:
                train = _prepare(cache, train_slot, problems,
                                 lambda allocate: self._train_part(manifest, shapes, problems, allocate, reduction))
            if test is None:
                test = _prepare(cache, test_slot, problems,
                                lambda allocate: self._test_part(manifest, shapes, problems, allocate))
        if train is None or test is None:
            return None
        benchmark = self._benchmark(manifest, train, test)
        meta = {**benchmark.meta, "cache": str(cache.directory)}
        if train.digest and test.digest:  # both from the cache: their fingerprint without hashing them again
            meta["fingerprint"] = benchmark.fingerprint_of(train.digest, test.digest)
        return dataclasses.replace(benchmark, meta=meta)

    def check(self) -> CheckReport:
        """Every problem of the data root (reading every file once, writing nothing), or a summary."""
        problems = Problems()
        try:
            root = self.root()
            manifest = self._resolve(root, problems)
        except UsageError as error:
            return CheckReport([*problems.messages, str(error)])
        benchmark = self._assemble(manifest, problems, None, DEFAULT_REDUCTION)
        if problems.messages or benchmark is None:
            return CheckReport(problems.messages)
        details = {k: v for k, v in benchmark.meta.items() if k not in ("crops", "feature_dim")}
        details["preparation cache"] = self._cache_summary(root)
        return CheckReport([], summarize(benchmark, {"root": str(root), **details}))

    def cache_entries(self) -> tuple[PrepCache, list[CacheEntry]]:
        """The preparation cache of the root and this dataset's entries in it (`vadbench data cache`)."""
        cache = PrepCache(self.cache_folder(self.root()))
        if cache.directory.exists() and not cache.directory.is_dir():
            raise UsageError(f"dataset {self.name!r}: the preparation cache {cache.directory} is not a folder")
        return cache, cache.entries(self.name)

    def _cache_summary(self, root: Path) -> str:
        """How much the preparation cache holds, and how to see and remove its entries."""
        _, entries = self.cache_entries()
        if not entries:
            return f"empty ({self.cache_folder(root)})"
        command = shlex.join(["vadbench", "data", "cache", self.name, "--root", self.config.root] + (
            ["--set", f"cache_dir={self.config.cache_dir}"] if self.config.cache_dir else []))
        stale = any(entry.state != "current" for entry in entries)
        return f"{holding(entries)}; `{command}{' --remove-stale' if stale else ''}` " + (
            "removes the stale ones" if stale else "lists them")

    # -- helpers for subclasses ----------------------------------------------------------------------

    def root(self) -> Path:
        """The configured data root, or a UsageError saying what is expected there."""
        if not self.config.root:
            raise UsageError(f"dataset {self.name!r} needs --root DIR (the folder with {self.needs})")
        root = Path(self.config.root).expanduser()
        if not root.is_dir():
            raise UsageError(f"dataset {self.name!r}: --root {root} is not a directory")
        return root

    def cache_folder(self, root: Path) -> Path:
        return Path(self.config.cache_dir).expanduser() if self.config.cache_dir else root / CACHE_FOLDER

    def option_file(self, index: FileIndex, option: str) -> Path | None:
        """The file named by option `option` (a path, or a file name under the root), None when unset."""
        value = getattr(self.config, option)
        if not value:
            return None
        path = Path(value).expanduser()
        if path.is_file():
            return path
        if not path.is_absolute() and (index.root / path).is_file():
            return index.root / path
        found = index.find(path.name)
        if found is None:
            raise UsageError(f"option {option}={value}: no such file (nor {path.name} under {index.root})")
        return found

    def locate(
        self,
        index: FileIndex,
        problems: Problems,
        split: Literal["train", "test"],
        known_lists: tuple[tuple[str, str], ...],
        official_ids: Callable[[], list[str]],
    ) -> SplitVideos:
        """The `split`'s videos from its list file, else from `official_ids` looked up by id under the root.

        A video whose files are missing is a problem and not among the videos, but stays among the ids
        (so that annotations naming it are not reported as naming an unknown video).
        """
        result = SplitVideos()
        try:
            listed = self._list_file(index, split, known_lists)
            if listed is None:
                result.order = "the official split files"
                result.ids = official_ids()
                result.complete = True
                for video_id in result.ids:
                    with problems.collect():
                        files, per_crop = find_video(index, video_id, self.config.features)
                        result.videos.append(Located(video_id, files, per_crop))
                return result
            result.order = str(listed)
            entries = parse_feature_list(read_text(listed), str(listed))
        except UsageError as error:
            problems.add(str(error))
            return result
        result.ids = [entry.video_id for entry in entries]
        result.complete = True
        for entry in entries:
            with problems.collect():
                if self.config.features not in ("auto", layout_of(entry)):
                    raise UsageError(
                        f"{listed}: line {entry.line}: {entry.names[0]} is not in the "
                        f"features={self.config.features} layout"
                    )
                files = resolve_listed(index, entry, str(listed))
                result.videos.append(Located(entry.video_id, files, entry.per_crop))
        return result

    def _list_file(
        self, index: FileIndex, split: str, known_lists: tuple[tuple[str, str], ...]
    ) -> Path | None:
        """The list file of `split`: the option's file, else a published pair under the root.

        Of several published pairs, the first whose first listed files are there (the user's features);
        when none is, the first pair anyway, so that the missing files are reported against it.
        """
        chosen = self.option_file(index, f"{split}_list")
        if chosen is not None:
            return chosen
        present = []
        for names in known_lists:
            pair = [index.find(name) for name in names]
            if pair[0] is not None and pair[1] is not None:
                present.append((pair[0], pair[1]))
        if not present:
            return None
        usable = [pair for pair in present if all(_first_entry_found(index, path) for path in pair)]
        return (usable or present)[0][0 if split == "train" else 1]

    # -- internals -------------------------------------------------------------------------------------

    def _resolve(self, root: Path, problems: Problems) -> Manifest:
        index = FileIndex(root, skip=self.cache_folder(root))
        manifest = self.resolve(index, problems)
        bundled = sorted({path.name for path in manifest.sources if self.bundle.holds(path)})
        if bundled:  # recorded, so that a result says which official files came with vadbench
            manifest.meta["bundled"] = ", ".join(bundled)
        _refuse_shared_videos(manifest, problems)
        with problems.collect():
            manifest.prebuilt = self.option_file(index, "gt")
        return manifest

    def _identity(self) -> dict[str, Any]:
        options = {
            k: v for k, v in dataclasses.asdict(self.config).items()
            # the files' absolute paths locate the data; one cache serves every subset, prompt file and name
            if k not in ("root", "cache", "cache_dir", "abnormal_subset", "prompts", "feature_set")
        }
        return {"adapter": f"{type(self).__module__}.{type(self).__qualname__}", "name": self.name, **options}

    @staticmethod
    def _source_files(manifest: Manifest, videos: list[VideoFiles]) -> list[Path]:
        """The files a part made of `videos` is read from: theirs, and the lists, annotations and ground truth
        (which say which videos there are and how they are labelled)."""
        files = [*manifest.sources, *([manifest.prebuilt] if manifest.prebuilt else [])]
        for video in videos:
            files.extend(video.files)
            if video.audio is not None:
                files.append(video.audio)
        return files

    def _raise(self, problems: Problems) -> None:
        problems.raise_first(f"`vadbench data check {self.name} --root {self.config.root}` lists them all")

    def _assemble(
        self, manifest: Manifest, problems: Problems, allocate: Allocate | None, reduction: Reduction
    ) -> Benchmark | None:
        """Read, validate and arrange every video; None (with `problems` filled) when something is wrong.

        allocate None only validates (data check): nothing is stored and the returned benchmark's
        features are zero-stride stand-ins that carry the shapes for the summary.
        """
        shapes = self._measure(manifest, problems)
        train = self._train_part(manifest, shapes, problems, allocate, reduction)
        test = self._test_part(manifest, shapes, problems, allocate)
        return None if train is None or test is None else self._benchmark(manifest, train, test)

    def _measure(
        self, manifest: Manifest, problems: Problems, train: TrainPart | None = None, test: TestPart | None = None
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
            problems.add(f"dataset {self.name!r}: no {'training' if not manifest.train else 'test'} videos found")
        return Shapes(train_shapes, test_shapes, crops, dim)

    def _train_part(
        self, manifest: Manifest, shapes: Shapes, problems: Problems, allocate: Allocate | None, reduction: Reduction
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

    def _test_part(
        self, manifest: Manifest, shapes: Shapes, problems: Problems, allocate: Allocate | None
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

    def _benchmark(self, manifest: Manifest, train: TrainPart, test: TestPart) -> Benchmark:
        """The benchmark of the two parts, with what the adapter reports about them (`Benchmark.meta`)."""
        crops, dim = train.train.crops, train.train.feature_dim
        meta = {**manifest.meta, "layout": _layout(manifest), "crops": crops, "feature_dim": dim}
        if train.trimmed + test.trimmed:
            meta["audio_trimmed_videos"] = train.trimmed + test.trimmed
        meta["train_snippets"] = train.snippets
        return Benchmark(self.name, train.train, test.test, self.primary_metric, meta=meta,
                         class_names=manifest.class_names)


@dataclass(frozen=True)
class Shapes:
    """The shapes of the videos a preparation reads (none for a part taken from the cache), and the (C, D)
    every video has."""

    train: list[VideoShape]
    test: list[VideoShape]
    crops: int
    dim: int


def _features(allocate: Allocate | None, problems: Problems, field: str, shape: tuple[int, ...]) -> np.ndarray:
    """Room for the features of one part: allocated when they are stored (nothing is wrong so far), else a
    read-only zero-stride stand-in that carries the shape (validation only)."""
    if allocate is not None and not problems.messages:
        return allocate(field, shape, np.float32)
    return np.broadcast_to(np.zeros((), np.float32), shape)


def _prepare(cache: PrepCache, slot: Slot, problems: Problems, build: Callable[[Allocate], P | None]) -> P | None:
    """The part `build` prepares, written into the cache; in memory when the cache cannot be written (a
    read-only root must not stop a run)."""
    known = len(problems)
    try:
        return cache.write(slot, build)
    except OSError as error:
        warnings.warn(f"cannot write the preparation cache in {cache.directory}: {error}", stacklevel=3)
        del problems.messages[known:]  # found again by the second attempt
        return build(_in_memory)


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


def abnormal_first(ids: list[str], abnormal: Callable[[str], bool]) -> list[str]:
    """`ids` with the abnormal videos first, each group in its original order (the published lists' order)."""
    return [i for i in ids if abnormal(i)] + [i for i in ids if not abnormal(i)]


def _refuse_shared_videos(manifest: Manifest, problems: Problems) -> None:
    """A video in both splits would be trained on and then tested: a leak that inflates every metric."""
    training = {video.video_id for video in manifest.train}
    for test in manifest.test:
        if test.files.video_id in training:
            problems.add(
                f"{test.files.files[0]}: video {test.files.video_id} is both a training and a test video; "
                "expected disjoint splits"
            )


def _first_entry_found(index: FileIndex, path: Path) -> bool:
    """Whether the first file a list names is under the root (which tells the user's lists apart)."""
    try:
        entries = parse_feature_list(read_text(path), str(path))
    except UsageError:
        return True  # a broken list is reported when it is read
    return all(index.find(name) is not None for name in entries[0].names[:1])


def _in_memory(field: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Arrays of a benchmark built without the cache: held whole in the process's memory, the prepared training
    set and the test set (UCF-Crime's 10 x 2048-d features: 4.2 and 5.7 GB for RTFM's 32 segments), per process."""
    return np.empty(shape, dtype=dtype)


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
    videos = [*manifest.train, *(t.files for t in manifest.test)]
    kinds = {"wu (one file per crop)" if v.per_crop else "rtfm (one file per video)" for v in videos}
    return " + ".join(sorted(kinds))
