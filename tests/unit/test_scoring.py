"""The one scoring path (`VideoScorer`): the padding rule, trimming, postprocess, magnitudes from the same pass,
and `val` selection through it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest
import torch
from conftest import TINY_SYNTHETIC
from torch import nn

from vadbench.api.method import Declarations, Method, TrainBatch
from vadbench.api.types import TestSet, TrainSet
from vadbench.engine.scoring import SegmentVideos, VideoScorer
from vadbench.engine.selection import ValidationSelector, top_tenth_mean
from vadbench.plugins.manager import load_plugins

CPU = torch.device("cpu")


@dataclass(frozen=True)
class ProbeConfig:
    batch_size: int = 2
    steps: int = 1


class Probe(Method):
    """Scores a snippet by its first feature and leaves padded positions at 1 (unmasked, as PEL4VAD's score
    leaves them); counts the engine's calls."""

    Config = ProbeConfig

    def __init__(self, config: ProbeConfig, padded_scoring: Literal["safe", "alone"] = "safe") -> None:
        super().__init__(config)
        self.padding = padded_scoring
        self.calls: dict[str, int] = {"score": 0, "score_with_magnitudes": 0, "postprocess": 0}

    def declarations(self) -> Declarations:
        return Declarations(padded_scoring=self.padding, score_with_magnitudes=self.score_with_magnitudes)

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        return nn.Identity()

    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        raise NotImplementedError

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        self.calls["score"] += 1
        real = torch.arange(features.shape[2])[None, :] < lengths[:, None]
        return torch.where(real, features[:, 0, :, 0], torch.ones(()))

    def score_with_magnitudes(self, model, features, lengths):
        self.calls["score_with_magnitudes"] += 1
        return self.score(model, features, lengths), features.norm(dim=-1).mean(1)


class BatchDependent(Probe):
    """Every score depends on the whole padded batch (its mean, padding and other videos included)."""

    def declarations(self) -> Declarations:
        return dataclasses.replace(super().declarations(), padded_scoring="alone")

    def score(self, model, features, lengths):
        return super().score(model, features, lengths) + features.mean()


class Doubled(Probe):
    def declarations(self) -> Declarations:
        return dataclasses.replace(super().declarations(), postprocess=self.postprocess)

    def postprocess(self, scores: np.ndarray) -> np.ndarray:
        self.calls["postprocess"] += 1
        return 2 * scores


