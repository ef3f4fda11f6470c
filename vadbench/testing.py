"""Conformance checks for method plugins: run them in your own test suite.

    from vadbench.testing import check_method
    def test_my_method_conforms():
        check_method(MyMethod(MyMethod.Config()))

Each check raises AssertionError with a message that says which part of the contract broke.
"""

from __future__ import annotations

import torch

from vadbench.method import Method, TrainBatch
from vadbench.types import TRAIN_SEGMENTS


def check_method(method: Method, *, crops: int = 2, feature_dim: int = 16, seed: int = 0) -> None:
    """Run every conformance check on `method` with small dimensions."""
    check_training_step(method, crops=crops, feature_dim=feature_dim, seed=seed)
    check_scores(method, crops=crops, feature_dim=feature_dim, seed=seed)
    check_padding_invariance(method, crops=crops, feature_dim=feature_dim, seed=seed)


def check_training_step(method: Method, *, crops: int = 2, feature_dim: int = 16, seed: int = 0) -> None:
    """One optimisation step on a (2 + 2)-video batch gives a finite scalar loss and changes the model."""
    torch.manual_seed(seed)
    model = method.build(crops, feature_dim)
    before = [p.detach().clone() for p in model.parameters()]
    normal = torch.rand(2, crops, TRAIN_SEGMENTS, feature_dim)
    abnormal = torch.rand(2, crops, TRAIN_SEGMENTS, feature_dim) + 0.5
    model.train()
    terms = method.loss(model, TrainBatch.balanced(normal, abnormal))
    assert "loss" in terms, "Method.loss must return a dict with the total under 'loss'"
    loss = terms["loss"]
    assert loss.ndim == 0 and torch.isfinite(loss), f"the loss must be a finite scalar, got {loss}"
    optimizer = method.optimizer(model.parameters())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    changed = any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
    assert changed, "one optimisation step did not change any parameter"


def check_scores(method: Method, *, crops: int = 2, feature_dim: int = 16, seed: int = 0) -> None:
    """Scores have shape (B, T), lie in [0, 1], and videos shorter than any k do not crash."""
    torch.manual_seed(seed)
    model = method.build(crops, feature_dim).eval()
    for length in (1, 2, 40):
        features = torch.rand(3, length, crops, feature_dim)
        with torch.inference_mode():
            scores = method.score(model, features, torch.full((3,), length))
        expected = (3, length)
        assert scores.shape == expected, f"scores of (3, {length}, C, D) must be {expected}, got {tuple(scores.shape)}"
        assert torch.all((scores >= 0) & (scores <= 1)), "scores must lie in [0, 1]"


def check_padding_invariance(
    method: Method, *, crops: int = 2, feature_dim: int = 16, seed: int = 0, atol: float = 1e-5
) -> None:
    """Scoring zero-padded videos together equals scoring each video alone (within `atol`)."""
    torch.manual_seed(seed)
    model = method.build(crops, feature_dim).eval()
    lengths = torch.tensor([7, 19, 3, 12])
    videos = [torch.rand(int(n), crops, feature_dim) for n in lengths]
    padded = torch.zeros(len(videos), int(lengths.max()), crops, feature_dim)
    for row, video in enumerate(videos):
        padded[row, : len(video)] = video
    with torch.inference_mode():
        together = method.score(model, padded, lengths)
        for row, video in enumerate(videos):
            alone = method.score(model, video[None], lengths[row : row + 1])[0]
            gap = (together[row, : len(video)] - alone).abs().max().item()
            assert gap <= atol, f"video {row}: batched scores differ from scoring it alone by {gap:.2e}"
