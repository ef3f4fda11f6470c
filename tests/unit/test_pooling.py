import numpy as np
import pytest

from vadbench.pooling import pool_segments


def reference_pool(features, segments=32):
    """The public code's loop, written out: mean of rows [b_i, b_{i+1}), row b_i when empty."""
    bounds = np.linspace(0, len(features), segments + 1).astype(int)
    rows = [features[bounds[i] : bounds[i + 1]].mean(0) if bounds[i + 1] > bounds[i] else features[bounds[i]]
            for i in range(segments)]
    return np.stack(rows, axis=1)


@pytest.mark.parametrize("length", [1, 5, 31, 32, 33, 100, 517])
def test_pooling_matches_the_reference_loop(length):
    features = np.random.default_rng(length).random((length, 3, 4)).astype(np.float32)
    pooled = pool_segments(features)
    assert pooled.shape == (3, 32, 4) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, reference_pool(features), rtol=1e-5, atol=1e-6)


def test_pooling_refuses_empty_videos():
    with pytest.raises(ValueError, match="no snippets"):
        pool_segments(np.zeros((0, 1, 4), np.float32))