def videos_of(lengths: list[int], crops: int = 2, dim: int = 3) -> TestSet:
    rng = np.random.default_rng(0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return TestSet(rng.random((offsets[-1], crops, dim), dtype=np.float32), offsets, np.zeros(len(lengths), int),
                   np.zeros(16 * offsets[-1], int), tuple(f"v{i}" for i in range(len(lengths))),
                   ("Normal",) * len(lengths))


def alone(method: Method, test: TestSet, video: int) -> np.ndarray:
    features = torch.from_numpy(test.video(video)).transpose(0, 1)[None]  # (1, C, T, D)
    return method.score(nn.Identity(), features, torch.tensor([features.shape[2]]))[0].numpy()


def test_an_alone_method_gets_exactly_its_scores_alone_and_a_safe_one_is_batched():
    test = videos_of([5, 9, 2, 7])
    scorer = VideoScorer(BatchDependent(ProbeConfig()), test, CPU)
    assert [len(batch) for batch in scorer.batches] == [1, 1, 1, 1]
    scores = scorer(nn.Identity()).scores
    for video in range(len(test)):
        np.testing.assert_array_equal(scores[video], alone(BatchDependent(ProbeConfig()), test, video))
    assert len(VideoScorer(Probe(ProbeConfig()), test, CPU).batches) == 1  # safe: one padded batch


@pytest.mark.parametrize("resident", [False, True])
def test_every_video_is_trimmed_to_its_true_length_in_list_order(resident):
    test = videos_of([5, 9, 2, 7])
    scorer = VideoScorer(Probe(ProbeConfig()), test, CPU, budget=2 * 2 * 9, resident=resident)
    assert len(scorer.batches) == 2  # padded batches, not in list order
    scored = scorer(nn.Identity(), magnitudes=True)
    assert scored.magnitudes is not None
    for video in range(len(test)):
        features = test.video(video)
        np.testing.assert_array_equal(scored.scores[video], features[:, 0, 0])  # no padded 1 kept
        np.testing.assert_allclose(scored.magnitudes[video], np.linalg.norm(features, axis=-1).mean(-1), rtol=1e-6)


def test_postprocess_is_applied_once_to_each_video_in_every_pass():
    method = Doubled(ProbeConfig())
    test = videos_of([5, 9, 2])
    scorer = VideoScorer(method, test, CPU)
    for passes in (1, 2):
        scores = scorer(nn.Identity()).scores
        assert method.calls["postprocess"] == passes * len(test)
        for video in range(len(test)):
            np.testing.assert_array_equal(scores[video], 2 * test.video(video)[:, 0, 0])


def test_magnitudes_come_from_the_scoring_forward_only_when_asked():
    method = Probe(ProbeConfig())
    scorer = VideoScorer(method, videos_of([5, 9, 2]), CPU)
    assert scorer(nn.Identity()).magnitudes is None and method.calls["score_with_magnitudes"] == 0
    method.calls["score"] = 0
    scorer(nn.Identity(), magnitudes=True)
    assert method.calls == {"score": 1, "score_with_magnitudes": 1, "postprocess": 0}  # score inside it, once


@pytest.mark.parametrize("name", ["rtfm", "mgfn"])
def test_a_test_pass_with_magnitudes_runs_the_model_once_per_batch(name):
    """Scores and stored magnitudes share one forward pass over the test set, not one each."""
    method = load_plugins().methods.create(name)
    test = load_plugins().datasets.create("synthetic", TINY_SYNTHETIC).load().test
    torch.manual_seed(0)
    model = method.build(test.features.shape[1], test.features.shape[2])
    forwards = []
    model.register_forward_hook(lambda *_: forwards.append(1))
    scorer = VideoScorer(method, test, CPU)
    scored = scorer(model, magnitudes=True)
    assert scored.magnitudes is not None and len(forwards) == len(scorer.batches)


def held_out(padded_scoring: str) -> tuple[Method, TrainSet]:
    """Short normal videos (4 of 20 segments, scores 0.1) and full abnormal ones (scores 0.5): a top-k that
    reached the padded positions (scored 1 by the probe) would rank every normal video first."""
    method = Probe(ProbeConfig(), padded_scoring)
    labels = np.array([0, 0, 0, 1, 1, 1])
    features = np.zeros((6, 1, 20, 2), np.float32)
    lengths = np.where(labels == 1, 20, 4)
    for video, (label, length) in enumerate(zip(labels, lengths, strict=True)):
        features[video, :, :length] = 0.5 if label else 0.1
    return method, TrainSet(features, labels, tuple(f"v{i}" for i in range(6)), lengths=lengths)


@pytest.mark.parametrize("padded_scoring", ["safe", "alone"])
def test_val_takes_each_video_top_tenth_over_its_true_segments_only(padded_scoring):
    method, videos = held_out(padded_scoring)
    selector = ValidationSelector(method, videos, videos, CPU, steps=1, every=1)
    np.testing.assert_allclose(selector.video_scores(nn.Identity()), [0.1, 0.1, 0.1, 0.5, 0.5, 0.5])
    assert selector.criterion(nn.Identity()) == 1.0


def test_val_scores_are_post_processed_as_the_test_scores():
    method, videos = held_out("safe")
    doubled = Doubled(method.config)
    selector = ValidationSelector(doubled, videos, videos, CPU, steps=1, every=1)
    np.testing.assert_allclose(selector.video_scores(nn.Identity()), [0.2, 0.2, 0.2, 1.0, 1.0, 1.0])


def test_segment_videos_are_the_true_segments_of_each_training_video():
    _, videos = held_out("safe")
    segments = SegmentVideos(videos)
    assert segments.video(0).shape == (4, 1, 2) and segments.video(3).shape == (20, 1, 2)
    np.testing.assert_array_equal(segments.lengths, [4, 4, 4, 20, 20, 20])


def test_the_top_tenth_mean_takes_at_least_one_score():
    assert top_tenth_mean(np.array([0.3, 0.9, 0.1])) == pytest.approx(0.9)
    assert top_tenth_mean(np.arange(32, dtype=np.float32)) == pytest.approx(30.0)  # 29, 30, 31
