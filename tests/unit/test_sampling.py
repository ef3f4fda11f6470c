"""Each method's batches are drawn as its public code draws them (`vadbench.api.method.Sampling`).

The public loops are written here with torch's own ``DataLoader``, as the public codes write them: RTFM,
UR-DMU and BN-WVAD re-create each loader when ``(step - 1) % len(loader) == 0``; MGFN zips its two
loaders in an epoch loop; PEL4VAD iterates one loader in an epoch loop. Each loader gets the generator
vadbench gives it (`loader_generator`), so the index sequences must agree exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vadbench.api.method import Declarations, Method, Sampling, TrainBatch, TrainingInput
from vadbench.api.types import TrainSet
from vadbench.engine.acceleration import Acceleration
from vadbench.engine.sampling import EpochDraws, Loader, Sampler, loader_generator
from vadbench.engine.stacking import stacked_step
from vadbench.engine.training import TrainingLog, TrainingStep, per_epoch, train, train_method
from vadbench.plugins.manager import load_plugins

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning"),  # BN-WVAD's 4 workers
]

CROPS = 2
SEED = 3


@pytest.fixture(scope="module")
def plugins():
    return load_plugins()


def training_set(normal: int, abnormal: int) -> TrainSet:
    """Videos of `CROPS` crops, abnormal first as the public lists are, whose every value is the sample's
    number in video-then-crop order (video v, crop c: v * CROPS + c), so a batch says what was drawn."""
    videos = abnormal + normal
    number = np.arange(videos * CROPS, dtype=np.float32).reshape(videos, CROPS, 1, 1)
    return TrainSet(np.broadcast_to(number, (videos, CROPS, 1, 2)).copy(), np.repeat([1, 0], [abnormal, normal]),
                    tuple(f"v{i}" for i in range(videos)))


def drawn_samples(batch: TrainBatch, crops: str) -> np.ndarray:
    """Sample numbers of a batch: videos for joint crops, (video, crop) samples for independent ones."""
    values = batch.features[..., 0, 0] if crops == "independent" else batch.features[:, 0, 0, 0] // CROPS
    return values.long().numpy()


def our_batches(train: TrainSet, declared: TrainingInput, batch: int, steps: int) -> list[tuple[np.ndarray, bool]]:
    sampler = Sampler.create(train, torch.from_numpy(train.features), declared, batch, SEED)
    buffers = sampler.empty_batch()
    drawn = []
    for _ in range(steps):
        batch, ends_epoch = sampler.draw_into(buffers)  # the next draw overwrites the buffers
        drawn.append((drawn_samples(batch, declared.crops), ends_epoch))
    return drawn


def public_batches(sampling: Sampling, members: list[np.ndarray], batch: int, steps: int) -> list[np.ndarray]:
    """The public code's loop over torch DataLoaders of `members` (one list, or normal then abnormal)."""
    loaders = [
        DataLoader(m, batch_size=batch, shuffle=sampling.shuffle, drop_last=sampling.drop_last,
                   num_workers=sampling.workers, generator=loader_generator(SEED, i))
        for i, m in enumerate(members)
    ]
    out: list[np.ndarray] = []
    if sampling.restart == "own":  # if (step - 1) % len(loader) == 0: iterator = iter(loader)
        iterators: list[Iterator[torch.Tensor]] = [iter(())] * len(loaders)
        for step in range(1, steps + 1):
            for i, loader in enumerate(loaders):
                if (step - 1) % len(loader) == 0:
                    iterators[i] = iter(loader)
            out.append(np.concatenate([next(iterator).numpy() for iterator in iterators]))
        return out
    while len(out) < steps:  # for epoch: for batches in zip(*loaders)
        out.extend(np.concatenate([b.numpy() for b in batches]) for batches in zip(*loaders, strict=False))
    return out[:steps]


