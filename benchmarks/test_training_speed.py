"""The vadbench training loop against the public code's data path (reference_loop.py), on the CPU.

Both train the same RTFM model with the same batch shape on the same videos (small dimensions: 10
crops, D = 64, batch 8 + 8, T from 32 to 96). The reference loop reads every video of a batch from its
own .npy file (from the OS page cache: they were just written) and pools each crop in Python at every
step; the vadbench loop pools once, keeps the pooled set in memory and draws batches there. Two pairs
are timed: whole training steps, and the batch preparation alone. The terminal summary prints the
ratios of the medians.

    pytest benchmarks/test_training_speed.py
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import MEDIANS
from reference_loop import ReferenceLoop, write_videos

from vadbench.api.method import TrainingInput
from vadbench.api.types import TrainSet
from vadbench.data.pooling import pool_segments
from vadbench.engine.acceleration import Acceleration
from vadbench.engine.sampling import Sampler
from vadbench.engine.training import TrainingStep
from vadbench.plugins.manager import load_plugins

VIDEOS_PER_CLASS, CROPS, DIM, BATCH = 48, 10, 64, 8
STEPS_PER_ROUND, ROUNDS = 5, 5


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Full-length videos (T, C, D), normal ones first, and their .npy files."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(32, 97, size=2 * VIDEOS_PER_CLASS)
    arrays = [rng.random((int(n), CROPS, DIM), dtype=np.float32) for n in lengths]
    return arrays, write_videos(tmp_path_factory.mktemp("features"), arrays)


@pytest.fixture(scope="module")
def rtfm():
    return load_plugins().methods.create("rtfm", {"batch_size": BATCH})


@pytest.fixture(scope="module")
def sampler(videos):
    """The vadbench side: every video pooled once, the pooled set in memory."""
    arrays, _ = videos
    labels = np.repeat([0, 1], VIDEOS_PER_CLASS)
    train = TrainSet(np.stack([pool_segments(v) for v in arrays]), labels, tuple(map(str, range(len(arrays)))))
    return Sampler.create(train, torch.as_tensor(train.features), TrainingInput(), BATCH, seed=0)


def reference_loop(rtfm, videos) -> ReferenceLoop:
    _, paths = videos
    return ReferenceLoop(rtfm, fresh_model(rtfm), paths[:VIDEOS_PER_CLASS], paths[VIDEOS_PER_CLASS:], BATCH,
                         torch.device("cpu"))


def fresh_model(method):
    torch.manual_seed(0)
    return method.build(CROPS, DIM).train()


def timed(benchmark, name: str, function, per_call: int) -> None:
    benchmark.pedantic(function, rounds=ROUNDS, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        MEDIANS[name] = benchmark.stats.stats.median / per_call


def test_vadbench_step(benchmark, rtfm, sampler):
    model = fresh_model(rtfm)
    step = TrainingStep.for_method(rtfm, model, rtfm.optimizer(model.parameters()), sampler, Acceleration())

    def steps() -> float:
        for _ in range(STEPS_PER_ROUND):
            terms = step()
        return float(terms["loss"].detach())  # the loop reads losses every few steps, not every step

    timed(benchmark, "vadbench step", steps, STEPS_PER_ROUND)


def test_reference_step(benchmark, rtfm, videos):
    loop = reference_loop(rtfm, videos)
    timed(benchmark, "reference step", lambda: [loop.step() for _ in range(STEPS_PER_ROUND)], STEPS_PER_ROUND)


def test_vadbench_batch(benchmark, sampler):
    batch = sampler.empty_batch()
    timed(benchmark, "vadbench batch", lambda: [sampler.draw_into(batch) for _ in range(20)], 20)


def test_reference_batch(benchmark, rtfm, videos):
    loop = reference_loop(rtfm, videos)
    timed(benchmark, "reference batch", lambda: (loop.batch_of(loop.normal), loop.batch_of(loop.abnormal)), 1)
