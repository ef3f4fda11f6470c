"""The method contract: what a WSVAD method plugin implements.

The simple path is four methods: `Method.build`, `Method.loss` on one batch, `Method.score` and
`Method.optimizer`; the engine owns everything else (data placement, batch sampling, the training
loop, mixed precision, model selection, evaluation, timing), so every method gets the same protocol
and fast path. Methods published after RTFM need more, and declare it in one place instead of
re-implementing the engine: `Method.declarations` returns a frozen `Declarations` (as scikit-learn's
estimator tags), whose every field is optional, typed, and recorded in every result's config:

- `Declarations.training_input`: how a training video becomes a sample and how samples are drawn
  (`TrainingInput`: the reduction of its T snippets, crops joint or independent, balanced or mixed
  batches, and the `Sampling` of the public code: fresh draws every step, or epoch-based loaders);
- `Declarations.scheduler_interval`: whether the engine steps `Method.scheduler` after every step or
  after every epoch; `Declarations.grad_clip`: the maximum global gradient norm;
- `Declarations.padded_scoring`: whether zero-padded test batches are safe, else each video is scored alone;
- `Declarations.probability_scores`, `Declarations.stackable`, `Declarations.side_inputs` (with
  `Declarations.prompt_width`): what the scores mean, whether seeds may train as one vmapped model, and
  which side inputs (`TrainBatch.classes`, `TrainBatch.class_sets`, `TrainBatch.prompts`) the method
  reads from the dataset (never from file names);
- optional hooks, None unless declared: `Declarations.train_step` (a step of the method's own, where
  "loss, backward, one optimiser step" is not enough), `Declarations.postprocess` (test-time
  post-processing of each video's scores), `Declarations.score_with_magnitudes` (per-snippet feature
  magnitudes, stored for plots, from the forward pass that scores) and `Declarations.public_checkpoint`
  (the importer of the weights the method's public code saves).

What tables and figures show about a method's options (`Presentation`) is apart from this training
contract: a class attribute, recorded with each result so that tables render without the plugin.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping
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
    pass of the one mixed loader, or of the zipped pair, is an epoch (`Declarations.scheduler_interval`). Each
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

    features: (B, C, S, D) with joint crops (the order `Method.score` gets test videos in), (B, S, D) with
    independent crops; labels: (B,) float 0/1 (balanced batches: the first half normal); lengths: (B,)
    true segments of each sample (S unless the reduction pads); classes: (B,) class index of each sample's
    video (0 = normal; -1 when the dataset has no classes); prompts: (K, P) one vector per class index,
    from the dataset ((0, 0) when it supplies none); class_sets: (B, A) every class of each sample's video,
    its `classes` entry first, then -1 up to A (`vadbench.api.types.TrainSet.class_sets`;
    ``classes[:, None]`` where every video shows one class).
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


#: A training step of a method's own: (model, optimizer, batch) -> loss terms, as `Method.loss` returns them.
TrainStep = Callable[[nn.Module, torch.optim.Optimizer, TrainBatch], dict[str, torch.Tensor]]
#: Test-time post-processing of one video's snippet scores (T,) -> (T,).
Postprocess = Callable[[np.ndarray], np.ndarray]
#: Scores and feature magnitudes, both (B, T), of zero-padded videos (B, C, T, D) from one forward pass:
#: (model, features, lengths) -> (scores, magnitudes).
ScoreWithMagnitudes = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
#: The state dict a public code's training script saves (already unwrapped from a ``state_dict`` entry and
#: stripped of DataParallel's ``module.`` prefixes) -> the state dict of this method's model (`Method.build`).
PublicCheckpoint = Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Declarations:
    """Everything a method declares about training and scoring beyond the simple path; each default is
    RTFM's (the simple path). A method returns one from `Method.declarations` (it may read the config).

    training_input: how training videos become samples and batches (`TrainingInput`).
    padded_scoring: ``safe``, zero-padded test batches give each video the scores it gets alone; ``alone``,
    the engine scores every test video (and `val`'s held-out videos, and stored magnitudes) alone.
    probability_scores: whether `Method.score` returns probabilities in [0, 1]. A method whose scores are
    unbounded (BN-WVAD's distance x sigmoid) declares False: the conformance checks then ask only for finite
    scores, and its results record the false-alarm rate at 0.5 as absent (None).
    stackable: whether the seeds of one configuration may train as one vmapped model
    (`vadbench.engine.stacking`); a method with state outside its parameters, or a loss that needs Python
    numbers from its batch, may not (a gradient clip or a step of its own rules stacking out as well).
    side_inputs: what the method reads from its batches besides features and labels: ``classes`` (each
    video's class index, refused on a dataset without classes) and ``prompts`` (one vector per class;
    `vadbench.data.prompts` gives a marked stand-in when the dataset has none).
    prompt_width: the width P the class prompt vectors must have (checked against the dataset's prompt
    file before training); None: any.
    scheduler_interval: when the engine steps `Method.scheduler`: after every training ``step``, or after
    the last step of every ``epoch`` (a pass of the declared `Sampling`: its one mixed loader, or its
    zipped loaders; the sampling must then have such epochs), as a code that calls ``scheduler.step()``
    once per epoch does.
    grad_clip: the maximum global norm the gradients are clipped to before each update; None: no clip.
    train_step: a training step of the method's own (`TrainStep`), for an update that is not "loss,
    backward, the declared clip, one optimiser step" (the engine's step,
    `vadbench.engine.training.TrainingStep`). It runs eagerly: no stacking, no CUDA graph. None: the
    engine's step.
    postprocess: test-time post-processing of one video's trimmed scores (`Postprocess`), applied before
    the metrics and before `val` selection. None: the scores as they are.
    score_with_magnitudes: scores and per-snippet feature magnitudes of one batch from one forward pass
    (`ScoreWithMagnitudes`), for the methods that have magnitudes (stored for plots). Its scores must
    equal `Method.score`'s, and with ``padded_scoring = "safe"`` neither may depend on the padding (a
    conformance check compares both with each video scored alone). None: the method has no magnitudes.
    public_checkpoint: the importer of the checkpoints the method's public code writes (`PublicCheckpoint`:
    keys renamed, shapes fixed), so that released weights load (`vadbench evaluate`, `vadbench score`).
    None: no public format.
    """

    training_input: TrainingInput = field(default_factory=TrainingInput)
    padded_scoring: Literal["safe", "alone"] = "safe"
    probability_scores: bool = True
    stackable: bool = True
    side_inputs: frozenset[str] = frozenset()
    prompt_width: int | None = None
    scheduler_interval: Literal["step", "epoch"] = "step"
    grad_clip: float | None = None
    train_step: TrainStep | None = None
    postprocess: Postprocess | None = None
    score_with_magnitudes: ScoreWithMagnitudes | None = None
    public_checkpoint: PublicCheckpoint | None = None

    def __post_init__(self) -> None:
        if self.padded_scoring not in ("safe", "alone"):
            raise ValueError(f"Declarations.padded_scoring must be 'safe' or 'alone', got {self.padded_scoring!r}")
        if self.scheduler_interval not in ("step", "epoch"):
            raise ValueError(
                f"Declarations.scheduler_interval must be 'step' or 'epoch', got {self.scheduler_interval!r}"
            )

    def record(self) -> dict[str, Any]:
        """The declarations as flat config entries (``input.segments``, ``padded_scoring`` ...)."""
        return {
            **self.training_input.record(),
            "padded_scoring": self.padded_scoring,
            "probability_scores": self.probability_scores,
            "grad_clip": self.grad_clip,
            "scheduler_interval": self.scheduler_interval,
            "train_step": "default" if self.train_step is None else "own",
            "postprocess": "none" if self.postprocess is None else self.postprocess.__qualname__,
            "side_inputs": ",".join(sorted(self.side_inputs)) or "none",
        }


@dataclass(frozen=True)
class Presentation:
    """How tables and figures show a method's options: recorded in each result, so they need no plugin.

    table_marks: boolean options that an ablation table shows as check-mark columns, option -> column
    title (RTFM declares its Table 5 switches). segment_options: options counted in the pooled training
    segments of a video, option -> what it counts (RTFM's top-k): a sweep plot against one says so on its
    axis and marks the benchmark's anomaly length in segments (``anomaly_segments`` in `Benchmark.meta`).
    """

    table_marks: Mapping[str, str] = field(default_factory=dict)
    segment_options: Mapping[str, str] = field(default_factory=dict)


#: What subclasses declared as class attributes or overrides before `Declarations` and `Presentation` held
#: them: the engine no longer reads them there, so a subclass that sets one is refused rather than ignored.
MOVED_DECLARATIONS = frozenset({
    "training_input", "padded_scoring", "probability_scores", "stackable", "side_inputs", "prompt_width",
    "scheduler_interval", "grad_clip", "table_marks", "segment_options",
})


class Method(abc.ABC):
    """Base class of methods. Subclasses set ``Config``: a frozen dataclass of all hyper-parameters.

    ``Config`` must have ``batch_size`` (samples per class in a balanced batch, per batch in a mixed
    one) and ``steps`` (the published number of training iterations). Constructors only store the
    config. What the engine must do beyond the simple path is declared once, in `declarations`; how
    tables show the options, in `presentation`.
    """

    Config: ClassVar[type]
    #: Bumped whenever a change of the method's code changes its numbers at the same options: the
    #: revision is part of the run key (`RunSpec.method_revision`), so runs of the old code are not reused.
    revision: ClassVar[int] = 1
    #: Options the runner reads from every method's Config: a Config without them is refused when registered.
    required_options: ClassVar[tuple[str, ...]] = ("batch_size", "steps")
    #: How tables and figures show the method's options (none by default).
    presentation: ClassVar[Presentation] = Presentation()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        moved = sorted(MOVED_DECLARATIONS & vars(cls).keys())
        if moved:
            raise TypeError(f"{cls.__qualname__} sets {', '.join(moved)}, which a method declares in "
                            "Method.declarations() (vadbench.api.method.Declarations) or Method.presentation")

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def batch_size(self) -> int:
        return int(self.config.batch_size)

    def declarations(self) -> Declarations:
        """What the method declares beyond the simple path (default: nothing, RTFM's simple path).
        Override it to return a `Declarations`; it may read ``self.config`` and name the method's own
        hooks (``Declarations(postprocess=self.smooth)``)."""
        return Declarations()

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
        """Snippet anomaly scores, shape (B, T), for zero-padded videos (B, C, T, D): crops before time, the
        axis order of joint-crop training batches (`TrainBatch.features`), so a network sees the same
        layout in training and scoring. Probabilities in [0, 1] unless the method declares
        ``probability_scores=False``.

        ``lengths`` (B,) gives each video's true T. With ``padded_scoring="safe"`` (the default) a
        video's scores must not depend on the padding (the engine batches test videos of different lengths).
        """

    @abc.abstractmethod
    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """The optimiser of the published method."""

    def scheduler(self, optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
        """A learning-rate schedule, or None (the default: constant learning rate). The engine steps it
        after every training step of the `steps`, or after every epoch (`Declarations.scheduler_interval`)."""
        return None


def valid_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) boolean mask of the real (not padded) snippets."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]