def class_members(train: TrainSet, declared: TrainingInput) -> list[np.ndarray]:
    """The samples of each loader in the public list's order: the training order, video by video and (for
    independent crops) crop by crop."""
    crops = CROPS if declared.crops == "independent" else 1
    labels = np.repeat(train.labels, crops)
    if declared.batch == "mixed":
        return [np.arange(len(labels))]
    return [np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)]


#: A small training set per method (normal, abnormal videos) whose loaders give several batches a pass,
#: with samples left over (drop_last), and the steps compared.
SMALL = {"rtfm": (70, 45), "ur-dmu": (70, 45), "bn-wvad": (70, 45), "mgfn": (70, 45), "pel4vad": (70, 45)}


#: The methods whose loaders declare worker processes (BN-WVAD 4, PEL4VAD 8), which torch's reference
#: DataLoader starts: ``slow``.
WITH_WORKERS = {"bn-wvad", "pel4vad"}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow if name in WITH_WORKERS else ())
                                  for name in sorted(SMALL)])
def test_batches_equal_the_public_loop_index_for_index(plugins, name):
    method = plugins.methods.create(name)
    declared, train = method.declarations().training_input, training_set(*SMALL[name])
    members = class_members(train, declared)
    batch = min(method.batch_size, *map(len, members))
    steps = 3 * max(len(m) // batch + 1 for m in members)  # every loader passes at least twice
    ours = our_batches(train, declared, batch, steps)
    public = public_batches(declared.sampling, members, batch, steps)
    assert len(ours) == len(public) == steps
    for step, ((drawn, _), expected) in enumerate(zip(ours, public, strict=True)):
        assert np.array_equal(drawn, expected), f"step {step + 1}"


def test_sultani_mil_draws_afresh_every_step_as_before(plugins):
    """Per-step draws: of each class a randperm on the device generator, cut to the batch, normal first
    (the draws of vadbench before epoch loaders existed, so its numbers do not move)."""
    method = plugins.methods.create("sultani-mil")
    declared, train = method.declarations().training_input, training_set(70, 45)
    assert declared.sampling == Sampling("per_step")
    ours = our_batches(train, declared, method.batch_size, 12)
    generator = torch.Generator().manual_seed(SEED)
    normal, abnormal = np.flatnonzero(train.labels == 0), np.flatnonzero(train.labels == 1)
    for drawn, ends_epoch in ours:
        expected = [m[torch.randperm(len(m), generator=generator)[:30].numpy()] for m in (normal, abnormal)]
        assert np.array_equal(drawn, np.concatenate(expected)) and not ends_epoch


#: Training sets whose counts are known without torch: (normal, abnormal videos), steps, and the times
#: each normal and abnormal sample (video or crop) is drawn in them.
COUNTS = {
    # Two loaders restarting on their own, all batches full: 128 normal crop samples (2 batches of 64),
    # 192 abnormal (3): in 6 steps the normal loader passes 3 times, the abnormal one twice.
    "ur-dmu": ((64, 96), 6, [3] * 128, [2] * 192),
    "bn-wvad": ((64, 96), 6, [3] * 128, [2] * 192),
    # The same with videos of 32: 64 normal (2 batches), 96 abnormal (3).
    "rtfm": ((64, 96), 6, [3] * 64, [2] * 96),
    # Zipped unshuffled loaders of 16 videos: 4 normal and 2 abnormal batches, so an epoch is 2 steps and
    # uses the first 32 videos of each class; the rest are never drawn.
    "mgfn": ((64, 40), 6, [3] * 32 + [0] * 32, [3] * 32 + [0] * 8),
    # One loader over 200 crop samples in batches of 128: 2 steps an epoch (128 + 72), each sample once.
    "pel4vad": ((60, 40), 6, [3] * 120, [3] * 80),
}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_every_sample_is_drawn_as_often_as_the_public_code_draws_it(plugins, name):
    method = plugins.methods.create(name)
    declared = method.declarations().training_input
    videos, steps, normal_counts, abnormal_counts = COUNTS[name]
    train = training_set(*videos)
    ours = our_batches(train, declared, method.batch_size, steps)
    abnormal = len(abnormal_counts)  # abnormal videos come first in the training set
    counts = np.bincount(np.concatenate([drawn for drawn, _ in ours]), minlength=abnormal + len(normal_counts))
    assert counts[abnormal:].tolist() == normal_counts
    assert counts[:abnormal].tolist() == abnormal_counts


def test_mgfn_walks_the_list_in_order_every_epoch(plugins):
    """The public loaders are not shuffled: epoch after epoch the same batches, normal then abnormal."""
    declared = plugins.methods.create("mgfn").declarations().training_input
    train = training_set(64, 40)  # abnormal videos 0..39, normal 40..103
    ours = our_batches(train, declared, 16, 6)
    expected = [np.r_[40:56, 0:16], np.r_[56:72, 16:32]] * 3
    assert all(np.array_equal(drawn, e) for (drawn, _), e in zip(ours, expected, strict=True))
    assert [ends for _, ends in ours] == [False, True] * 3


def test_pel4vad_epochs_end_with_a_smaller_batch(plugins):
    """One loader over all samples: ceil(N / 128) batches an epoch, the last one N % 128 samples."""
    declared = plugins.methods.create("pel4vad").declarations().training_input
    train = training_set(120, 80)  # 400 crop samples: 3 batches of 128, then 16
    ours = our_batches(train, declared, 128, 12)
    assert [len(drawn) for drawn, _ in ours] == [128, 128, 128, 16] * 3
    assert [ends for _, ends in ours] == [False, False, False, True] * 3
    for epoch in range(3):
        drawn = np.concatenate([d for d, _ in ours[4 * epoch : 4 * epoch + 4]])
        assert sorted(drawn.tolist()) == list(range(400))  # every sample once per epoch


@pytest.mark.parametrize(
    ("count", "batch", "drop_last", "restart", "workers"),
    [(10, 3, True, "own", 0), (10, 3, False, "own", 0), (9, 3, True, "own", 0), (10, 3, False, "zip", 0),
     (9, 3, True, "zip", 0),
     # torch's DataLoader starts 2 worker processes
     pytest.param(10, 3, True, "own", 2, marks=pytest.mark.slow),
     pytest.param(10, 4, False, "zip", 2, marks=pytest.mark.slow)],
)
def test_a_shuffled_loader_equals_torch_dataloader(count, batch, drop_last, restart, workers):
    sampling = Sampling("epochs", shuffle=True, drop_last=drop_last, restart=restart, workers=workers)
    draws = EpochDraws([Loader(np.arange(count), batch, sampling, loader_generator(SEED, 0))], restart)
    steps = 5 * -(-count // batch)
    ours = [draws.next()[0] for _ in range(steps)]
    public = public_batches(sampling, [np.arange(count)], batch, steps)
    assert all(np.array_equal(a, b) for a, b in zip(ours, public, strict=True))


@pytest.mark.slow  # torch's DataLoader starts 2 worker processes
def test_the_workers_read_ahead_draws_what_torch_draws():
    """A loader restarted before its end: with workers torch has read its order to the end (and drawn
    once more from the generator), without them not; the next passes differ."""
    sampling = Sampling("epochs", workers=2)
    public = public_batches(sampling, [np.arange(10)], 3, 9)
    for workers, same in ((2, True), (0, False)):
        loader = Loader(np.arange(10), 3, dataclasses.replace(sampling, workers=workers), loader_generator(SEED, 0))
        draws = EpochDraws([loader], "own")
        ours = [draws.next()[0] for _ in range(9)]
        assert all(np.array_equal(a, b) for a, b in zip(ours, public, strict=True)) is same


def test_zipped_loaders_of_unequal_length_equal_torch():
    sampling = Sampling("epochs", restart="zip")
    for normal, abnormal in ((10, 7), (7, 10), (9, 9)):
        members = [np.arange(normal), normal + np.arange(abnormal)]
        loaders = [Loader(m, 3, sampling, loader_generator(SEED, i)) for i, m in enumerate(members)]
        draws = EpochDraws(loaders, "zip")
        ours = [draws.next()[0] for _ in range(12)]
        public = public_batches(sampling, members, 3, 12)
        assert all(np.array_equal(a, b) for a, b in zip(ours, public, strict=True))


def test_loaders_of_a_run_and_of_other_seeds_draw_independent_orders():
    orders = [torch.randperm(50, generator=loader_generator(seed, loader)) for seed in (0, 1) for loader in (0, 1)]
    assert len({tuple(order.tolist()) for order in orders}) == 4
    assert torch.equal(torch.randperm(50, generator=loader_generator(0, 1)), orders[1])  # and reproducibly


class Reversed(Sampling):
    """An order of its own: every pass walks the samples backwards."""

    def order(self, count: int, generator: torch.Generator) -> Iterator[int]:
        return iter(range(count - 1, -1, -1))


def test_a_method_may_walk_its_samples_in_an_order_of_its_own():
    declared = TrainingInput(batch="mixed", sampling=Reversed("epochs", drop_last=False))
    ours = our_batches(training_set(3, 2), declared, 2, 4)
    assert [drawn.tolist() for drawn, _ in ours] == [[4, 3], [2, 1], [0], [4, 3]]
    assert declared.record()["input.order"] == "Reversed"


def test_declarations_are_checked_and_recorded(plugins):
    with pytest.raises(ValueError, match="drop_last"):
        TrainingInput(sampling=Sampling("epochs", drop_last=False))  # balanced halves would differ
    with pytest.raises(ValueError, match="kind"):
        Sampling("epoch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="restart"):
        Sampling("epochs", restart="together")  # type: ignore[arg-type]
    config = plugins.methods.create("rtfm").declarations().record()
    assert {k: v for k, v in config.items() if k.startswith("input.")} == {
        "input.reduction": "mean", "input.segments": 32, "input.crops": "joint", "input.batch": "balanced",
        "input.sampling": "epochs", "input.shuffle": True, "input.drop_last": True, "input.restart": "own",
        "input.workers": 0, "input.order": "torch"}
    assert plugins.methods.create("pel4vad").declarations().record()["scheduler_interval"] == "epoch"


# ------------------------------------------------------------------------------------- through the engine


@dataclasses.dataclass(frozen=True)
class LinearConfig:
    batch_size: int = 4
    steps: int = 9


class Linear(Method):
    """A per-snippet linear scorer with mixed batches from one loader (the last batch smaller), its
    learning rate halved every epoch; it records the batch sizes and learning rates it sees."""

    Config = LinearConfig

    def __init__(self, config: LinearConfig, sampling: Sampling | None = None) -> None:
        super().__init__(config)
        self.sampling = sampling or Sampling("epochs", drop_last=False, restart="zip")
        self.sizes: list[int] = []
        self.rates: list[float] = []
        self._optimizer: torch.optim.Optimizer | None = None

    def declarations(self) -> Declarations:
        return Declarations(TrainingInput(batch="mixed", crops="independent", sampling=self.sampling),
                            scheduler_interval="epoch")

    def build(self, crops: int, feature_dim: int) -> torch.nn.Module:
        return torch.nn.Linear(feature_dim, 1)

    def loss(self, model: torch.nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        self.sizes.append(batch.features.shape[-3])
        if self._optimizer is not None:
            self.rates.append(self._optimizer.param_groups[0]["lr"])
        scores = torch.sigmoid(model(batch.features / 100)).mean(dim=(-1, -2))
        return {"loss": torch.nn.functional.binary_cross_entropy(scores, batch.labels)}

    def score(self, model: torch.nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(model(features).mean(dim=(1, 3)))  # (B, C, T, 1) -> (B, T)

    def optimizer(self, parameters):
        self._optimizer = torch.optim.SGD(parameters, lr=0.1)
        return self._optimizer

    def scheduler(self, optimizer, steps):
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)


def test_the_engine_trains_on_the_smaller_last_batch_and_steps_an_epoch_scheduler_per_epoch():
    method = Linear(LinearConfig())
    train = training_set(3, 2)  # 10 samples: batches of 4, 4, 2
    torch.manual_seed(0)
    model = method.build(CROPS, 2)
    sampler = Sampler.create(train, torch.from_numpy(train.features), method.declarations().training_input, 4, SEED)
    log, step = train_method(method, model, sampler, 9, progress=False)
    assert log.error is None and step.graphed is None  # no graph for a batch whose size changes
    assert method.sizes == [4, 4, 2] * 3
    assert method.rates == [0.1] * 3 + [0.05] * 3 + [0.025] * 3


def test_an_epoch_scheduler_needs_epochs():
    """Loaders restarting on their own have no common epoch: an epoch schedule is refused."""
    method = Linear(LinearConfig())
    own = dataclasses.replace(method.declarations().training_input, batch="balanced", sampling=Sampling("epochs"))
    sampler = Sampler.create(training_set(3, 2), torch.zeros(5, CROPS, 1, 2), own, 2, SEED)
    with pytest.raises(ValueError, match="no epochs"):
        per_epoch(method, [sampler])
    declared = method.declarations().training_input
    mixed = Sampler.create(training_set(3, 2), torch.zeros(5, CROPS, 1, 2), declared, 2, SEED)
    assert per_epoch(method, [mixed])


def test_stacked_runs_take_the_smaller_last_batch_together():
    """Seeds of one group pass their loaders in step, so their smaller batches come at the same steps; the
    stacked runs then equal the runs alone."""
    videos = training_set(3, 2)
    features = torch.from_numpy(videos.features)
    weights = []
    for seeds in ((0,), (1,), (0, 1)):
        method = Linear(LinearConfig())
        models = []
        for seed in seeds:
            torch.manual_seed(seed)
            models.append(method.build(CROPS, 2))
        samplers = [Sampler.create(videos, features, method.declarations().training_input, 4, seed) for seed in seeds]
        if len(seeds) == 1:
            train_method(method, models[0], samplers[0], 9, progress=False)
        else:
            step, finish = stacked_step(method, models, samplers, Acceleration(), 9)
            train(step, 9, [TrainingLog() for _ in seeds], progress=False)
            finish()
        weights.extend(model.weight.detach().clone() for model in models)
        assert method.sizes == [4, 4, 2] * 3 and method.rates[-1] == pytest.approx(0.025)
    alone0, alone1, stacked0, stacked1 = weights
    torch.testing.assert_close(stacked0, alone0)
    torch.testing.assert_close(stacked1, alone1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_cuda_graph_replay_draws_the_declared_loaders(plugins):
    """RTFM's loaders under a captured graph: the draws happen before each replay (dropout off, TF32 off)."""
    from conftest import TINY_SYNTHETIC

    synthetic = plugins.datasets.create("synthetic", {**TINY_SYNTHETIC, "train_normal": 20}).load()
    device = torch.device("cuda")
    results = []
    for graphs in (False, True):
        method = plugins.methods.create("rtfm", {"dropout": 0.0, "mask_dropout": 0.0, "batch_size": 4})
        torch.manual_seed(0)
        model = method.build(synthetic.train.crops, synthetic.train.feature_dim).to(device)
        features = torch.as_tensor(synthetic.train.features, device=device)
        declared = method.declarations().training_input
        sampler = Sampler.create(synthetic.train, features, declared, method.batch_size, seed=0)
        with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            log, step = train_method(method, model, sampler, 12, acceleration=Acceleration(cuda_graph=graphs),
                                     progress=False)
        results.append(model.state_dict())
    assert log.engine == "fp32+cudagraph" and isinstance(step, TrainingStep)
    for ours, theirs in zip(results[1].values(), results[0].values(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
