"""Conformance checks for plugin authors: one pytest test per (component, check).

A plugin author runs them in the plugin's own test suite, in the style of scikit-learn's
``parametrize_with_checks``::

    from vadbench.testing import parametrize_with_checks

    @parametrize_with_checks(methods=[MyMethod(MyMethod.Config(hidden=16))])
    def test_conformance(component, check):
        check(component)

Each (component, check) pair is its own pytest id, such as ``MyMethod(hidden=16)-check_scores``,
so ``pytest -k check_scores`` selects one check. A check raises AssertionError naming the part of
the contract that broke. Components are instances: give them small options (a synthetic dataset of
a few videos, a small hidden width), because every check builds, trains or loads them.

* methods (`vadbench.api.method.Method`, probed with `crops` crops of `feature_dim` dimensions): one
  training step (a finite scalar loss that changes the parameters), logged loss terms detached, the
  same step twice under one seed gives the same model, score shape and range, short videos (T = 1,
  2, 3, fewer snippets than a top-k needs), padding invariance, the engine's scoring path giving each
  video what it gets alone (`val` selection's held-out video scores; the test pass's stored feature
  magnitudes), and training as a stacked model (`torch.func.vmap` over the loss, as the ``stacked``
  executor does);
* datasets (`vadbench.api.dataset.Dataset`): `load` gives a Benchmark of the declared types, video
  labels only in training, test ground truth of 16 frames per snippet consistent with the video
  labels, unique video ids in disjoint splits, the primary metric computable, the same data twice;
* executors (`vadbench.api.executor.Executor`): a few tiny runs of the built-in methods on the
  synthetic benchmark give the results of the ``serial`` executor (configure one CPU per run, as
  the reference uses one torch thread).

Some checks apply only to what a method declares (`vadbench.api.method`): ``padded_scoring = "alone"``
(the method cannot score zero-padded batches) skips the padding check, a method without feature
magnitudes (`Method.magnitudes` not overridden) skips the stored-magnitudes check, and a method that cannot be
stacked (``stackable = False``, a gradient clip, which would couple stacked runs, or a training step
of its own) skips the stacked-training check; the test shows as skipped with the reason. Training
checks draw batches of the method's declared `TrainingInput` through the engine's own sampler and
step.
Executors declare ``Executor.same_numbers_as_serial``; one that does not (``stacked``) must match
serial up to float rounding, on runs that draw no random numbers in their step.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from vadbench.api.dataset import Dataset
from vadbench.api.executor import Executor, WorkerFailure
from vadbench.api.method import Method
from vadbench.api.types import Benchmark, RunResult, RunSpec, TestSet, TrainSet
from vadbench.data.pooling import reduce_video
from vadbench.data.prompts import stand_in_prompts
from vadbench.engine.acceleration import Acceleration
from vadbench.engine.runner import seed_everything
from vadbench.engine.sampling import Sampler
from vadbench.engine.scoring import VideoScorer
from vadbench.engine.selection import ValidationSelector, top_tenth_mean
from vadbench.engine.stacking import stack_refusal, stacked_step
from vadbench.engine.training import TrainingLog, TrainingStep, train
from vadbench.executors.serial import SerialConfig, SerialExecutor
from vadbench.plan.grid import flatten
from vadbench.plugins.manager import get_plugins
from vadbench.report.metrics import evaluate

#: The seed of every check: a failure reproduces.
SEED = 0
#: Largest score change that padding may cause, and that float rounding may cause between executors.
ATOL = 1e-5


# ---------------------------------------------------------------------------------------------- methods


def check_training_step(method: Method, *, crops: int = 2, feature_dim: int = 16) -> None:
    """One optimisation step on a (2 + 2)-video batch gives a finite scalar loss and changes the model."""
    model = _seeded_model(method, crops, feature_dim)
    before = [p.detach().clone() for p in model.parameters()]
    terms = _train_step(method, model, crops, feature_dim)
    assert "loss" in terms, f"Method.loss must return a dict with the total under 'loss', got keys {sorted(terms)}"
    loss = terms["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss), f"the loss must be a finite scalar, got {loss}"
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert changed, "one optimisation step did not change any parameter"


def check_loss_terms_detached(method: Method, *, crops: int = 2, feature_dim: int = 16) -> None:
    """Every logged term (all entries of the loss dict but 'loss') is a detached finite scalar.

    A term that still requires grad keeps its graph alive until it is logged, and a logged value
    must be one number per step.
    """
    model = _seeded_model(method, crops, feature_dim).train()
    sampler = _sampler(method, crops, feature_dim)
    batch = sampler.draw_into(sampler.empty_batch()).batch
    terms = method.loss(model, batch)
    for name, value in terms.items():
        if name == "loss":
            continue
        assert isinstance(value, torch.Tensor), f"loss term {name!r} must be a tensor, got {type(value).__name__}"
        assert not value.requires_grad, f"loss term {name!r} requires grad: return it .detach()ed"
        assert value.ndim == 0 and torch.isfinite(value), f"loss term {name!r} must be a finite scalar, got {value}"


def check_deterministic_under_seed(method: Method, *, crops: int = 2, feature_dim: int = 16) -> None:
    """Building the model and taking one step twice under the same seed gives identical loss and weights."""
    runs = []
    for _ in range(2):
        model = _seeded_model(method, crops, feature_dim)
        loss = _train_step(method, model, crops, feature_dim)["loss"].detach()
        runs.append((loss, [p.detach() for p in model.parameters()]))
    (loss, weights), (again, weights_again) = runs
    assert torch.equal(loss, again), f"the same seed gave two losses: {loss.item()} and {again.item()}"
    same = all(torch.equal(a, b) for a, b in zip(weights, weights_again, strict=True))
    assert same, "the same seed gave different weights after one step (an unseeded random source?)"


def check_scores(method: Method, *, crops: int = 2, feature_dim: int = 16) -> None:
    """Scores of (B, T, C, D) videos have shape (B, T), are finite and lie in [0, 1] (the range only for a
    method that declares ``probability_scores``)."""
    _check_score_shape_and_range(method, _seeded_model(method, crops, feature_dim), crops, feature_dim, 40)


def check_short_videos(method: Method, *, crops: int = 2, feature_dim: int = 16) -> None:
    """Videos of 1, 2 and 3 snippets (fewer than a top-k may ask for) score without error, in range."""
    model = _seeded_model(method, crops, feature_dim)
    for length in (1, 2, 3):
        try:
            _check_score_shape_and_range(method, model, crops, feature_dim, length)
        except AssertionError:
            raise
        except Exception as error:
            raise AssertionError(
                f"scoring {length}-snippet videos failed ({type(error).__name__}: {error}); "
                f"clamp any top-k to the video's length"
            ) from error


def check_padding_invariance(method: Method, *, crops: int = 2, feature_dim: int = 16) -> None:
    """Scoring zero-padded videos together equals scoring each video alone (within `ATOL`)."""
    model = _seeded_model(method, crops, feature_dim).eval()
    lengths = torch.tensor([7, 19, 1, 12])
    generator = torch.Generator().manual_seed(SEED)
    videos = [torch.rand(int(n), crops, feature_dim, generator=generator) for n in lengths]
    padded = torch.zeros(len(videos), int(lengths.max()), crops, feature_dim)
    for row, video in enumerate(videos):
        padded[row, : len(video)] = video
    with torch.inference_mode():
        together = method.score(model, padded, lengths)
        for row, video in enumerate(videos):
            alone = method.score(model, video[None], lengths[row : row + 1])[0]
            gap = (together[row, : len(video)] - alone).abs().max().item()
            assert gap <= ATOL, (
                f"video {row} (T={len(video)}): scores in a padded batch differ from scoring it alone by "
                f"{gap:.2e}; mask the padding, or declare padded_scoring = \"alone\""
            )


def check_stacked_training(method: Method, *, crops: int = 2, feature_dim: int = 16) -> None:
    """Two models train as one stacked model (vmap over the loss): finite losses, both models change."""
    models = [_seeded_model(method, crops, feature_dim, seed=SEED + run) for run in range(2)]
    samplers = [_sampler(method, crops, feature_dim, seed=SEED + run) for run in range(2)]
    before = [[p.detach().clone() for p in model.parameters()] for model in models]
    logs = [TrainingLog() for _ in models]
    try:
        step, finish = stacked_step(method, models, samplers, Acceleration(), 2)
        train(step, 2, logs, log_every=1, progress=False)
        finish()
    except Exception as error:
        raise AssertionError(
            f"training as a stacked model failed ({type(error).__name__}: {error}); make the loss "
            f"vmap-friendly (no .item(), no data-dependent Python branches, no in-place writes to inputs), "
            f"or declare stackable = False"
        ) from error
    errors = [log.error for log in logs]
    assert errors == [None, None], f"stacked training diverged: {errors}"
    assert all(log.terms for log in logs), "stacked training logged no loss terms"
    for run, (model, weights) in enumerate(zip(models, before, strict=True)):
        changed = any(not torch.equal(a, b) for a, b in zip(weights, model.parameters(), strict=True))
        assert changed, f"stacked training did not change the parameters of run {run}"


def check_val_scoring(method: Method, *, crops: int = 2, feature_dim: int = 16) -> None:
    """`val` selection gives each held-out video (zero-padded training segments of several true lengths) the
    score it gets alone: the top tenth of its true segments' scores, post-processed as the method declares
    (`ValidationSelector.video_scores`)."""
    model = _seeded_model(method, crops, feature_dim).eval()
    videos = _videos(crops, feature_dim)
    held_out = TrainSet(_padded(videos).transpose(0, 2, 1, 3), np.arange(len(videos)) % 2,
                        tuple(f"video_{i}" for i in range(len(videos))), lengths=_lengths(videos))
    selector = ValidationSelector(method, held_out, held_out, torch.device("cpu"), steps=1, every=1)
    found = selector.video_scores(model)
    for row, video in enumerate(videos):
        alone = top_tenth_mean(_alone(method, model, video)[0])
        assert _close(found[row], alone), (
            f"held-out video {row} (T={len(video)}): its val score {found[row]:.6g} differs from scoring it alone "
            f"({alone:.6g}); mask the padding, or declare padded_scoring = \"alone\""
        )


def check_stored_magnitudes(method: Method, *, crops: int = 2, feature_dim: int = 16) -> None:
    """For a method with feature magnitudes: the test pass (the engine's batching of test videos of several
    lengths, `Method.score_with_magnitudes`) stores each video's magnitudes and scores as the method computes
    them for the video alone (`Method.magnitudes`, `Method.score`)."""
    model = _seeded_model(method, crops, feature_dim).eval()
    videos = _videos(crops, feature_dim)
    lengths = _lengths(videos)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    test = TestSet(np.concatenate(videos), offsets, np.zeros(len(videos), np.int64),
                   np.zeros(16 * offsets[-1], np.int64), tuple(f"video_{i}" for i in range(len(videos))),
                   ("Normal",) * len(videos))
    scored = VideoScorer(method, test, torch.device("cpu"))(model, magnitudes=True)
    for row, video in enumerate(videos):
        scores, magnitudes = _alone(method, model, video)
        assert magnitudes is not None, "Method.magnitudes returned None for a method that has magnitudes"
        assert scored.magnitudes is not None, "the test pass stored no magnitudes (Method.score_with_magnitudes)"
        for name, found, expected in (("scores", scored.scores[row], scores),
                                      ("magnitudes", scored.magnitudes[row], magnitudes)):
            assert found.shape == expected.shape and _close(found, expected), (
                f"video {row} (T={len(video)}): the stored {name} differ from computing them alone by "
                f"{np.abs(found - expected).max():.2e}; mask the padding in both, or declare "
                f"padded_scoring = \"alone\" (and let score_with_magnitudes agree with score and magnitudes)"
            )


def _has_magnitudes(method: Method) -> bool:
    """Whether the method has feature magnitudes (it overrides `Method.magnitudes` or the one-pass hook)."""
    own = type(method)
    return own.magnitudes is not Method.magnitudes or own.score_with_magnitudes is not Method.score_with_magnitudes


def _videos(crops: int, feature_dim: int) -> list[np.ndarray]:
    """Random videos (T, C, D) of 7, 19, 1, 12, 33 and 26 snippets: several lengths, some with a top tenth of
    more than one snippet."""
    rng = np.random.default_rng(SEED)
    return [rng.random((n, crops, feature_dim), dtype=np.float32) for n in (7, 19, 1, 12, 33, 26)]


def _lengths(videos: list[np.ndarray]) -> np.ndarray:
    return np.array([len(video) for video in videos])


def _padded(videos: list[np.ndarray]) -> np.ndarray:
    """The videos zero-padded to the longest: (B, T_max, C, D)."""
    padded = np.zeros((len(videos), max(len(v) for v in videos), *videos[0].shape[1:]), np.float32)
    for row, video in enumerate(videos):
        padded[row, : len(video)] = video
    return padded


def _alone(method: Method, model: nn.Module, video: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A video's post-processed scores and its magnitudes (None if the method has none), scored alone."""
    features, length = torch.from_numpy(video)[None], torch.tensor([len(video)])
    with torch.inference_mode():
        scores = method.score(model, features, length)[0].float().numpy()
        magnitudes = method.magnitudes(model, features, length)
    return (np.asarray(method.postprocess(scores), np.float32),
            None if magnitudes is None else magnitudes[0].float().numpy())


