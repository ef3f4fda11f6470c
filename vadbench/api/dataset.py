"""The dataset contract: an adapter turns files the user has (or a seed) into a `Benchmark`."""

from __future__ import annotations

import abc
from typing import Any, ClassVar, NamedTuple

from vadbench.api.reduction import DEFAULT_REDUCTION, Reduction
from vadbench.api.types import Benchmark


class DataShape(NamedTuple):
    """What a dataset knows of its data's size without loading it (`Dataset.shape`), from which methods take
    the defaults that follow the data (``Config.for_data``): None where it is known only once loaded.

    feature_dim: the features' dimension D; longest_training_video: the snippet count T of the longest
    training video.
    """

    feature_dim: int | None
    longest_training_video: int | None


class Dataset(abc.ABC):
    """Base class of dataset adapters. Subclasses set ``Config``: a frozen dataclass of all options.

    Adapters never download: they read the data root the user points at and raise
    :class:`vadbench.api.errors.UsageError` naming the file and the problem when something is wrong.
    """

    Config: ClassVar[type]
    #: Options that say where and how the files are read, not what they hold (a data root, a cache
    #: folder, a prompt file). They stay out of the run key, which names the data by its `fingerprint`
    #: instead; an adapter must return a fingerprint whenever any of them is set.
    access_options: ClassVar[frozenset[str]] = frozenset()
    #: Options whose values are replicates of one experiment, like seeds (UCSD's weak split seed):
    #: tables average over them. Recorded in each result, so tables need no plugin.
    replicate_options: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: Any) -> None:
        self.config = config

    @abc.abstractmethod
    def load(self, reduction: Reduction = DEFAULT_REDUCTION) -> Benchmark:
        """The benchmark: weakly-labelled training videos, each reduced by `reduction` (the method's
        declared training input: apply it to every training video of T snippets, (T, C, D) -> (C, S, D),
        with `vadbench.data.pooling.reduce_video`, and give `TrainSet.lengths` when it pads), and
        full-length test videos."""

    def fingerprint(self, reduction: Reduction = DEFAULT_REDUCTION) -> str | None:
        """A hash of the content the runs read (`Benchmark.fingerprint`: the data reduced by `reduction`,
        as a run of a method declaring it reads it), or None when the options alone define the data
        (data generated from a seed), as by default."""
        return None

    def suggested_steps(self) -> int | None:
        """The training schedule this dataset suggests when a run names none (None: the method's
        published one). Known without loading any data, so that a run asking for exactly this
        schedule gets the same run key as one asking for none (`vadbench.plan.specs.canonical`)."""
        return None

    def feature_dim(self) -> int | None:
        """The dimension D of the features, when known without loading any data (None: known only once
        loaded). Methods whose default widths follow narrow features (``Config.for_data``) get them
        from it when their runs are planned (`vadbench.plan.widths`)."""
        return None

    def longest_training_video(self) -> int | None:
        """The snippet count of the longest training video, when known without loading any data (None: known
        only once loaded). Methods that pool every training video to more segments than that (which would
        repeat snippets) take that many instead (``Config.for_data``) when their runs are planned."""
        return None

    def shape(self) -> DataShape:
        """`feature_dim` and `longest_training_video`, as the methods' ``Config.for_data`` reads them."""
        return DataShape(self.feature_dim(), self.longest_training_video())
