"""The batches of a run, drawn as the method's public code draws them (`vadbench.api.method.Sampling`).

Each step the `Sampler` gathers the samples of the next batch into preallocated buffers on the device,
from the reduced training set where `vadbench.engine.placement` put it: on the device when it fits there,
else on the host (always on the CPU), read batch by batch from the preparation cache's memory map, so that
no run holds a copy of the whole set. Where the indices of a batch come from:

- per-step draws (``Sampling("per_step")``): a fresh ``randperm`` per step on the device, with a seeded
  device generator, so drawing never waits on the host;
- epoch-based loaders (``Sampling("epochs")``): each `Loader` walks its samples on the host exactly as a
  torch ``DataLoader`` with its own generator does (a few hundred integers a step), and the indices of
  each batch are copied to the device before the step runs, outside any captured CUDA graph.
"""

from __future__ import annotations

import collections
import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from vadbench.api.method import Sampling, TrainBatch, TrainingInput
from vadbench.api.types import TrainSet
from vadbench.engine.placement import HostRows


class Drawn(NamedTuple):
    """One drawn batch: the batch to train on (the buffers, or their first rows when a pass ends in a
    smaller batch) and whether it is the last batch of an epoch (a pass of the one loader, or of the
    zipped loaders)."""

    batch: TrainBatch
    ends_epoch: bool


def loader_generator(seed: int, loader: int) -> torch.Generator:
    """The generator of loader `loader` (0: the normal or only loader, 1: the abnormal one) of a run with
    seed `seed`: seeded from child `loader` of numpy's ``SeedSequence(seed)``, so the loaders of a run,
    and those of other seeds, draw independent orders."""
    state = np.random.SeedSequence(seed, spawn_key=(loader,)).generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state[0]))


class Loader:
    """A torch ``DataLoader`` over `members` (sample indices, in training order), iterated again and again.

    `new_pass` does what ``iter(DataLoader(members, batch, shuffle=..., drop_last=..., num_workers=...,
    generator=...))`` does with the generator: it draws the iterator's base seed at once; the order
    (`Sampling.order`) is then read batch by batch as torch's batch sampler reads it (with workers, ahead
    of the batches given), so the generator is drawn from exactly as often as by torch.
    """

    def __init__(self, members: np.ndarray, batch: int, sampling: Sampling, generator: torch.Generator) -> None:
        self.members, self.batch, self.sampling, self.generator = members, batch, sampling, generator

    def __len__(self) -> int:
        """Batches per pass, as ``len(loader)``."""
        count = len(self.members)
        return count // self.batch if self.sampling.drop_last else -(-count // self.batch)

    def new_pass(self) -> Iterator[np.ndarray]:
        """The batches of a new pass (a new ``DataLoader`` iterator)."""
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)  # the iterator's base seed
        batches = self._batches()
        return read_ahead(batches, 2 * self.sampling.workers) if self.sampling.workers else batches

    def _batches(self) -> Iterator[np.ndarray]:
        """torch's ``BatchSampler``: full batches, then (without drop_last) the rest."""
        order = iter(self.sampling.order(len(self.members), self.generator))
        if self.sampling.drop_last:
            batches: Iterator[Sequence[int]] = zip(*[order] * self.batch, strict=False)
        else:
            batches = iter(lambda: list(itertools.islice(order, self.batch)), [])
        for batch in batches:
            yield self.members[list(batch)]


def read_ahead(batches: Iterator[np.ndarray], count: int) -> Iterator[np.ndarray]:
    """`batches` as a loader with workers reads them: `count` (2 per worker) at once, then one more as
    each is given."""
    ahead = collections.deque(itertools.islice(batches, count))
    while ahead:
        batch = ahead.popleft()
        ahead.extend(itertools.islice(batches, 1))
        yield batch