def _close(found: np.ndarray | float, expected: np.ndarray | float) -> bool:
    """Equal within `ATOL`, relative to the values' size where they exceed 1 (magnitudes may)."""
    return bool(np.all(np.abs(np.subtract(found, expected)) <= ATOL * np.maximum(1.0, np.abs(expected))))


def _seeded_model(method: Method, crops: int, feature_dim: int, seed: int = SEED) -> nn.Module:
    """A fresh model built right after seeding every generator, as the runner builds one."""
    seed_everything(seed)
    return method.build(crops, feature_dim)


def _train_step(method: Method, model: nn.Module, crops: int, feature_dim: int) -> dict[str, torch.Tensor]:
    """One step as the engine takes it (the method's batch, loss or own step, clip, update, schedule)."""
    optimizer = method.optimizer(model.parameters())
    sampler = _sampler(method, crops, feature_dim)
    model.train()
    return TrainingStep.for_method(
        method, model, optimizer, sampler, Acceleration(), method.scheduler(optimizer, 1)
    )()


def _sampler(method: Method, crops: int, feature_dim: int, seed: int = SEED) -> Sampler:
    """Batches of the method's declared training input, drawn from 4 + 4 random videos (abnormal ones
    larger, of two anomaly classes) of 5 to 40 snippets reduced as the method declares, with the stand-in
    class prompts when the method reads prompts."""
    rng = np.random.default_rng(SEED)
    reduction = method.training_input.reduction
    labels = np.repeat([0, 1], 4)
    videos = [rng.random((int(rng.integers(5, 41)), crops, feature_dim), dtype=np.float32) + 0.5 * y for y in labels]
    size = reduction.size(max(len(v) for v in videos))
    train = TrainSet(
        np.stack([reduce_video(v, reduction, size) for v in videos]), labels,
        tuple(f"video_{i}" for i in range(len(videos))),
        lengths=np.array([reduction.length(len(v)) for v in videos]) if reduction.pads else None,
        classes=labels * np.array([1, 2] * 4),  # two anomaly classes
    )
    prompts = stand_in_prompts(("Normal", "anomaly-a", "anomaly-b")) if "prompts" in method.side_inputs else None
    return Sampler.create(train, torch.from_numpy(train.features), method.training_input, 2, seed, prompts)


