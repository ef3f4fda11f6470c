"""The data that flows between adapters, methods, metrics and the run store.

numpy only (no torch), so that adapters, metrics and the leaderboard never need a GPU stack.
Weak supervision is part of the types: a `TrainSet` has video labels and no frame labels at all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vadbench.api.mapped import Rows, release

#: Frames per snippet of every standard feature extractor (I3D, C3D).
SNIPPET_FRAMES = 16
#: Segments a training video is reduced to unless its method declares otherwise (RTFM, Sultani et al.).
TRAIN_SEGMENTS = 32
#: Numeric precisions a run can train and score in (`RunSpec.precision`; `vadbench.engine.acceleration`).
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True, eq=False)
class TrainSet:
    """Weakly-labelled training videos, each reduced to S segments (`vadbench.api.reduction.Reduction`).

    features: (N, C, S, D) float32 (may be a memmap, or `Rows` of one); labels: (N,) 0 = normal, 1 = abnormal;
    lengths: (N,) true segments of each video where the reduction zero-pads (None: all S);
    classes: (N,) class index of each video, 0 = normal, as `Benchmark.class_names` numbers them
    (None: the dataset has no classes); class_sets: (N, A) every class each video shows where some video
    shows several (ShanghaiTech's two-action videos): its `classes` entry first, then the others, then -1 up
    to A, the most any video shows (None: each video shows its `classes` entry alone). Weak supervision: no
    frame labels, by construction.
    """

    features: np.ndarray | Rows
    labels: np.ndarray
    video_ids: tuple[str, ...]
    lengths: np.ndarray | None = None
    classes: np.ndarray | None = None
    class_sets: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.features.ndim != 4:
            raise ValueError(f"train features must be (N, C, S, D), got shape {self.features.shape}")
        if not len(self.features) == len(self.labels) == len(self.video_ids):
            raise ValueError("train features, labels and video ids differ in length")
        for name in ("lengths", "classes"):
            values = getattr(self, name)
            if values is not None and values.shape != (len(self.video_ids),):
                raise ValueError(f"train {name} must have one entry per video, got shape {values.shape}")
        if self.class_sets is not None and (
            self.classes is None or self.class_sets.ndim != 2 or not np.array_equal(self.class_sets[:, 0], self.classes)
        ):
            raise ValueError("train class_sets must be (N, A), each row starting with the video's class")

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def crops(self) -> int:
        return int(self.features.shape[1])

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[3])

    @property
    def segment_lengths(self) -> np.ndarray:
        """(N,) true segments per video (S for every video unless the reduction pads)."""
        if self.lengths is not None:
            return self.lengths
        return np.full(len(self), self.features.shape[2], dtype=np.int64)

    def digest(self) -> str:
        """A SHA-256 of everything a run reads from the training videos (`Benchmark.fingerprint` combines it
        with the test set's): ids, features, labels and the side inputs (an edited class list, such as
        ShanghaiTech's relabel.list, is other data)."""
        digest = hashlib.sha256(json.dumps({"train_ids": self.video_ids}).encode())
        _hash_fields(digest, self, ("features", "labels", "lengths", "classes", "class_sets"))
        return digest.hexdigest()

    def subset(self, index: np.ndarray) -> TrainSet:
        """The videos at `index` (a held-out split, an abnormal subset), their features as `Rows` of this
        set's: nothing is copied."""
        features = self.features
        rows = Rows(features.base, features.index[index]) if isinstance(features, Rows) else Rows(features, index)
        return TrainSet(
            rows, self.labels[index], tuple(self.video_ids[i] for i in index),
            None if self.lengths is None else self.lengths[index],
            None if self.classes is None else self.classes[index],
            None if self.class_sets is None else self.class_sets[index],
        )

    def with_abnormal(self, count: int) -> TrainSet:
        """All normal videos and `count` of the abnormal ones (0 or more than there are: all of them).

        The abnormal videos kept are the first `count` of one fixed shuffle, so smaller sets are nested
        in larger ones and a sample-efficiency curve varies only the number of abnormal videos.
        """
        abnormal = np.flatnonzero(self.labels == 1)
        if count <= 0 or count >= len(abnormal):
            return self
        kept = np.random.default_rng(0).permutation(abnormal)[:count]
        return self.subset(np.sort(np.concatenate([kept, np.flatnonzero(self.labels == 0)])))


@dataclass(frozen=True, eq=False)
class TestSet:
    """Full-length test videos concatenated in list order, with frame-level ground truth.

    features: (sum T, C, D) float32; offsets: (V + 1,) snippet offsets of each video;
    frame_labels: (snippet_frames * sum T,) 0/1 at the pseudo-frame level (16 frames per snippet);
    classes: per-video class name ("Normal" for normal videos) for per-class metrics.
    """

    __test__ = False  # not a pytest test class, despite the name

    features: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    frame_labels: np.ndarray
    video_ids: tuple[str, ...]
    classes: tuple[str, ...]
    snippet_frames: int = SNIPPET_FRAMES

    def __post_init__(self) -> None:
        if self.features.ndim != 3:
            raise ValueError(f"test features must be (sum T, C, D), got shape {self.features.shape}")
        videos = len(self.video_ids)
        if len(self.offsets) != videos + 1 or len(self.labels) != videos or len(self.classes) != videos:
            raise ValueError("test offsets, labels, classes and video ids disagree on the number of videos")
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.features):
            raise ValueError("test offsets must start at 0 and end at the number of snippets")
        if len(self.frame_labels) != self.snippet_frames * len(self.features):
            raise ValueError(
                f"test ground truth has {len(self.frame_labels)} frames, expected "
                f"{self.snippet_frames} x {len(self.features)} snippets = "
                f"{self.snippet_frames * len(self.features)}"
            )

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def lengths(self) -> np.ndarray:
        """Snippets per test video."""
        return np.diff(self.offsets)

    def video(self, i: int) -> np.ndarray:
        """Features (T, C, D) of test video `i`."""
        return self.features[self.offsets[i] : self.offsets[i + 1]]

    def digest(self) -> str:
        """A SHA-256 of everything a run reads from the test videos (`Benchmark.fingerprint` combines it with
        the training set's): ids, classes, features, offsets, labels and ground truth."""
        digest = hashlib.sha256(json.dumps({
            "test_ids": self.video_ids, "classes": self.classes, "snippet_frames": self.snippet_frames,
        }, sort_keys=True).encode())
        _hash_fields(digest, self, ("features", "offsets", "labels", "frame_labels"))
        return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class Benchmark:
    """What a dataset adapter hands to the runner (its suggested schedule is `Dataset.suggested_steps`).

    `meta`: what the adapter reports, recorded in each result's config as ``benchmark.<key>``. Figures
    read ``anomaly_snippets`` and ``anomaly_segments`` (the anomalies' length in snippets and in pooled
    training segments) where a dataset knows them (the synthetic one does).
    Side inputs for methods that need them: class_names numbers the classes of `TrainSet.classes`
    (index 0 = "Normal"); prompts: (K, P) one vector per class index (e.g. PEL4VAD's text embeddings),
    None when the dataset has none.
    """

    name: str
    train: TrainSet
    test: TestSet
    primary_metric: str = "auc"
    meta: dict[str, Any] = field(default_factory=dict)
    class_names: tuple[str, ...] = ()
    prompts: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.train.crops != self.test.features.shape[1] or (
            self.train.feature_dim != self.test.features.shape[2]
        ):
            raise ValueError(
                f"train (C={self.train.crops}, D={self.train.feature_dim}) and test "
                f"(C={self.test.features.shape[1]}, D={self.test.features.shape[2]}) features differ"
            )

    def fingerprint(self) -> str:
        """A hash of everything a run reads from this benchmark, and nothing of where it was read from.

        It identifies data by content in the run key (`RunSpec.data`): a copied data root gives the same
        fingerprint, an edited feature file another one. `meta` (which names the cache folder) is left out.
        """
        fingerprint = self.fingerprint_of(self.train.digest(), self.test.digest())
        return fingerprint if self.prompts is None else prompted_fingerprint(fingerprint, self.prompts)

    def fingerprint_of(self, train_digest: str, test_digest: str) -> str:
        """The fingerprint (prompts aside) given the digests of its training and test sets: the preparation
        cache keeps each part's digest, so that a benchmark assembled from cached parts is not hashed again."""
        return hashlib.sha256(json.dumps({
            "name": self.name, "primary_metric": self.primary_metric, "class_names": self.class_names,
            "train": train_digest, "test": test_digest,
        }, sort_keys=True).encode()).hexdigest()[:16]


def prompted_fingerprint(fingerprint: str, prompts: np.ndarray) -> str:
    """The fingerprint of data that also carries class `prompts`: a run reads them, so they are part of its
    data (`Benchmark.fingerprint`, and a cached fingerprint extended by `vadbench.data.prompts.with_prompts`)."""
    digest = hashlib.sha256(fingerprint.encode())
    _hash_array(digest, np.asarray(prompts, np.float32))
    return digest.hexdigest()[:16]


def _hash_fields(digest: Any, owner: object, fields: tuple[str, ...]) -> None:
    """Feed each named array field of `owner` to `digest`, with its name (a field that is None: its name alone)."""
    for name in fields:
        digest.update(f"\n{name}".encode())
        array = getattr(owner, name)
        if array is not None:
            _hash_array(digest, array)


def _hash_array(digest: Any, array: np.ndarray, chunk_bytes: int = 1 << 26) -> None:
    """Feed `array`'s dtype, shape and bytes (C order) to `digest`, a block of rows at a time (a memmap is
    read piece by piece, and its pages are released after each piece: never held whole)."""
    digest.update(f"\n{array.dtype.str}{array.shape}\n".encode())
    rows = max(1, chunk_bytes // max(1, array[:1].nbytes))
    for start in range(0, len(array), rows):
        digest.update(np.ascontiguousarray(array[start : start + rows]).data)
        release(array)


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines one run's numbers; its `key` names the run in the store.

    steps None means the benchmark's suggested schedule, else the method's published one.
    `device` is not part of the key: the same experiment on another device is the same run.
    `precision` ("fp32" or "bf16" autocast) and `compile` (torch.compile, CUDA graphs) choose how the
    run executes (`vadbench.engine.acceleration`). Both change the numbers (bf16 by its rounding; compiled
    code draws its own dropout masks and orders float operations its own way: docs/gpu.md),
    so a bf16 or compiled run has its own key; fp32 and eager add nothing to the key (keys of
    existing runs stay valid). `stacked`: the seeds trained together with this one as one stacked
    model (`vadbench.engine.stacking`, whose dropout masks depend on that group), empty for a run trained
    alone; part of the key when not empty. `method_revision`: the method's `Method.revision` when the
    run was made; a method whose code changed its numbers bumps it, so that stored runs of the old
    code are never taken for new ones (part of the key from 2 on; likewise oracle-test runs carry
    the selection rule they followed). `threads`: the torch CPU threads a run on the CPU trains and
    scores with, set by the executor that runs it (`Executor.specs_as_run`) and applied by the runner: sums
    split over threads round differently, so the thread count moves the numbers (by points of AP on
    the synthetic default) and is part of the key; None for a run on a GPU, whose CPU threads only
    feed it. `save_model`: keep the trained weights beside the result (`vadbench run --save-model`); not part
    of the key (the numbers are the same), but a stored run without weights is run again when it is asked.
    `checkpoint`: the SHA-256 of the weights file a run of protocol ``given`` scores (`vadbench evaluate`);
    part of the key when set.

    A dataset that reads files names its data by content: `data` is the fingerprint of what the runs
    read (`Dataset.fingerprint`), and the options that only say where and how the files are read (its
    `Dataset.access_options`, such as the data root) are kept apart in `dataset_access`, out of the key.
    So a copied root, or the same root spelled another way, is the same run. Generated data has no
    fingerprint (None): its options define it, and its keys stay as they were.
    """

    method: str
    dataset: str = "synthetic"
    method_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    steps: int | None = None
    protocol: str = "last"
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    dataset_access: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    stacked: tuple[int, ...] = ()
    method_revision: int = 1
    threads: int | None = None
    save_model: bool = False
    checkpoint: str | None = None

    def identity(self) -> dict[str, Any]:
        """The fields that define the experiment (all but the device), JSON-ready."""
        identity = {
            "method": self.method,
            "method_options": dict(sorted(self.method_options.items())),
            "dataset": self.dataset,
            "dataset_options": dict(sorted(self.dataset_options.items())),
            "seed": self.seed,
            "steps": self.steps,
            "protocol": self.protocol,
        }
        if self.precision != "fp32":
            identity["precision"] = self.precision
        if self.data is not None:
            identity["data"] = self.data
        if self.compile:
            identity["compile"] = True
        if self.stacked:
            identity["stacked"] = list(self.stacked)
        if self.method_revision != 1:
            identity["method_revision"] = self.method_revision
        if self.threads is not None:
            identity["threads"] = self.threads
        if self.checkpoint is not None:
            identity["checkpoint"] = self.checkpoint
        if self.protocol.startswith("oracle-test"):
            # vadbench 0.1 selected on the test set by another rule (from step 5, ties to the later step).
            identity["selection_rule"] = "public-code"
        return identity

    @property
    def key(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """The fields, JSON-ready (`from_dict` reads them back; the key's derived entries stay out)."""
        identity = {k: v for k, v in self.identity().items() if k != "selection_rule"}
        saving = {"save_model": True} if self.save_model else {}
        return {**identity, "precision": self.precision, "device": self.device, "compile": self.compile,
                "dataset_access": dict(sorted(self.dataset_access.items())), **saving}

    def full_dataset_options(self) -> dict[str, Any]:
        """Every dataset option the run sets: those that define the data and those that locate it."""
        return {**self.dataset_options, **self.dataset_access}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        return cls(**{**data, "stacked": tuple(data.get("stacked", ()))})


@dataclass
class RunResult:
    """One finished (or failed) run: its spec, numbers and provenance.

    scores: per test video snippet scores, stored beside the JSON (not inside it);
    magnitudes: per test video snippet feature magnitudes, for methods that have them (plots);
    curves: the training curves (logged loss terms, selection metric at each check), stored beside it;
    weights: the evaluated model's state dict (CPU tensors), when the spec asks to save it
    (`RunSpec.save_model`), stored beside it by the driver.
    """

    spec: RunSpec
    status: str
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    device: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    magnitudes: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    curves: dict[str, Any] = field(default_factory=dict, repr=False)
    weights: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (everything but the scores)."""
        return {
            "key": self.spec.key,
            "spec": self.spec.to_dict(),
            "status": self.status,
            "metrics": self.metrics,
            "config": self.config,
            "timings": self.timings,
            "device": self.device,
            "versions": self.versions,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        return cls(
            spec=RunSpec.from_dict(data["spec"]),
            status=data["status"],
            metrics=data.get("metrics", {}),
            config=data.get("config", {}),
            timings=data.get("timings", {}),
            device=data.get("device", ""),
            versions=data.get("versions", {}),
            error=data.get("error"),
        )
