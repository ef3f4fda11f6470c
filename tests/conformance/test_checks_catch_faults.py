"""The conformance checks catch what they promise to catch, and skip what a component declares unsupported."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from torch import nn

from vadbench import testing
from vadbench.api.dataset import Dataset
from vadbench.api.executor import Executor, WorkerFailure
from vadbench.api.method import Declarations, Method, TrainBatch, valid_mask
from vadbench.api.types import Benchmark, RunResult, RunSpec
from vadbench.executors.serial import SerialConfig, SerialExecutor
from vadbench.plugins.manager import get_plugins


@dataclass(frozen=True)
class TinyConfig:
    batch_size: int = 2
    steps: int = 10
    lr: float = 0.1


class Tiny(Method):
    """A conforming method: a linear snippet scorer with a top-1 hinge; faults below override one part."""

    Config = TinyConfig

    def build(self, crops: int, feature_dim: int) -> nn.Module:
        return nn.Linear(feature_dim, 1)

    def snippet_scores(self, model: nn.Module, features: torch.Tensor) -> torch.Tensor:
        """(B, C, T, D) -> (B, T): sigmoid of the linear score, averaged over crops."""
        return torch.sigmoid(model(features)).squeeze(-1).mean(1)

    def loss(self, model: nn.Module, batch: TrainBatch) -> dict[str, torch.Tensor]:
        top_normal = self.snippet_scores(model, batch.normal).amax(1)
        top_abnormal = self.snippet_scores(model, batch.abnormal).amax(1)
        ranking = torch.relu(1 - top_abnormal + top_normal).mean()
        return {"loss": ranking, "ranking": ranking.detach()}

    def score(self, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.snippet_scores(model, features) * valid_mask(lengths, features.shape[2])

    def optimizer(self, parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(parameters, lr=self.config.lr)


class FrozenWeights(Tiny):
    def optimizer(self, parameters):
        return torch.optim.SGD(parameters, lr=0.0)


class AttachedTerm(Tiny):
    def loss(self, model, batch):
        terms = super().loss(model, batch)
        return {**terms, "ranking": terms["loss"] * 1.0}  # still holds the graph


class UnseededNoise(Tiny):
    def loss(self, model, batch):
        terms = super().loss(model, batch)
        noise = float(np.random.default_rng().random())  # a generator no seed reaches
        return {**terms, "loss": terms["loss"] + noise}


class Logits(Tiny):
    def score(self, model, features, lengths):
        return model(features).squeeze(-1).mean(1) - 10.0


class TopThree(Tiny):
    def score(self, model, features, lengths):
        scores = super().score(model, features, lengths)
        return scores * scores.topk(3, dim=1).values.mean(1, keepdim=True)  # needs T >= 3


class PaddingLeak(Tiny):
    def score(self, model, features, lengths):
        scores = self.snippet_scores(model, features)
        return scores * scores.mean(1, keepdim=True)  # the mean counts the padded snippets


class Unvmappable(Tiny):
    def loss(self, model, batch):
        if batch.normal.sum().item() > 0:  # data-dependent Python control flow: vmap refuses it
            return super().loss(model, batch)
        return super().loss(model, TrainBatch.balanced(batch.abnormal, batch.normal))


@pytest.mark.parametrize(
    ("method", "check", "message"),
    [
        (FrozenWeights, testing.check_training_step, "did not change any parameter"),
        (AttachedTerm, testing.check_loss_terms_detached, "'ranking' requires grad"),
        (UnseededNoise, testing.check_deterministic_under_seed, "the same seed gave two losses"),
        (Logits, testing.check_scores, r"must lie in \[0, 1\]"),
        (TopThree, testing.check_short_videos, "selected index k out of range"),
        (PaddingLeak, testing.check_padding_invariance, "differ from scoring it alone"),
        (Unvmappable, testing.check_stacked_training, "training as a stacked model failed"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_a_method_check_catches_its_fault(method, check, message):
    check(Tiny(TinyConfig()))  # the conforming method passes
    with pytest.raises(AssertionError, match=message):
        check(method(TinyConfig()))


class Magnitudes(Tiny):
    """A conforming method with feature magnitudes: the norm of each real snippet's features."""

    def declarations(self) -> Declarations:
        return Declarations(score_with_magnitudes=self.score_with_magnitudes)

    def score_with_magnitudes(self, model, features, lengths):
        norms = torch.linalg.vector_norm(features, dim=-1).mean(1) * valid_mask(lengths, features.shape[2])
        return self.score(model, features, lengths), norms


class MagnitudeLeak(Magnitudes):
    def score_with_magnitudes(self, model, features, lengths):
        scores, norms = super().score_with_magnitudes(model, features, lengths)
        return scores, norms + features.shape[2]  # the padded length leaks in: right only when scored alone


class OneForwardDisagrees(Magnitudes):
    def score_with_magnitudes(self, model, features, lengths):
        scores, magnitudes = super().score_with_magnitudes(model, features, lengths)
        return 0.5 * scores, magnitudes  # the one-pass hook's scores are not those of score()


