"""How a method's training videos are reduced: the `Reduction` a method declares and a dataset applies.

A method declares its reduction (part of `vadbench.api.method.TrainingInput`); the dataset adapter applies
it to every training video while reading it (`vadbench.data.pooling.reduce_video`), so that a preparation
cache entry holds one reduction and the engine never sees the full-length training videos. The kinds:

- ``mean``: the public RTFM code's mean pooling to S segments (RTFM, MGFN, UR-DMU, BN-WVAD; Tian et al.'s
  retrained MIL baseline);
- ``c3d``: Sultani et al.'s ``Save_C3DFeatures_32Segments.m``, the input of their own C3D results
  (boundaries rounded from 1-based positions, the last snippet left out, every segment L2-normalised);
- ``subsample``: S uniformly spaced snippets when T > S, else the T snippets followed by zero padding
  (PEL4VAD); the true length min(T, S) goes with the sample;
- ``full``: every snippet, zero-padded to the longest training video (memory grows with it).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from vadbench.api.types import TRAIN_SEGMENTS

#: The kinds of `Reduction`.
ReductionKind = Literal["mean", "c3d", "subsample", "full"]


@dataclass(frozen=True)
class Reduction:
    """How a training video of T snippets becomes `segments` segments (see the module docstring).

    Examples: ``Reduction()`` (RTFM: mean over 32), ``Reduction("mean", 200)`` (UR-DMU, BN-WVAD),
    ``Reduction("subsample", 200)`` (PEL4VAD), ``Reduction("c3d")`` (Sultani et al.'s C3D script),
    ``Reduction("full")``.
    """

    kind: ReductionKind = "mean"
    segments: int = TRAIN_SEGMENTS

    def __post_init__(self) -> None:
        if self.kind not in typing.get_args(ReductionKind):
            raise ValueError(f"Reduction.kind must be one of mean, c3d, subsample, full, got {self.kind!r}")
        if self.segments < 1:
            raise ValueError(f"Reduction.segments must be at least 1, got {self.segments}")

    @property
    def pads(self) -> bool:
        """Whether reduced videos may end in zero padding (their true lengths then go with them)."""
        return self.kind in ("subsample", "full")

    def size(self, longest: int) -> int:
        """Segments per reduced video, given the longest video of the set (used by ``full`` only)."""
        return longest if self.kind == "full" else self.segments

    def length(self, snippets: int) -> int:
        """The true (unpadded) segments of a video of `snippets` snippets."""
        if self.kind == "full":
            return snippets
        return min(snippets, self.segments) if self.kind == "subsample" else self.segments

    def record(self) -> dict[str, object]:
        """The reduction as flat config entries."""
        return {"input.reduction": self.kind, "input.segments": None if self.kind == "full" else self.segments}

    @property
    def key(self) -> str:
        """A short text that names the reduction in cache keys."""
        return self.kind if self.kind == "full" else f"{self.kind}-{self.segments}"


#: RTFM's mean pooling to 32 segments: the training input of a method that declares none.
DEFAULT_REDUCTION = Reduction()