class EpochDraws:
    """The batches of epoch-based loaders: one loader (mixed batches), or a normal and an abnormal one
    whose batches are concatenated normal first, restarting as `Sampling.restart` says."""

    def __init__(self, loaders: list[Loader], restart: str) -> None:
        self.loaders = loaders
        #: Whether passes are epochs: those of one loader, or of loaders zipped.
        self.epochs = restart == "zip" or len(loaders) == 1
        self._batches = self._zipped() if restart == "zip" else self._own_restarts()

    def next(self) -> tuple[np.ndarray, bool]:
        """The sample indices of the next batch, and whether it ends an epoch."""
        return next(self._batches)

    def _zipped(self) -> Iterator[tuple[np.ndarray, bool]]:
        """``for epoch: for batches in zip(*loaders)`` (``for batch in loader`` with one loader): all
        loaders start a pass together, and the pass ends with the shortest one (whose end zip reads)."""
        length = min(map(len, self.loaders))
        while True:
            for step, batches in enumerate(zip(*(loader.new_pass() for loader in self.loaders), strict=False), 1):
                yield np.concatenate(batches), step == length

    def _own_restarts(self) -> Iterator[tuple[np.ndarray, bool]]:
        """Each loader restarted after its ``len(loader)`` batches, without reading past them."""
        streams = [self._restarted(loader) for loader in self.loaders]
        for step in itertools.count(1):
            yield np.concatenate([next(stream) for stream in streams]), self.epochs and step % len(self.loaders[0]) == 0

    @staticmethod
    def _restarted(loader: Loader) -> Iterator[np.ndarray]:
        while True:
            yield from itertools.islice(loader.new_pass(), len(loader))


