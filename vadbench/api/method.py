"""The method contract: what a WSVAD method plugin implements.

The simple path is four methods: `Method.build`, `Method.loss` on one batch, `Method.score` and
`Method.optimizer`; the engine owns everything else (data placement, batch sampling, the training
loop, mixed precision, model selection, evaluation, timing), so every method gets the same protocol
and fast path. Methods published after RTFM need more, and declare it instead of re-implementing
the engine (each declaration is optional, typed, and recorded in every result's config):

- `Method.training_input`: how a training video becomes a sample and how samples are drawn
  (`TrainingInput`: the reduction of its T snippets, crops joint or independent, balanced or mixed
  batches, and the `Sampling` of the public code: fresh draws every step, or epoch-based loaders);
- `Method.scheduler`: a learning-rate schedule stepped by the engine after every step, or after every
  epoch (`Method.scheduler_interval`);
- `Method.grad_clip`: the maximum global gradient norm;
- `Method.train_step`: a step of its own, where "loss, backward, one optimiser step" is not enough;
- `Method.padded_scoring`: whether zero-padded test batches are safe, else each video is scored alone;
- `Method.postprocess`: a test-time post-processing of each video's scores;
- `Method.magnitudes` (and `Method.score_with_magnitudes`): per-snippet feature magnitudes stored for plots;
- side inputs (`TrainBatch.classes`, `TrainBatch.class_sets`, `TrainBatch.prompts`) come from the dataset,
  never from file names.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from vadbench.api.reduction import Reduction


@dataclass(frozen=True)
class Sampling:
    """How the public code walks its training samples; the engine draws the batches the same way.

    kind ``per_step`` (the default; Sultani et al.'s code): every step draws its batch afresh, without
    replacement within the step and independently of the other steps. kind ``epochs`` (a torch
    DataLoader loop): balanced batches come from two loaders, one over the normal and one over the
    abnormal samples, each giving `Config.batch_size` samples a batch; mixed batches from one loader over
    all samples. A loader walks its samples in the training set's order (video by video, and crop by
    crop within a video when crops are independent, as the public per-crop list files are), in passes:

    - shuffle: each pass in a new random order, as ``DataLoader(shuffle=True)`` (`order`); else in order;
    - drop_last: a pass ends with its last full batch; without it, a mixed pass ends with a smaller batch
      of the samples left (a balanced batch needs equal halves: balanced loaders must drop the last);
    - restart: ``own``, each loader starts a new pass when it has given all its batches, as
      ``if (step - 1) % len(loader) == 0: iterator = iter(loader)`` does for each loader (RTFM); ``zip``,
      both start a new pass when the shorter one ends, as ``for epoch: for n, a in zip(nloader, aloader)``
      does (the longer loader's last batches are then never drawn in an unshuffled order). With one
      (mixed) loader, ``zip`` is ``for epoch: for batch in loader`` and ``own`` the step-count restart:
      the same batches, but a ``for`` loop reads each pass to its end (see workers);
    - workers: the public loader's ``num_workers``. They do not change the order of a pass, but they read
      it ahead of the batches (2 batches per worker), so a pass that the code leaves before its end may
      still have been read to its end, which makes torch's sampler draw once more from the generator.

    The per-class batch is clamped to the smaller class, so a loader gives at least one batch a pass. A
    pass of the one mixed loader, or of the zipped pair, is an epoch (`Method.scheduler_interval`). Each
    loader shuffles with a generator of its own, seeded from the run's seed
    (`vadbench.engine.sampling.loader_generator`), where the public ``DataLoader`` shuffles with torch's
    global generator (shared with initialisation and dropout); with that generator, a loader's batches
    are those of ``DataLoader(range(n), batch_size, shuffle=..., drop_last=..., num_workers=...,
    generator=...)`` iterated with the declared restart, index for index.

    A method whose code walks its samples in an order of its own subclasses `Sampling` and overrides
    `order`. A code that draws a random perturbation of each video every epoch applies it in its loss,
    to the batch: with epoch-based loaders each sample is visited once per epoch, so a fresh draw every
    visit is a fresh draw every epoch (it perturbs the reduced samples the engine holds).
    """

    kind: Literal["per_step", "epochs"] = "per_step"
    shuffle: bool = True
    drop_last: bool = True
    restart: Literal["own", "zip"] = "own"
    workers: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("per_step", "epochs"):
            raise ValueError(f"Sampling.kind must be 'per_step' or 'epochs', got {self.kind!r}")
        if self.restart not in ("own", "zip"):
            raise ValueError(f"Sampling.restart must be 'own' or 'zip', got {self.restart!r}")
        if self.workers < 0:
            raise ValueError(f"Sampling.workers must be at least 0, got {self.workers}")

    def order(self, count: int, generator: torch.Generator) -> Iterator[int]:
        """The `count` sample positions one pass of a loader visits, in order, as a torch sampler's
        ``__iter__`` yields them (read lazily, batch by batch): torch's ``RandomSampler`` with `generator`
        when shuffled, else the training order. The engine has drawn the ``DataLoader`` iterator's base
        seed from `generator` before, as creating the iterator does."""
        if not self.shuffle:
            yield from range(count)
            return
        yield from torch.randperm(count, generator=generator).tolist()
        # RandomSampler then draws the permutation of its last num_samples % count = 0 positions: once
        # the pass has been read to its end, not when the code leaves it before.
        torch.randperm(count, generator=generator)

    def record(self) -> dict[str, Any]:
        """The declaration as flat config entries (``input.sampling`` ...)."""
        if self.kind == "per_step":
            return {"input.sampling": self.kind}
        own_order = type(self).order is not Sampling.order
        return {
            "input.sampling": self.kind, "input.shuffle": self.shuffle, "input.drop_last": self.drop_last,
            "input.restart": self.restart, "input.workers": self.workers,
            "input.order": type(self).__qualname__ if own_order else "torch",
        }


@dataclass(frozen=True)
class TrainingInput:
    """How the engine turns the training videos into the samples of a batch, and draws the batches.

    reduction: how a video of T snippets becomes S segments (`vadbench.api.reduction.Reduction`; RTFM's
    mean over 32 segments by default). crops: ``joint`` keeps a video's C crops together in one sample
    (B, C, S, D), as RTFM and MGFN train; ``independent`` makes every crop a sample of its own (B, S, D),
    as UR-DMU, PEL4VAD and BN-WVAD train. batch: ``balanced`` draws `Config.batch_size` normal and as
    many abnormal samples, normal first; ``mixed`` draws `Config.batch_size` samples from all of them.
    sampling: how the public code draws them (`Sampling`; by default afresh every step).

    Example (UR-DMU): ``TrainingInput(Reduction("mean", 200), crops="independent", sampling=Sampling("epochs"))``.
    """

    reduction: Reduction = field(default_factory=Reduction)
    crops: Literal["joint", "independent"] = "joint"
    batch: Literal["balanced", "mixed"] = "balanced"
    sampling: Sampling = field(default_factory=Sampling)

    def __post_init__(self) -> None:
        if self.crops not in ("joint", "independent"):
            raise ValueError(f"TrainingInput.crops must be 'joint' or 'independent', got {self.crops!r}")
        if self.batch not in ("balanced", "mixed"):
            raise ValueError(f"TrainingInput.batch must be 'balanced' or 'mixed', got {self.batch!r}")
        if self.batch == "balanced" and self.sampling.kind == "epochs" and not self.sampling.drop_last:
            raise ValueError("balanced batches from epoch-based loaders need Sampling(drop_last=True): "
                             "a smaller last batch would make the normal and abnormal halves unequal")

    def record(self) -> dict[str, Any]:
        """The declaration as flat config entries (``input.segments`` ...)."""
        return {**self.reduction.record(), "input.crops": self.crops, "input.batch": self.batch,
                **self.sampling.record()}


class TrainBatch(NamedTuple):
    """One training batch as the engine hands it to `Method.loss` (a pytree, so stacked runs vmap it).

    features: (B, C, S, D) with joint crops, (B, S, D) with independent crops; labels: (B,) float 0/1
    (balanced batches: the first half normal); lengths: (B,) true segments of each sample (S unless
    the reduction pads); classes: (B,) class index of each sample's video (0 = normal; -1 when the
    dataset has no classes); prompts: (K, P) one vector per class index, from the dataset ((0, 0) when
    it supplies none); class_sets: (B, A) every class of each sample's video, its `classes` entry first,
    then -1 up to A (`vadbench.api.types.TrainSet.class_sets`; ``classes[:, None]`` where every video
    shows one class).
    """

    features: torch.Tensor
    labels: torch.Tensor
    lengths: torch.Tensor
    classes: torch.Tensor
    prompts: torch.Tensor
    class_sets: torch.Tensor

    @classmethod
    def balanced(cls, normal: torch.Tensor, abnormal: torch.Tensor) -> TrainBatch:
        """A balanced batch of `normal` then `abnormal` samples, unpadded, without side inputs (for tests
        and hand-made batches)."""
        features = torch.cat([normal, abnormal])
        count, device = len(features), features.device
        return cls(
            features,
            torch.cat([torch.zeros(len(normal), device=device), torch.ones(len(abnormal), device=device)]),
            torch.full((count,), features.shape[-2], device=device),
            torch.full((count,), -1, device=device),
            features.new_zeros((0, 0)),
            torch.full((count, 1), -1, device=device),
        )

    @property
    def normal(self) -> torch.Tensor:
        """The normal half of a balanced batch."""
        return self.features[: len(self.features) // 2]

    @property
    def abnormal(self) -> torch.Tensor:
        """The abnormal half of a balanced batch."""
        return self.features[len(self.features) // 2 :]


class Method(abc.ABC):
    """Base class of methods. Subclasses set ``Config``: a frozen dataclass of all hyper-parameters.

    ``Config`` must have ``batch_size`` (samples per class in a balanced batch, per batch in a mixed
    one) and ``steps`` (the published number of training iterations). Constructors only store the
    config. Class attributes declare what the engine must do beyond the simple path (see the module
    docstring); their defaults are RTFM's.
    """

    Config: ClassVar[type]
    #: Bumped whenever a change of the method's code changes its numbers at the same options: the
    #: revision is part of the run key (`RunSpec.method_revision`), so runs of the old code are not reused.
    revision: ClassVar[int] = 1
    #: Options the runner reads from every method's Config: a Config without them is refused when registered.
    required_options: ClassVar[tuple[str, ...]] = ("batch_size", "steps")
    #: Whether zero-padded test batches give each video the scores it gets alone ("safe"), or the engine
    #: must score every test video alone ("alone").
    padded_scoring: ClassVar[Literal["safe", "alone"]] = "safe"
    #: Whether the seeds of one configuration may train as one vmapped model (`vadbench.engine.stacking`); a
    #: method with a step of its own, a global gradient clip or state outside its parameters may not.
    stackable: ClassVar[bool] = True
    #: Boolean options that an ablation table shows as check-mark columns, option -> column title (RTFM
    #: declares its Table 5 switches). Recorded in each result, so tables need no plugin.
    table_marks: ClassVar[Mapping[str, str]] = {}
    #: Options counted in the pooled training segments of a video, option -> what it counts (RTFM's top-k):
    #: a sweep plot against one says so on its axis and marks the benchmark's anomaly length in segments
    #: (``anomaly_segments`` in `Benchmark.meta`). Recorded in each result.
    segment_options: ClassVar[Mapping[str, str]] = {}
    #: Side inputs the method reads from its batches: ``classes`` (each video's class index, refused on a
    #: dataset without classes) and ``prompts`` (one vector per class; `vadbench.data.prompts` gives a
    #: marked stand-in when the dataset has none). Recorded in each result.
    side_inputs: ClassVar[frozenset[str]] = frozenset()
    #: When the engine steps the `scheduler`: after every training ``step``, or after the last step of
    #: every ``epoch`` (a pass of the declared `Sampling`: its one mixed loader, or its zipped loaders; a
    #: method declaring it must declare such epochs), as a code that calls ``scheduler.step()`` once per
    #: epoch does. Recorded in each result.
    scheduler_interval: ClassVar[Literal["step", "epoch"]] = "step"
    #: Whether `score` returns probabilities in [0, 1]. A method whose scores are unbounded (BN-WVAD's
    #: distance x sigmoid) declares False: the conformance checks then ask only for finite scores, and its
    #: results record the false-alarm rate at 0.5 as absent (None), since the threshold means nothing there.
    probability_scores: ClassVar[bool] = True

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def batch_size(self) -> int:
        return int(self.config.batch_size)

    @property
    def steps(self) -> int:
        return int(self.config.steps)

    @property
    def training_input(self) -> TrainingInput:
        """How training videos become samples; override (a property may read the config) to change it."""
        return TrainingInput()

    @abc.abstractmethod
    def build(self, crops: int, feature_dim: int) -> nn.Module:
        """A freshly initialised model for features with `crops` crops of `feature_dim` dimensions."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        """Training loss on one `TrainBatch` (balanced batches: ``batch.normal``, ``batch.abnormal``).

        Returns ``{"loss": total, ...}``; the other entries are detached terms for logging.
        """

    @abc.abstractmethod
    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Snippet anomaly scores, shape (B, T), for zero-padded videos (B, T, C, D); probabilities in
        [0, 1] unless the method declares ``probability_scores = False``.

        ``lengths`` (B,) gives each video's true T. With ``padded_scoring = "safe"`` a video's scores
        must not depend on the padding (the engine batches test videos of different lengths).
        """

    @abc.abstractmethod
    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """The optimiser of the published method."""

    def scheduler(self, optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
        """A learning-rate schedule, or None (the default: constant learning rate). The engine steps it
        after every training step of the `steps`, or after every epoch (`scheduler_interval`)."""
        return None

    def grad_clip(self) -> float | None:
        """The maximum global norm the gradients are clipped to before each update, or None (default)."""
        return None

    def train_step(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batch: TrainBatch
    ) -> dict[str, torch.Tensor]:
        """A training step of the method's own, for a method whose update is not "loss, backward, the
        declared clip, one optimiser step" (the engine's step, `vadbench.engine.training.TrainingStep`,
        which runs for every method that does not override this). An override runs eagerly: no
        stacking, no CUDA graph. Returns the loss terms, as `loss` does.
        """
        raise NotImplementedError("the engine's own step runs unless a method overrides train_step")

    def prompt_width(self) -> int | None:
        """The width P the class prompt vectors must have for a method that reads ``prompts``
        (`side_inputs`), checked against the dataset's prompt file before training; None (default): any."""
        return None

    def postprocess(self, scores: np.ndarray) -> np.ndarray:
        """Test-time post-processing of one video's snippet scores (T,); the default keeps them."""
        return scores

    def magnitudes(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor | None:
        """Per-snippet feature magnitudes (B, T) where the method has them (for plots); else None. The
        engine scores them as it scores the test set (same padding rule), so they are trimmed to each
        video's length and with ``padded_scoring = "safe"`` must not depend on the padding either."""
        return None

    def score_with_magnitudes(
        self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`score` and `magnitudes` of one batch, as the engine's test pass stores both. The default calls
        the two; a method whose magnitudes and scores come out of one forward pass overrides it to run
        that pass once (the results must equal the two calls': a conformance check compares them)."""
        return self.score(model, features, lengths), self.magnitudes(model, features, lengths)

    def declarations(self) -> dict[str, Any]:
        """What this method declares beyond the simple path, as flat config entries for the result
        (the engine adds the scheduler it built)."""
        own = type(self)
        return {
            **self.training_input.record(),
            "padded_scoring": self.padded_scoring,
            "probability_scores": self.probability_scores,
            "grad_clip": self.grad_clip(),
            "scheduler_interval": self.scheduler_interval,
            "train_step": "own" if own.train_step is not Method.train_step else "default",
            "postprocess": f"{own.__qualname__}.postprocess" if own.postprocess is not Method.postprocess else "none",
            "side_inputs": ",".join(sorted(self.side_inputs)) or "none",
        }


def valid_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) boolean mask of the real (not padded) snippets."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]
