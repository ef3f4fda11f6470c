import numpy as np
import pytest

from vadbench.api.reduction import Reduction
from vadbench.data.pooling import (
    pool_segments,
    pool_segments_sultani,
    reduce_video,
    subsample_segments,
    sultani_ranges,
)


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


# --- Sultani et al.'s Save_C3DFeatures_32Segments.m --------------------------------------------------


def snippets_of_segments(length):
    """For each of the 32 segments, the 1-based snippets it averages (as the script numbers them)."""
    starts, ends = sultani_ranges(length)
    return [list(range(start + 1, end + 1)) for start, end in zip(starts, ends, strict=True)]


def test_sultani_segments_of_a_five_snippet_video():
    # round(linspace(1, 5, 33)) = 1 + k/8 rounded, halves up: 1 x4, 2 x8, 3 x8, 4 x8, 5 x5. Every range
    # b_i .. b_{i+1}-1 is a single snippet or empty (then b_i alone), so the snippets repeat 4, 8, 8, 8, 4
    # times. Rounding 2.5 and 4.5 to even would give 2 and 4 instead of 3 and 5.
    assert snippets_of_segments(5) == [[1]] * 4 + [[2]] * 8 + [[3]] * 8 + [[4]] * 8 + [[5]] * 4


def test_sultani_segments_of_a_32_snippet_video():
    # 1 + 31k/32 = 1 + k - k/32 rounds to k + 1 up to k = 16 (16.5 -> 17) and to k beyond: segments 1..16
    # are snippets 1..16, segment 17 is empty (17 alone), segment 18 is 17, segment i > 18 is i - 1.
    expected = [[i] for i in range(1, 17)] + [[17], [17]] + [[i] for i in range(18, 32)]
    assert snippets_of_segments(32) == expected  # snippet 32 is never used


def test_sultani_segments_of_a_33_snippet_video():
    assert snippets_of_segments(33) == [[i] for i in range(1, 33)]  # linspace(1, 33, 33) = 1..33


def test_sultani_segments_of_a_100_snippet_video():
    segments = snippets_of_segments(100)
    # b_2 = round(4.09375) = 4; b_16 = round(47.40625) = 47, b_17 = round(50.5) = 51, b_18 = round(53.59375)
    # = 54; b_32 = round(96.90625) = 97, b_33 = 100.
    assert segments[0] == [1, 2, 3]
    assert segments[15] == [47, 48, 49, 50] and segments[16] == [51, 52, 53]
    assert segments[31] == [97, 98, 99]
    covered = [snippet for segment in segments for snippet in segment]
    assert covered == list(range(1, 100))  # contiguous, in order, without snippet 100


def test_sultani_segments_use_the_last_snippet_only_through_an_empty_range():
    for length in range(1, 201):
        segments = snippets_of_segments(length)
        assert all(segment for segment in segments), length
        assert all(segment == [length] for segment in segments if length in segment), length
        assert (length in segments[-1]) == (length <= 17), length


def test_sultani_pooling_means_and_normalises_each_segment_in_each_crop():
    features = np.random.default_rng(0).random((100, 3, 8)).astype(np.float32)
    pooled = pool_segments_sultani(features)
    assert pooled.shape == (3, 32, 8) and pooled.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=-1), 1.0, rtol=1e-6)
    for crop in range(3):
        segment = features[46:50, crop].astype(np.float64).mean(axis=0)  # snippets 47..50
        np.testing.assert_allclose(pooled[crop, 15], segment / np.linalg.norm(segment), rtol=1e-6)


def test_sultani_pooling_of_a_short_video_repeats_snippets():
    features = np.random.default_rng(1).random((5, 1, 4)).astype(np.float32)
    pooled = pool_segments_sultani(features)[0]
    unit = features[:, 0] / np.linalg.norm(features[:, 0], axis=-1, keepdims=True)
    np.testing.assert_allclose(pooled, np.repeat(unit, [4, 8, 8, 8, 4], axis=0), rtol=1e-6)


def test_sultani_pooling_keeps_an_all_zero_segment_zero_and_refuses_empty_videos():
    assert not pool_segments_sultani(np.zeros((40, 1, 4), np.float32)).any()
    with pytest.raises(ValueError, match="no snippets"):
        pool_segments_sultani(np.zeros((0, 1, 4), np.float32))


def test_each_reduction_kind_applies_its_function():
    video = np.random.default_rng(0).random((50, 2, 4), dtype=np.float32)
    np.testing.assert_array_equal(reduce_video(video, Reduction(), 32), pool_segments(video))
    np.testing.assert_array_equal(reduce_video(video, Reduction("c3d"), 32), pool_segments_sultani(video))
    np.testing.assert_array_equal(reduce_video(video, Reduction("subsample", 20), 20), subsample_segments(video, 20))
    full = Reduction("full")
    assert reduce_video(video, full, full.size(60)).shape == (2, 60, 4) and full.length(50) == 50 and full.pads
    assert not Reduction().pads and Reduction("mean", 200).key == "mean-200"


def test_subsample_takes_uniform_snippets_or_pads_with_zeros():
    video = np.arange(10, dtype=np.float32).reshape(10, 1, 1)
    np.testing.assert_array_equal(subsample_segments(video, 4)[0, :, 0], [0, 3, 6, 9])
    padded = subsample_segments(video, 12)[0, :, 0]
    np.testing.assert_array_equal(padded, [*range(10), 0, 0])
    assert Reduction("subsample", 12).length(10) == 10 and Reduction("subsample", 4).length(10) == 4


@pytest.mark.parametrize("bad", [{"kind": "max"}, {"segments": 0}])
def test_bad_reductions_are_refused(bad):
    with pytest.raises(ValueError, match="Reduction"):
        Reduction(**bad)