def _check_score_shape_and_range(method: Method, model: nn.Module, crops: int, feature_dim: int, length: int) -> None:
    features = torch.rand(3, length, crops, feature_dim, generator=torch.Generator().manual_seed(SEED))
    with torch.inference_mode():
        scores = method.score(model.eval(), features, torch.full((3,), length))
    expected = (3, length)
    assert scores.shape == expected, f"scores of (3, {length}, C, D) must be {expected}, got {tuple(scores.shape)}"
    assert torch.isfinite(scores).all(), f"scores of {length}-snippet videos are not finite"
    if method.probability_scores:
        assert ((scores >= 0) & (scores <= 1)).all(), f"scores of {length}-snippet videos must lie in [0, 1]"


# --------------------------------------------------------------------------------------------- datasets


def check_benchmark_types(dataset: Dataset) -> None:
    """`load` returns a Benchmark whose train set is a TrainSet, test set a TestSet, of float features."""
    benchmark = dataset.load()
    assert isinstance(benchmark, Benchmark), f"load() must return a Benchmark, got {type(benchmark).__name__}"
    assert isinstance(benchmark.train, TrainSet), f"Benchmark.train must be a TrainSet, got {type(benchmark.train)}"
    assert isinstance(benchmark.test, TestSet), f"Benchmark.test must be a TestSet, got {type(benchmark.test)}"
    for split in ("train", "test"):
        dtype = getattr(benchmark, split).features.dtype
        assert dtype == np.float32, f"{split} features must be float32, got {dtype}"
    assert benchmark.name, "the benchmark needs a name"


