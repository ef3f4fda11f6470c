"""Replaying a whole training step (forward, backward, optimiser update) as one CUDA graph.

An eager RTFM step launches several hundred kernels; on a fast GPU their launch cost, not the
arithmetic, bounds the step. A captured graph replays all of them with one launch. The step reads its
batch from static buffers (the sampler draws into them before each call) and returns static output
tensors, which hold the latest step's values after each replay.

Capture follows PyTorch's whole-network recipe: a few eager warm-up steps on a side stream (cuDNN
autotuning and torch.compile's first calls happen there), gradients set to None so that backward
allocates them from the graph's pool, and optimisers switched to their ``capturable`` mode before
their first step, so that their step counters live on the device.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

#: Eager steps before capture; they are real training steps.
WARMUP_STEPS = 3

StepOutputs = dict[str, torch.Tensor]


def make_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Switch an optimiser that supports it to ``capturable`` (must happen before its first step)."""
    for group in optimizer.param_groups:
        if "capturable" in group:
            group["capturable"] = True


class CapturedStep:
    """Calls `body` eagerly for `warmup` steps, then captures it once and replays the graph.

    `body` performs one full training step on the static buffers and returns its loss terms. If the
    capture fails (the body synchronises with the host, or uses an operation graphs cannot hold),
    a warning is given and the body keeps running eagerly.
    """

    def __init__(
        self, body: Callable[[], StepOutputs], optimizer: torch.optim.Optimizer, warmup: int = WARMUP_STEPS
    ) -> None:
        self.body, self.optimizer, self.warmup = body, optimizer, warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: StepOutputs = {}
        self.failed = False
        self._calls = 0
        self._side_stream = torch.cuda.Stream()
        make_capturable(optimizer)

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def __call__(self) -> StepOutputs:
        if self.graph is not None:
            self.graph.replay()
            return self.outputs
        if self.failed:
            return self.body()
        self._calls += 1
        if self._calls <= self.warmup:
            return self._warm_up()
        if self._capture():
            return self()
        return self.body()

    def _warm_up(self) -> StepOutputs:
        self._side_stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self._side_stream):
            outputs = self.body()
        torch.cuda.current_stream().wait_stream(self._side_stream)
        return outputs

    def _capture(self) -> bool:
        """Record the step (recording runs no kernels); True on success."""
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                outputs = self.body()
        except Exception as error:  # any capture failure: the eager step still trains
            warnings.warn(f"CUDA graph capture of the training step failed ({type(error).__name__}: {error}); "
                          "running it eagerly", RuntimeWarning, stacklevel=3)
            self.failed = True
            self.optimizer.zero_grad(set_to_none=True)
            return False
        self.graph, self.outputs = graph, outputs
        return True
