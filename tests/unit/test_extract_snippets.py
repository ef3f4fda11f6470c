"""Snippet rules: counts against the released ShanghaiTech features, padding, dropping, streaming, short clips."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

import vadbench.datasets.shanghaitech.adapter as shanghaitech
from vadbench.api.errors import UsageError
from vadbench.data.official import Bundle
from vadbench.extract.snippets import SNIPPET_RULES, snippet_count, snippets

PUBLIC_LENGTHS = json.loads((Path(__file__).parents[1] / "data" / "public_test_lengths.json").read_text())


def frames(count: int) -> list[np.ndarray]:
    """`count` tiny frames whose pixels all hold the frame's index (mod 256)."""
    return [np.full((2, 3, 3), index % 256, dtype=np.uint8) for index in range(count)]


def indices(snippet: np.ndarray) -> list[int]:
    """The frame index each frame of a snippet made by `frames` carries."""
    return [int(frame[0, 0, 0]) for frame in snippet]


def test_ceil_loop_reproduces_the_released_shanghaitech_test_lengths():
    """RTFM's released ShanghaiTech test features: T of the 199 test videos is published/16 in the fixture
    (taken from the per-video ground truth louisYen/S3R ships for RTFM's features; RTFM's own gt-sh.npy
    at cf938f4 holds the same 142,912 labels = 8,932 snippets x 16, concatenated in test-list order).

    The true frame count n is published only for the 44 abnormal test videos (the lengths of RTFM's
    test_frame_mask files); for all 44, ceil(n/16) is the released T and floor(n/16) is not (none has n
    divisible by 16). The 155 normal test videos' true frame counts are in no published file, so their
    T can only be summed, not checked against a rule.
    """
    released = PUBLIC_LENGTHS["shanghaitech"]["lengths"]
    assert len(released) == 199
    assert sum(released.values()) == 8_932 and 16 * sum(released.values()) == 142_912

    masks = json.loads(Bundle.beside(shanghaitech.__file__).bundled("test_frame_mask.json").read_text())
    true_frames = {video: packed[0] for video, packed in masks.items() if video in released}
    assert len(true_frames) == 44
    for video, n in true_frames.items():
        assert snippet_count(n, "ceil-loop") == released[video], video
        assert snippet_count(n, "floor") == released[video] - 1, video
        assert snippet_count(n, "floor-minus-one") == released[video] - 1, video


@pytest.mark.parametrize(
    ("n", "ceil_loop", "floor", "floor_minus_one"),
    [(15, 0, 0, 0), (16, 1, 1, 0), (17, 2, 1, 1), (32, 2, 2, 1), (33, 3, 2, 2), (8096, 506, 506, 505)],
)
def test_snippet_counts(n, ceil_loop, floor, floor_minus_one):
    """8096 frames: Wu et al.'s UCF-Crime Assault006_x264 file has 505 snippets (Roc-Ng/DeepMIL issue 26)."""
    assert [snippet_count(n, rule) for rule in ("ceil-loop", "floor", "floor-minus-one")] == [
        ceil_loop,
        floor,
        floor_minus_one,
    ]


@pytest.mark.parametrize("rule", SNIPPET_RULES)
@pytest.mark.parametrize("n", [17, 31, 32, 33, 47, 50])
def test_snippets_yield_as_many_snippets_as_the_count_says(rule, n):
    cut = list(snippets(frames(n), rule, name="clip"))
    assert len(cut) == snippet_count(n, rule)
    assert all(snippet.shape == (16, 2, 3, 3) and snippet.dtype == np.uint8 for snippet in cut)
    full = n // 16 if rule != "floor-minus-one" else (n - 1) // 16
    assert [indices(snippet) for snippet in cut[:full]] == [list(range(16 * k, 16 * k + 16)) for k in range(full)]


def test_ceil_loop_pads_the_last_snippet_by_looping_its_own_frames_from_its_first():
    last = list(snippets(frames(37), "ceil-loop", name="clip"))[-1]  # frames 32..36, then 32..36 again...
    assert indices(last) == [32, 33, 34, 35, 36] * 3 + [32]


def test_floor_minus_one_drops_the_last_frame_before_cutting():
    assert len(list(snippets(frames(33), "floor-minus-one", name="clip"))) == 2  # frames 0..31; frame 32 dropped
    assert len(list(snippets(frames(32), "floor-minus-one", name="clip"))) == 1  # frames 0..15; 16..30 partial


def test_snippet_length_is_an_option():
    cut = list(snippets(frames(10), "ceil-loop", length=4, name="clip"))
    assert [indices(snippet) for snippet in cut] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 8, 9]]


@pytest.mark.parametrize("rule", SNIPPET_RULES)
def test_snippets_are_cut_while_frames_stream_in(rule):
    """An endless stream still yields snippets: nothing waits for the end of the video."""
    endless = (np.full((2, 3, 3), index % 256, dtype=np.uint8) for index in itertools.count())
    first, second = itertools.islice(snippets(endless, rule, name="clip"), 2)
    assert indices(first) == list(range(16)) and indices(second) == list(range(16, 32))


@pytest.mark.parametrize(
    ("rule", "n", "needed"), [("ceil-loop", 15, 16), ("floor", 0, 16), ("floor-minus-one", 16, 17)]
)
def test_a_clip_shorter_than_one_snippet_is_refused_naming_it_and_its_frame_count(rule, n, needed):
    with pytest.raises(UsageError, match=f"^Test007: {n} frames, fewer than the {needed} one 16-frame snippet needs"):
        list(snippets(frames(n), rule, name="Test007"))


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="unknown snippet rule 'round'"):
        snippet_count(20, "round")  # type: ignore[arg-type]
