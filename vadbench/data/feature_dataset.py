"""The base of adapters that read pre-extracted features from a data root, and the options they share.

An adapter only says *which* files make up its benchmark (`FeatureDataset.resolve` returns its
`vadbench.data.manifest.Manifest`, with `locate` finding a split's videos through list files or official ids,
`vadbench.data.video_lists`); the base assembles the benchmark (`vadbench.data.assembly`), through the preparation
cache unless it is off (`vadbench.data.cached_assembly`), and validates the root for `vadbench data check` on the
same code path, so that a new adapter gets all of that by describing its files.
"""

from __future__ import annotations

import abc
import dataclasses
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from vadbench.api.dataset import Dataset
from vadbench.api.errors import UsageError
from vadbench.api.reduction import DEFAULT_REDUCTION, Reduction
from vadbench.api.types import Benchmark
from vadbench.data.assembly import assemble, in_memory
from vadbench.data.cached_assembly import assemble_through_cache
from vadbench.data.check import CheckReport, Problems, summarize
from vadbench.data.file_index import FileIndex
from vadbench.data.manifest import Manifest, refuse_shared_videos
from vadbench.data.official import Bundle
from vadbench.data.prepcache import CacheEntry, PrepCache, holding
from vadbench.data.prompts import with_prompts
from vadbench.data.video_lists import SplitVideos, locate_split

#: Name of the cache folder inside the data root when no ``cache_dir`` is given.
CACHE_FOLDER = ".vadbench-cache"


@dataclass(frozen=True)
class FeatureConfig:
    """Options every file-backed adapter has.

    root: the data root (required). layout: the feature files' layout ("rtfm": one [T, C, D] file per
    video; "wu": one [T, D] file per crop), "auto" detects it per video.
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
    layout: Literal["auto", "rtfm", "wu"] = "auto"
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
            # to count every problem in the one-line error
            assemble(self.name, self.primary_metric, manifest, problems, None, reduction)
            self._raise(problems)
        if self.config.cache:
            benchmark = assemble_through_cache(PrepCache(self.cache_folder(root)), self.name, self.primary_metric,
                                               self._identity(), manifest, problems, reduction)
        else:
            benchmark = assemble(self.name, self.primary_metric, manifest, problems, in_memory, reduction)
        self._raise(problems)
        assert benchmark is not None
        return benchmark

    def check(self) -> CheckReport:
        """Every problem of the data root (reading every file once, writing nothing), or a summary."""
        problems = Problems()
        try:
            root = self.root()
            manifest = self._resolve(root, problems)
        except UsageError as error:
            return CheckReport([*problems.messages, str(error)])
        benchmark = assemble(self.name, self.primary_metric, manifest, problems, None, DEFAULT_REDUCTION)
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
        """The `split`'s videos from its list file (option ``<split>_list``, else a published pair of
        `known_lists` under the root), else from `official_ids` looked up by id under the root
        (`vadbench.data.video_lists.locate_split`)."""
        try:
            chosen = self.option_file(index, f"{split}_list")
        except UsageError as error:
            problems.add(str(error))
            return SplitVideos()
        return locate_split(index, problems, split, chosen, known_lists, official_ids, self.config.layout)

    # -- internals -------------------------------------------------------------------------------------

    def _resolve(self, root: Path, problems: Problems) -> Manifest:
        """The adapter's manifest with what every adapter adds alike: the bundled official files it used, a video
        in both splits refused, and the prebuilt ground truth of option ``gt``."""
        index = FileIndex(root, skip=self.cache_folder(root))
        manifest = self.resolve(index, problems)
        bundled = sorted({path.name for path in manifest.sources if self.bundle.holds(path)})
        if bundled:  # recorded, so that a result says which official files came with vadbench
            manifest.meta["bundled"] = ", ".join(bundled)
        refuse_shared_videos(manifest, problems)
        with problems.collect():
            manifest.prebuilt = self.option_file(index, "gt")
        return manifest

    def _identity(self) -> dict[str, Any]:
        """The adapter and its options that shape the prepared arrays: part of each cache entry's key."""
        options = {
            k: v for k, v in dataclasses.asdict(self.config).items()
            # the files' absolute paths locate the data; one cache serves every subset, prompt file and name
            if k not in ("root", "cache", "cache_dir", "abnormal_subset", "prompts", "feature_set")
        }
        return {"adapter": f"{type(self).__module__}.{type(self).__qualname__}", "name": self.name, **options}

    def _raise(self, problems: Problems) -> None:
        problems.raise_first(f"`vadbench data check {self.name} --root {self.config.root}` lists them all")