def check_weak_training_labels(dataset: Dataset) -> None:
    """Training carries one 0/1 label per video (no frame labels), and both classes occur."""
    train = dataset.load().train
    # The exact type: a subclass could carry frame-level labels into training.
    assert type(train) is TrainSet, f"the training set must be a plain TrainSet (video labels only), got {type(train)}"
    labels = np.asarray(train.labels)
    assert labels.shape == (len(train),), f"training labels must be one per video, got shape {labels.shape}"
    classes = set(np.unique(labels).tolist())
    assert classes == {0, 1}, f"training needs normal (0) and abnormal (1) videos only, got labels {sorted(classes)}"


def check_test_ground_truth(dataset: Dataset) -> None:
    """Test offsets cover every snippet once, frame labels are 0/1, 16 per snippet, and agree with video labels.

    A normal video has no anomalous frame; an abnormal video has at least one.
    """
    test = dataset.load().test
    offsets = np.asarray(test.offsets)
    assert offsets[0] == 0 and offsets[-1] == len(test.features), "test offsets must run from 0 to the snippet count"
    assert (np.diff(offsets) >= 1).all(), "every test video needs at least one snippet (offsets strictly increasing)"
    frames = np.asarray(test.frame_labels)
    assert len(frames) == test.snippet_frames * len(test.features), (
        f"test ground truth has {len(frames)} frames, expected {test.snippet_frames} per snippet"
    )
    assert set(np.unique(frames).tolist()) <= {0, 1}, "test frame labels must be 0 or 1"
    assert set(np.unique(test.labels).tolist()) <= {0, 1}, "test video labels must be 0 or 1"
    for video, label in enumerate(test.labels):
        start, end = test.snippet_frames * offsets[video], test.snippet_frames * offsets[video + 1]
        anomalous = bool(frames[start:end].any())
        assert anomalous == bool(label), (
            f"test video {test.video_ids[video]!r} is labelled {label} but has "
            f"{'some' if anomalous else 'no'} anomalous frames"
        )


