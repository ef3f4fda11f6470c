"""The dataset contract: an adapter turns files the user has (or a seed) into a `Benchmark`."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from vadbench.api.reduction import DEFAULT_REDUCTION, Reduction
from vadbench.api.types import Benchmark


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
        loaded). Methods whose default widths follow narrow features (``Config.for_features``) get them
        from it when their runs are planned (`vadbench.plan.widths`)."""
        return None
