"""The method contract: what a WSVAD method plugin implements.

The runner owns everything else (data placement, batch sampling, the training loop, mixed
precision, model selection, evaluation, timing), so a method is only its model, its loss on one
balanced batch and its snippet scorer; every method then gets the same protocol and fast path.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch
from torch import nn


class Method(abc.ABC):
    """Base class of methods. Subclasses set ``Config``: a frozen dataclass of all hyper-parameters.

    ``Config`` must have ``batch_size`` (videos per class in a training batch) and ``steps`` (the
    published number of training iterations). Constructors only store the config.
    """

    Config: ClassVar[type]
    #: Boolean options that an ablation table shows as check-mark columns, option -> column title (RTFM
    #: declares its Table 5 switches). Recorded in each result, so tables need no plugin.
    table_marks: ClassVar[Mapping[str, str]] = {}
    #: Options counted in the pooled training segments of a video, option -> what it counts (RTFM's top-k):
    #: a sweep plot against one says so on its axis and marks the benchmark's anomaly length in segments
    #: (``anomaly_segments`` in `Benchmark.meta`). Recorded in each result.
    segment_options: ClassVar[Mapping[str, str]] = {}

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def batch_size(self) -> int:
        return int(self.config.batch_size)

    @property
    def steps(self) -> int:
        return int(self.config.steps)

    @abc.abstractmethod
    def build(self, crops: int, feature_dim: int) -> nn.Module:
        """A freshly initialised model for features with `crops` crops of `feature_dim` dimensions."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, normal: torch.Tensor, abnormal: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training loss on one batch: `normal` and `abnormal` are (B, C, S, D) pooled videos.

        Returns ``{"loss": total, ...}``; the other entries are detached terms for logging.
        """

    @abc.abstractmethod
    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Snippet anomaly scores in [0, 1], shape (B, T), for zero-padded videos (B, T, C, D).

        ``lengths`` (B,) gives each video's true T; scores of a video must not depend on the padding
        (the runner batches test videos of different lengths).
        """

    @abc.abstractmethod
    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """The optimiser of the published method."""

    def magnitudes(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor | None:
        """Per-snippet feature magnitudes (B, T) where the method has them (for plots); else None."""
        return None


def valid_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) boolean mask of the real (not padded) snippets."""
    return torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None]