@pytest.mark.parametrize(
    ("method", "check", "message"),
    [
        (PaddingLeak, testing.check_val_scoring, "its val score .* differs from scoring it alone"),
        (MagnitudeLeak, testing.check_stored_magnitudes, "the stored magnitudes differ from computing them alone"),
        (OneForwardDisagrees, testing.check_stored_magnitudes, "the stored scores differ"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_a_scoring_path_check_catches_its_fault(method, check, message):
    check(Magnitudes(TinyConfig()))  # the conforming method passes
    with pytest.raises(AssertionError, match=message):
        check(method(TinyConfig()))


@pytest.mark.parametrize("method", [PaddingLeak, MagnitudeLeak], ids=lambda value: value.__name__)
def test_declaring_padding_unsafe_makes_the_scoring_path_checks_pass(method):
    """The engine honours ``padded_scoring="alone"``: each video is scored alone, so nothing leaks."""

    def alone(self: Method) -> Declarations:
        return replace(method.declarations(self), padded_scoring="alone")

    declared = type(f"Alone{method.__name__}", (method,), {"declarations": alone})(TinyConfig())
    testing.check_val_scoring(declared)
    if method is MagnitudeLeak:
        testing.check_stored_magnitudes(declared)


def test_a_declared_limitation_skips_its_check_naming_the_declaration():
    class Unpaddable(PaddingLeak):
        def declarations(self) -> Declarations:
            return Declarations(padded_scoring="alone")

    mark = testing.parametrize_with_checks(methods=[Unpaddable(TinyConfig(lr=0.5))])
    params = {param.id: param for param in mark.args[1]}
    assert len(params) == len(testing.METHOD_CHECKS)  # one id per check
    skipped = params["Unpaddable(lr=0.5)-check_padding_invariance"].marks
    assert [m.kwargs["reason"] for m in skipped] == ["Unpaddable declares padded_scoring = 'alone'"]
    assert not params["Unpaddable(lr=0.5)-check_stacked_training"].marks


def tiny_synthetic() -> Dataset:
    return get_plugins().datasets.create("synthetic", {"train_normal": 4, "train_abnormal": 4, "test_normal": 3,
                                                       "test_abnormal": 3, "min_length": 8, "max_length": 12,
                                                       "feature_dim": 8, "mu": 4})


class Altered(Dataset):
    """The tiny synthetic benchmark with one fault put in."""

    Config = TinyConfig

    def __init__(self, fault: str) -> None:
        super().__init__(TinyConfig())
        self.fault = fault

    def load(self) -> Benchmark:
        benchmark = tiny_synthetic().load()
        train, test = benchmark.train, benchmark.test
        if self.fault == "label":  # an abnormal test video relabelled normal
            labels = test.labels.copy()
            labels[np.flatnonzero(labels == 1)[0]] = 0
            test = replace(test, labels=labels)
        elif self.fault == "leak":  # a test video also used for training
            test = replace(test, video_ids=(train.video_ids[0], *test.video_ids[1:]))
        elif self.fault == "one class":
            train = replace(train, labels=np.zeros_like(train.labels))
        elif self.fault == "random":
            test = replace(test, features=test.features + np.float32(np.random.default_rng().random()))
        return replace(benchmark, train=train, test=test)


@pytest.mark.parametrize(
    ("fault", "check", "message"),
    [
        ("label", testing.check_test_ground_truth, "is labelled 0 but has some anomalous frames"),
        ("leak", testing.check_video_ids, "test videos also in training"),
        ("one class", testing.check_weak_training_labels, r"normal \(0\) and abnormal \(1\)"),
        ("random", testing.check_deterministic_load, "test features differ between two loads"),
    ],
)
def test_a_dataset_check_catches_its_fault(fault, check, message):
    check(tiny_synthetic())
    with pytest.raises(AssertionError, match=message):
        check(Altered(fault))


class Shifted(Executor):
    """Serial, with every score moved by `shift`."""

    Config = SerialConfig

    def __init__(self, shift: float, exact: bool) -> None:
        super().__init__(SerialConfig(cpus_per_run=1))
        self.shift, self.same_numbers_as_serial = shift, exact
        self.serial = SerialExecutor(self.config)

    def open(self, plugins, *, progress):
        self.serial.open(plugins, progress=progress)

    def close(self):
        self.serial.close()

    def execute(self, specs: Sequence[RunSpec]) -> Iterator[RunResult | WorkerFailure]:
        for result in self.serial.execute(specs):
            assert isinstance(result, RunResult)
            result.scores = {video: scores + self.shift for video, scores in result.scores.items()}
            yield result


def test_the_executor_check_holds_each_executor_to_what_it_declares():
    testing.check_same_results_as_serial(Shifted(0.0, exact=True))
    testing.check_same_results_as_serial(Shifted(1e-7, exact=False))  # float rounding: allowed when declared
    with pytest.raises(AssertionError, match="scores differ from serial's"):
        testing.check_same_results_as_serial(Shifted(1e-7, exact=True))
    with pytest.raises(AssertionError, match="scores differ from serial's"):
        testing.check_same_results_as_serial(Shifted(1e-3, exact=False))


def test_ids_name_the_class_its_changed_options_and_the_check():
    mark = testing.parametrize_with_checks(datasets=[tiny_synthetic()])
    ids = [param.id for param in mark.args[1]]
    assert ids[0] == ("Synthetic(train_normal=4,train_abnormal=4,test_normal=3,test_abnormal=3,min_length=8,"
                      "max_length=12,feature_dim=8,mu=4)-check_benchmark_types")
    assert len(ids) == len(testing.DATASET_CHECKS)