def check_video_ids(dataset: Dataset) -> None:
    """Video ids are unique within each split, and no test video is also a training video."""
    benchmark = dataset.load()
    train, test = benchmark.train.video_ids, benchmark.test.video_ids
    assert len(set(train)) == len(train), "training video ids repeat"
    assert len(set(test)) == len(test), "test video ids repeat"
    shared = sorted(set(train) & set(test))
    assert not shared, f"test videos also in training: {shared[:5]}"


def check_primary_metric(dataset: Dataset) -> None:
    """The benchmark's primary metric comes out of `vadbench.report.metrics.evaluate` as a finite number."""
    benchmark = dataset.load()
    scores = np.random.default_rng(SEED).random(len(benchmark.test.features))
    metrics = evaluate(scores, benchmark.test)
    value = metrics.get(benchmark.primary_metric)
    assert isinstance(value, float) and np.isfinite(value), (
        f"primary metric {benchmark.primary_metric!r} is {value!r}; metrics are {sorted(metrics)}"
    )


def check_deterministic_load(dataset: Dataset) -> None:
    """Loading twice gives the same videos, labels and features (a seed or the files decide, nothing else)."""
    first, second = dataset.load(), dataset.load()
    for split in ("train", "test"):
        a, b = getattr(first, split), getattr(second, split)
        assert a.video_ids == b.video_ids, f"{split} video ids differ between two loads"
        assert np.array_equal(a.labels, b.labels), f"{split} labels differ between two loads"
        assert np.array_equal(a.features, b.features), f"{split} features differ between two loads"
    assert np.array_equal(first.test.frame_labels, second.test.frame_labels), "test ground truth differs"


