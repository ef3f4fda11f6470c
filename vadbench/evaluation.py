"""Scoring a whole test set: videos sorted by length and scored in zero-padded batches.

Sorting keeps padding small; methods guarantee that padding does not change a video's scores
(`Method.score`), so the result equals scoring each video alone.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vadbench.method import Method
from vadbench.types import TestSet

#: Upper bound on padded feature values per scoring batch (about 256 MB of float32).
BATCH_ELEMENTS = 64 * 2**20


def length_batches(lengths: np.ndarray, row_elements: int, budget: int = BATCH_ELEMENTS) -> list[np.ndarray]:
    """Video indices grouped into batches of similar length whose padded size fits the budget."""
    order = np.argsort(lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    for end in range(1, len(order) + 1):
        # The batch is padded to its longest video, the last one in sorted order.
        if end < len(order) and (end + 1 - start) * lengths[order[end]] * row_elements <= budget:
            continue
        batches.append(order[start:end])
        start = end
    return batches


def pad_videos(test: TestSet, videos: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded features (B, T_max, C, D) and lengths (B,) of the given test videos."""
    lengths = test.lengths[videos]
    batch = np.zeros((len(videos), int(lengths.max()), *test.features.shape[1:]), dtype=np.float32)
    for row, video in enumerate(videos):
        batch[row, : lengths[row]] = test.video(int(video))
    return torch.from_numpy(batch).to(device), torch.from_numpy(lengths.astype(np.int64)).to(device)


@torch.inference_mode()
def score_videos(method: Method, model: nn.Module, test: TestSet, device: torch.device) -> list[np.ndarray]:
    """Snippet scores of every test video, in test-list order."""
    model.eval()
    row_elements = int(np.prod(test.features.shape[1:]))
    scores: list[np.ndarray] = [np.empty(0, np.float32)] * len(test)
    for videos in length_batches(test.lengths, row_elements):
        features, lengths = pad_videos(test, videos, device)
        batch_scores = method.score(model, features, lengths).float().cpu().numpy()
        for row, video in enumerate(videos):
            scores[video] = batch_scores[row, : lengths[row]]
    return scores