@dataclass(frozen=True)
class Sampler:
    """Draws the batches a method declared (`TrainingInput`) into buffers on the device.

    samples: (M, C, S, D) with joint crops, (M, S, D) with independent crops (M = videos x crops, video
    by video); per sample: labels, true lengths, class indices and class sets. ``balanced``: `batch` normal samples
    then `batch` abnormal ones (the per-class batch is clamped to the smaller class: a weak UCSD split
    has 6 abnormal training clips); ``mixed``: `batch` samples of all of them. `draw` gives the sample
    indices of the next batch on the device, and whether the batch ends an epoch.
    """

    samples: torch.Tensor | HostRows
    labels: torch.Tensor
    lengths: torch.Tensor
    classes: torch.Tensor
    class_sets: torch.Tensor
    prompts: torch.Tensor
    batch: int
    mixed: bool
    sampling: Sampling
    draw: Callable[[], tuple[torch.Tensor, bool]]
    epochs: bool

    @classmethod
    def create(
        cls, train: TrainSet, features: torch.Tensor | HostRows, declared: TrainingInput, batch: int, seed: int,
        prompts: np.ndarray | None = None,
    ) -> Sampler:
        """A sampler over `train` whose features are `features`: its (N, C, S, D) array on the device, or on the
        host (`vadbench.engine.placement.training_rows` chooses; one copy may serve several samplers);
        `prompts`: the benchmark's class prompts, if any."""
        device = features.device
        independent = declared.crops == "independent"
        crops = features.shape[1] if independent else 1
        samples = features.reshape(-1, *features.shape[2:]) if independent else features

        def per_sample(values: np.ndarray) -> np.ndarray:
            return np.repeat(np.asarray(values), crops, axis=0)

        labels = per_sample(train.labels)
        classes = per_sample(train.classes) if train.classes is not None else np.full(len(labels), -1)
        class_sets = per_sample(train.class_sets) if train.class_sets is not None else classes[:, None]
        prompts = prompts if prompts is not None else np.zeros((0, 0), np.float32)
        normal, abnormal = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
        if len(normal) == 0 or len(abnormal) == 0:
            raise ValueError("training needs at least one normal and one abnormal video")
        mixed = declared.batch == "mixed"
        batch = min(batch, len(labels)) if mixed else min(batch, len(normal), len(abnormal))
        members = [np.arange(len(labels))] if mixed else [normal, abnormal]
        sampling = declared.sampling
        if sampling.kind == "per_step":
            draw, epochs = per_step_draws(members, batch, seed, device), False
        else:
            loaders = [Loader(m, batch, sampling, loader_generator(seed, i)) for i, m in enumerate(members)]
            draws = EpochDraws(loaders, sampling.restart)
            draw, epochs = functools.partial(to_device, draws.next, device), draws.epochs

        def tensor(values: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(values, device=device)

        return cls(
            samples, tensor(labels).float(), tensor(per_sample(train.segment_lengths)).long(), tensor(classes).long(),
            tensor(class_sets).long(), tensor(np.asarray(prompts, np.float32)), batch, mixed, sampling, draw, epochs,
        )

    @property
    def device(self) -> torch.device:
        return self.samples.device

    @property
    def size(self) -> int:
        """Samples per full batch."""
        return self.batch if self.mixed else 2 * self.batch

    @property
    def fixed_size(self) -> bool:
        """Whether every batch is full (a captured CUDA graph needs it): all but epochs without drop_last."""
        return self.sampling.kind == "per_step" or self.sampling.drop_last

    def empty_batch(self) -> TrainBatch:
        """Buffers of one full batch for `draw_into` (features uninitialised; balanced labels already set)."""
        labels = torch.cat([torch.zeros(self.batch), torch.ones(self.batch)]) if not self.mixed else torch.empty(
            self.batch)
        return TrainBatch(
            torch.empty((self.size, *self.samples.shape[1:]), dtype=self.samples.dtype, device=self.device),
            labels.to(self.device),
            self.lengths.new_empty(self.size),
            self.classes.new_empty(self.size),
            self.prompts,
            self.class_sets.new_empty((self.size, self.class_sets.shape[1])),
        )

    def draw_into(self, buffers: TrainBatch) -> Drawn:
        """Draw the next batch into `buffers` (from `empty_batch`); a smaller last batch of a pass fills
        their first rows, and the batch returned is those rows."""
        index, ends_epoch = self.draw()
        batch = buffers if len(index) == self.size else rows(buffers, len(index))
        if self.mixed:
            torch.index_select(self.labels, 0, index, out=batch.labels)
        if isinstance(self.samples, HostRows):
            self.samples.gather(index, batch.features)
        else:
            torch.index_select(self.samples, 0, index, out=batch.features)
        torch.index_select(self.lengths, 0, index, out=batch.lengths)
        torch.index_select(self.classes, 0, index, out=batch.classes)
        torch.index_select(self.class_sets, 0, index, out=batch.class_sets)
        return Drawn(batch, ends_epoch)


def rows(batch: TrainBatch, count: int, dim: int = 0) -> TrainBatch:
    """The first `count` samples of `batch` (along `dim`: 1 for stacked runs), sharing its buffers."""
    features, labels, lengths, classes = (t.narrow(dim, 0, count) for t in batch[:4])
    return TrainBatch(features, labels, lengths, classes, batch.prompts, batch.class_sets.narrow(dim, 0, count))


def per_step_draws(
    members: list[np.ndarray], batch: int, seed: int, device: torch.device
) -> Callable[[], tuple[torch.Tensor, bool]]:
    """Draws afresh every step: of each member list (all samples, or the normal then the abnormal ones)
    `batch` samples without replacement, with a device generator seeded with `seed`."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    on_device = [torch.as_tensor(m, device=device) for m in members]

    def draw() -> tuple[torch.Tensor, bool]:
        parts = [m[torch.randperm(len(m), generator=generator, device=device)[:batch]] for m in on_device]
        return (parts[0] if len(parts) == 1 else torch.cat(parts)), False

    return draw


def to_device(draw: Callable[[], tuple[np.ndarray, bool]], device: torch.device) -> tuple[torch.Tensor, bool]:
    """`draw`'s host indices on `device`: from pinned memory without waiting on a CUDA device."""
    index, ends_epoch = draw()
    host = torch.from_numpy(index)
    if device.type == "cuda":
        return host.pin_memory().to(device, non_blocking=True), ends_epoch
    return host.to(device), ends_epoch
