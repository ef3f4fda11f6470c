"""Conformance checks of a method (`vadbench.api.method.Method`), probed with `crops` crops of
`feature_dim` dimensions: one training step (a finite scalar loss that changes the parameters), logged loss
terms detached, the same step twice under one seed gives the same model, score shape and range, short
videos (T = 1, 2, 3, fewer snippets than a top-k needs), padding invariance, the engine's scoring path
giving each video what it gets alone (`val` selection's held-out video scores; the test pass's stored
feature magnitudes), and training as a stacked model (`torch.func.vmap` over the loss, as the ``stacked``
executor does).

Some checks apply only to what a method declares (`vadbench.api.method.Declarations`, see `DECLARED`):
``padded_scoring="alone"`` skips the padding check, a method without feature magnitudes (no
``score_with_magnitudes``) skips the stored-magnitudes check, and a method that cannot be stacked
(``stackable=False``, a gradient clip, which would couple stacked runs, or a training step of its own) skips
the stacked-training check. Training checks draw batches of the method's declared `TrainingInput` through
the engine's own sampler and step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from vadbench.api.method import Method
from vadbench.api.types import TestSet, TrainSet
from vadbench.data.pooling import reduce_video
from vadbench.data.prompts import stand_in_prompts
from vadbench.engine.acceleration import Acceleration
from vadbench.engine.runner import seed_everything
from vadbench.engine.sampling import Sampler
from vadbench.engine.scoring import VideoScorer
from vadbench.engine.selection import ValidationSelector, top_tenth_mean
from vadbench.engine.stacking import stack_refusal, stacked_step
from vadbench.engine.training import TrainingLog, TrainingStep, train
from vadbench.testing.common import ATOL, SEED, close


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
    """Scores of (B, C, T, D) videos have shape (B, T), are finite and lie in [0, 1] (the range only for a
    method that declares ``probability_scores``, the default)."""
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
    videos = [torch.rand(crops, int(n), feature_dim, generator=generator) for n in lengths]  # (C, T, D)
    padded = torch.zeros(len(videos), crops, int(lengths.max()), feature_dim)
    for row, (video, length) in enumerate(zip(videos, lengths.tolist(), strict=True)):
        padded[row, :, :length] = video
    with torch.inference_mode():
        together = method.score(model, padded, lengths)
        for row, (video, length) in enumerate(zip(videos, lengths.tolist(), strict=True)):
            alone = method.score(model, video[None], lengths[row : row + 1])[0]
            gap = (together[row, :length] - alone).abs().max().item()
            assert gap <= ATOL, (
                f"video {row} (T={length}): scores in a padded batch differ from scoring it alone by "
                f"{gap:.2e}; mask the padding, or declare padded_scoring=\"alone\""
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
            f"or declare stackable=False"
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
    held_out = TrainSet(_padded(videos), np.arange(len(videos)) % 2,
                        tuple(f"video_{i}" for i in range(len(videos))), lengths=_lengths(videos))
    selector = ValidationSelector(method, held_out, held_out, torch.device("cpu"), steps=1, every=1)
    found = selector.video_scores(model)
    for row, video in enumerate(videos):
        alone = top_tenth_mean(_alone(method, model, video))
        assert close(found[row], alone), (
            f"held-out video {row} (T={len(video)}): its val score {found[row]:.6g} differs from scoring it alone "
            f"({alone:.6g}); mask the padding, or declare padded_scoring=\"alone\""
        )


def check_stored_magnitudes(method: Method, *, crops: int = 2, feature_dim: int = 16) -> None:
    """For a method with feature magnitudes (`Declarations.score_with_magnitudes`): the test pass (the
    engine's batching of test videos of several lengths) stores each video's magnitudes and scores as the
    method computes them for the video alone (its magnitudes hook, `Method.score`)."""
    hook = method.declarations().score_with_magnitudes
    assert hook is not None, "the method declares no score_with_magnitudes"
    model = _seeded_model(method, crops, feature_dim).eval()
    videos = _videos(crops, feature_dim)
    lengths = _lengths(videos)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    test = TestSet(np.concatenate(videos), offsets, np.zeros(len(videos), np.int64),
                   np.zeros(16 * offsets[-1], np.int64), tuple(f"video_{i}" for i in range(len(videos))),
                   ("Normal",) * len(videos))
    scored = VideoScorer(method, test, torch.device("cpu"))(model, magnitudes=True)
    assert scored.magnitudes is not None, "the test pass stored no magnitudes"
    for row, video in enumerate(videos):
        scores = _alone(method, model, video)
        with torch.inference_mode():
            magnitudes = hook(model, _scored(video), torch.tensor([len(video)]))[1][0].float().numpy()
        for name, found, expected in (("scores", scored.scores[row], scores),
                                      ("magnitudes", scored.magnitudes[row], magnitudes)):
            assert found.shape == expected.shape and close(found, expected), (
                f"video {row} (T={len(video)}): the stored {name} differ from computing them alone by "
                f"{np.abs(found - expected).max():.2e}; mask the padding in both, or declare "
                f"padded_scoring=\"alone\" (and let score_with_magnitudes give the scores of score)"
            )


def _videos(crops: int, feature_dim: int) -> list[np.ndarray]:
    """Random videos (T, C, D) of 7, 19, 1, 12, 33 and 26 snippets: several lengths, some with a top tenth of
    more than one snippet."""
    rng = np.random.default_rng(SEED)
    return [rng.random((n, crops, feature_dim), dtype=np.float32) for n in (7, 19, 1, 12, 33, 26)]


def _lengths(videos: list[np.ndarray]) -> np.ndarray:
    return np.array([len(video) for video in videos])


def _padded(videos: list[np.ndarray]) -> np.ndarray:
    """The videos (T, C, D) zero-padded to the longest, crops before time: (B, C, T_max, D)."""
    crops, dim = videos[0].shape[1:]
    padded = np.zeros((len(videos), crops, max(len(v) for v in videos), dim), np.float32)
    for row, video in enumerate(videos):
        padded[row, :, : len(video)] = video.transpose(1, 0, 2)
    return padded


def _scored(video: np.ndarray) -> torch.Tensor:
    """One video (T, C, D) as a batch of one to score, (1, C, T, D)."""
    return torch.from_numpy(np.ascontiguousarray(video.transpose(1, 0, 2)))[None]


def _alone(method: Method, model: nn.Module, video: np.ndarray) -> np.ndarray:
    """A video's scores, scored alone and post-processed as the method declares."""
    with torch.inference_mode():
        scores = method.score(model, _scored(video), torch.tensor([len(video)]))[0].float().numpy()
    postprocess = method.declarations().postprocess
    return scores if postprocess is None else np.asarray(postprocess(scores), np.float32)


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
    declared = method.declarations()
    reduction = declared.training_input.reduction
    labels = np.repeat([0, 1], 4)
    videos = [rng.random((int(rng.integers(5, 41)), crops, feature_dim), dtype=np.float32) + 0.5 * y for y in labels]
    size = reduction.size(max(len(v) for v in videos))
    train = TrainSet(
        np.stack([reduce_video(v, reduction, size) for v in videos]), labels,
        tuple(f"video_{i}" for i in range(len(videos))),
        lengths=np.array([reduction.length(len(v)) for v in videos]) if reduction.pads else None,
        classes=labels * np.array([1, 2] * 4),  # two anomaly classes
    )
    prompts = stand_in_prompts(("Normal", "anomaly-a", "anomaly-b")) if "prompts" in declared.side_inputs else None
    return Sampler.create(train, torch.from_numpy(train.features), declared.training_input, 2, seed, prompts)


def _check_score_shape_and_range(method: Method, model: nn.Module, crops: int, feature_dim: int, length: int) -> None:
    features = torch.rand(3, crops, length, feature_dim, generator=torch.Generator().manual_seed(SEED))
    with torch.inference_mode():
        scores = method.score(model.eval(), features, torch.full((3,), length))
    expected = (3, length)
    assert scores.shape == expected, f"scores of (3, C, {length}, D) must be {expected}, got {tuple(scores.shape)}"
    assert torch.isfinite(scores).all(), f"scores of {length}-snippet videos are not finite"
    if method.declarations().probability_scores:
        assert ((scores >= 0) & (scores <= 1)).all(), f"scores of {length}-snippet videos must lie in [0, 1]"


METHOD_CHECKS = (
    check_training_step, check_loss_terms_detached, check_deterministic_under_seed, check_scores,
    check_short_videos, check_padding_invariance, check_val_scoring, check_stored_magnitudes,
    check_stacked_training,
)


def _unpadded(method: Method) -> str | None:
    padded_scoring = method.declarations().padded_scoring
    return None if padded_scoring == "safe" else f"{type(method).__name__} declares padded_scoring = {padded_scoring!r}"


def _without_magnitudes(method: Method) -> str | None:
    return None if method.declarations().score_with_magnitudes is not None else (
        f"{type(method).__name__} has no feature magnitudes (it declares no score_with_magnitudes)")


#: Checks that apply only to what a method declares: each gives the reason it does not apply, or None.
DECLARED: dict[Callable[..., None], Callable[[Any], str | None]] = {
    check_padding_invariance: _unpadded,
    check_stored_magnitudes: _without_magnitudes,
    check_stacked_training: stack_refusal,
}