# -------------------------------------------------------------------------------------------- executors

#: A tiny synthetic benchmark (the runs take a second each).
_TINY_SYNTHETIC = {
    "train_normal": 8, "train_abnormal": 8, "test_normal": 6, "test_abnormal": 6,
    "min_length": 12, "max_length": 24, "feature_dim": 16, "crops": 2, "mu": 4,
}
#: Two seeds of one configuration (which the stacked executor trains together; dropout off, so that
#: stacking changes nothing but float rounding) and another method: the built-ins, always installed.
EXECUTOR_SPECS = tuple(
    RunSpec(method, dataset_options=_TINY_SYNTHETIC, method_options=options, seed=seed, steps=6, device="cpu")
    for method, options, seed in (
        ("sultani-mil", {"dropout": 0.0}, 0), ("sultani-mil", {"dropout": 0.0}, 1), ("rtfm", {}, 0),
    )
)


def check_same_results_as_serial(executor: Executor) -> None:
    """`EXECUTOR_SPECS` give the same metrics, config and scores as under ``serial`` (one thread per run).

    Exactly the same unless the executor declares ``same_numbers_as_serial = False``; then equal up
    to float rounding (`ATOL`), with the same config but for ``engine`` (how the steps ran).
    """
    reference = _serial_results()
    with executor.session(get_plugins(), progress=False):
        outcomes = list(executor.execute(EXECUTOR_SPECS))
    failures = [f"{o.spec.method} seed {o.spec.seed}: {o.error}" for o in outcomes if isinstance(o, WorkerFailure)]
    assert not failures, f"runs failed: {failures}"
    results = [o for o in outcomes if isinstance(o, RunResult)]
    assert sorted(r.spec.key for r in results) == sorted(reference), "each spec must come back exactly once"
    exact = executor.same_numbers_as_serial
    for result in results:
        _compare(result, reference[result.spec.key], exact)


@functools.cache
def _serial_results() -> dict[str, RunResult]:
    """The reference: `EXECUTOR_SPECS` under ``serial`` with one thread (computed once per process)."""
    serial = SerialExecutor(SerialConfig(cpus_per_run=1))
    with serial.session(get_plugins(), progress=False):
        results = [o for o in serial.execute(EXECUTOR_SPECS) if isinstance(o, RunResult)]
    assert all(r.status == "ok" for r in results), "the serial reference runs failed"
    return {r.spec.key: r for r in results}


