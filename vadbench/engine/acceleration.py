"""How a run executes on its device: numeric precision, torch.compile and CUDA graphs.

Two options reach the user (`RunSpec.precision`, `RunSpec.compile`); they change how the training
step and the test pass are executed, and both move the numbers: bf16 autocast runs matmuls and
convolutions in bfloat16 (the methods keep sigmoids, BCE and the other loss terms in float32), and
compiled code draws its own dropout masks and orders float operations its own way. So a bf16 run and
a compiled run each have their own run key (a CUDA run still shares the key of a CPU run). See
docs/gpu.md.

A compiled step or scorer that fails to build falls back to eager execution with a warning, so a
method that torch.compile or graph capture cannot handle still trains; what actually ran
(`TrainingLog.engine`, e.g. ``bf16+compile+cudagraph``) is recorded with the run.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from vadbench.api.types import PRECISIONS

T = TypeVar("T")

#: Graphs dynamo may keep per compiled function. Every method variant of a grid runs through the same
#: step code, and dynamo's default (8) would run the ninth variant in a process eagerly, silently.
GRAPHS_PER_FUNCTION = 64


@dataclass(frozen=True)
class Acceleration:
    """Execution options of a run.

    precision: "fp32" (default) or "bf16" (autocast; numbers change slightly);
    compile: torch.compile the training step (on CUDA also replay it as a CUDA graph) and the scoring
    call of a `VideoScorer`; cuda_graph: override the CUDA-graph choice (None: follow `compile`), for
    benchmarks that separate the two effects.
    """

    precision: str = "fp32"
    compile: bool = False
    cuda_graph: bool | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    def autocast(self, function: Callable[..., T], device: torch.device) -> Callable[..., T]:
        """`function` run under bf16 autocast on `device` for bf16 runs; `function` itself for fp32.

        fp32 gets no context manager at all, so eager fp32 runs exactly the code it ran before.
        """
        if self.precision == "fp32":
            return function

        def autocast_function(*args: Any) -> T:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return function(*args)

        return autocast_function

    def graphs(self, device: torch.device) -> bool:
        """Whether the training step is captured and replayed as a CUDA graph on `device`."""
        wanted = self.compile if self.cuda_graph is None else self.cuda_graph
        return wanted and device.type == "cuda"


def compile_function(function: Callable[..., T], **options: Any) -> Callable[..., T]:
    """torch.compile(`function`), with room for one graph per method variant that this process trains."""
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.7
    setattr(config, name, max(getattr(config, name), GRAPHS_PER_FUNCTION))
    return torch.compile(function, **options)


@contextlib.contextmanager
def device_flags(device: torch.device) -> Iterator[None]:
    """cuDNN autotuning on CUDA: shapes repeat for the whole run, so the search pays for itself.

    Only the ``benchmark`` flag is touched (``cudnn.flags`` would reset the caller's TF32 and
    determinism settings too), and it is restored afterwards.
    """
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


class FallBack(Generic[T]):
    """Calls `fast`; if its first call raises, warns once and calls `eager` from then on.

    Only the first call is guarded: that is where torch.compile traces and builds. `before_retry`
    undoes the side effects of the failed attempt (for a training step: gradients set to None).
    """

    def __init__(
        self, fast: Callable[..., T], eager: Callable[..., T], what: str,
        before_retry: Callable[[], None] | None = None,
    ) -> None:
        self.fast, self.eager, self.what = fast, eager, what
        self.before_retry = before_retry
        self.failed = False
        self._first = True

    def __call__(self, *args: Any) -> T:
        if not self._first:
            return (self.eager if self.failed else self.fast)(*args)
        self._first = False
        try:
            return self.fast(*args)
        except Exception as error:  # any build failure: the eager path still trains
            warnings.warn(f"{self.what} failed ({type(error).__name__}: {error}); running it eagerly",
                          RuntimeWarning, stacklevel=2)
            self.failed = True
            if self.before_retry is not None:
                self.before_retry()
            return self.eager(*args)
