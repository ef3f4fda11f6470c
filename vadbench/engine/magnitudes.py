"""Per-snippet feature magnitudes of a trained model over a test set, stored with each run for plots.

RTFM's argument rests on feature magnitudes (abnormal snippets have larger ||x_t||): the runner
keeps them beside the scores so that magnitude curves and the top-k separability can be plotted
from the run store without the trained weights. Methods without magnitudes store nothing.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vadbench.api.method import Method
from vadbench.api.types import TestSet
from vadbench.engine.scoring import length_batches, pad_videos


@torch.inference_mode()
def magnitude_videos(
    method: Method, model: nn.Module, test: TestSet, device: torch.device
) -> list[np.ndarray] | None:
    """Snippet feature magnitudes of every test video in test-list order, or None if the method has none."""
    model.eval()
    found: list[np.ndarray] = [np.empty(0, np.float32)] * len(test)
    for videos in length_batches(test.lengths, int(test.features.shape[1])):
        features, lengths = pad_videos(test, videos, device)
        magnitudes = method.magnitudes(model, features, lengths)
        if magnitudes is None:
            return None
        values = magnitudes.float().cpu().numpy()
        for row, video in enumerate(videos):
            found[video] = values[row, : lengths[row]]
    return found