def _compare(result: RunResult, reference: RunResult, exact: bool) -> None:
    """Assert that `result` reproduces `reference`: exactly, or up to float rounding."""
    run = f"{result.spec.method} seed {result.spec.seed}"
    assert result.status == "ok", f"{run}: status {result.status!r} ({result.error})"
    ignored = set() if exact else {"engine"}
    config = {k: v for k, v in result.config.items() if k not in ignored}
    assert config == {k: v for k, v in reference.config.items() if k not in ignored}, f"{run}: config differs"
    ours, theirs = flatten(result.metrics), flatten(reference.metrics)
    assert ours.keys() == theirs.keys(), f"{run}: metrics {sorted(ours)} differ from serial's {sorted(theirs)}"
    assert result.scores.keys() == reference.scores.keys(), f"{run}: scored videos differ"
    if exact:
        assert ours == theirs, f"{run}: metrics differ from serial's"
        same = all(np.array_equal(result.scores[v], reference.scores[v]) for v in reference.scores)
    else:
        assert all(np.isclose(ours[k], theirs[k], rtol=ATOL, atol=ATOL) for k in theirs), f"{run}: metrics differ"
        same = all(np.allclose(result.scores[v], reference.scores[v], atol=ATOL) for v in reference.scores)
    assert same, f"{run}: scores differ from serial's"


# ------------------------------------------------------------------------------------------ collecting

METHOD_CHECKS = (
    check_training_step, check_loss_terms_detached, check_deterministic_under_seed, check_scores,
    check_short_videos, check_padding_invariance, check_val_scoring, check_stored_magnitudes,
    check_stacked_training,
)
DATASET_CHECKS = (
    check_benchmark_types, check_weak_training_labels, check_test_ground_truth, check_video_ids,
    check_primary_metric, check_deterministic_load,
)
EXECUTOR_CHECKS = (check_same_results_as_serial,)
#: Checks that apply only to what a method declares: each gives the reason it does not apply, or None.
DECLARED: dict[Callable[..., None], Callable[[Any], str | None]] = {
    check_padding_invariance: lambda method: None if method.padded_scoring == "safe" else (
        f"{type(method).__name__} declares padded_scoring = {method.padded_scoring!r}"),
    check_stored_magnitudes: lambda method: None if _has_magnitudes(method) else (
        f"{type(method).__name__} has no feature magnitudes (Method.magnitudes is not overridden)"),
    check_stacked_training: stack_refusal,
}


def parametrize_with_checks(
    *,
    methods: Sequence[Method] = (),
    datasets: Sequence[Dataset] = (),
    executors: Sequence[Executor] = (),
    crops: int = 2,
    feature_dim: int = 16,
) -> Any:
    """A ``pytest.mark.parametrize`` over ``(component, check)``: one test id per component and check.

    Decorate ``def test_conformance(component, check): check(component)``. Ids read
    ``ClassName(changed options)-check_name``. Method checks probe models built for `crops` crops
    of `feature_dim` dimensions.
    """
    import pytest  # a test-time dependency only

    params = []
    for component, check in _pairs(methods, datasets, executors):
        bound = functools.partial(check, crops=crops, feature_dim=feature_dim) if check in METHOD_CHECKS else check
        reason = _not_declared(component, check)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(component, bound, id=f"{describe(component)}-{check.__name__}", marks=marks))
    return pytest.mark.parametrize(("component", "check"), params)


def _pairs(
    methods: Sequence[Method], datasets: Sequence[Dataset], executors: Sequence[Executor]
) -> Iterator[tuple[Any, Callable[..., None]]]:
    for checks, components in ((METHOD_CHECKS, methods), (DATASET_CHECKS, datasets), (EXECUTOR_CHECKS, executors)):
        for component in components:
            for check in checks:
                yield component, check


def _not_declared(component: Any, check: Callable[..., None]) -> str | None:
    """Why `check` does not apply to `component` (by what it declares), else None."""
    reason = DECLARED.get(check)
    return None if reason is None else reason(component)


def describe(component: Any) -> str:
    """``ClassName(option=value,...)`` with the options that differ from their defaults: a readable id."""
    config = component.config
    changed = []
    for field in dataclasses.fields(config):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = dataclasses.MISSING
        value = getattr(config, field.name)
        if value != default:
            changed.append(f"{field.name}={value}")
    return f"{type(component).__name__}({','.join(changed)})" if changed else type(component).__name__
