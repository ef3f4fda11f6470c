"""Property-based tests of the parsers, the ground-truth builders and the metrics (hypothesis).

Example-based tests pin the real files; these state what must hold for *any* input: a parser either
returns what was written or raises a `UsageError` naming the source (never another exception), the
ground truth always has 16 x T frames, and the metrics obey the identities that define them.
Example counts are modest so that the whole module runs in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from vadbench.api.errors import UsageError
from vadbench.api.types import SNIPPET_FRAMES
from vadbench.data.annotations import (
    NORMAL,
    parse_feature_list,
    parse_id_list,
    parse_ucf_annotation,
    parse_ucf_train_split,
    parse_ucsd_m,
    parse_xd_annotation,
)
from vadbench.data.groundtruth import check_prebuilt, from_mask, from_ranges, labels_from_ranges, pseudo_frames
from vadbench.report.metrics import expand_to_frames, frame_ap, frame_ap_trapz, frame_auc

settings.register_profile(
    "vadbench-properties", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
PROPERTIES = settings.get_profile("vadbench-properties")
SOURCE = "ann.txt"

# -- strategies ------------------------------------------------------------------------------------------

video_ids = st.from_regex(r"[A-Za-z0-9]{1,8}(_[A-Za-z0-9]{1,6}){0,2}", fullmatch=True)
classes = st.from_regex(r"[A-Z][a-z]{2,9}", fullmatch=True).filter(lambda name: name != NORMAL)
separators = st.sampled_from([" ", "  ", "\t", " \t "])
line_ends = st.sampled_from(["\n", "\r\n", "\n\n", "\n  \n"])


@st.composite
def ranges(draw: st.DrawFn, min_size: int = 0, max_size: int = 3) -> tuple[tuple[int, int], ...]:
    """Half-open 0-based frame ranges with start <= end."""
    found = []
    for _ in range(draw(st.integers(min_size, max_size))):
        start = draw(st.integers(0, 2000))
        found.append((start, start + draw(st.integers(0, 400))))
    return tuple(found)


def join(draw: st.DrawFn, tokens: list[str]) -> str:
    return tokens[0] + "".join(draw(separators) + token for token in tokens[1:])


@st.composite
def ucf_annotations(draw: st.DrawFn) -> tuple[str, dict[str, tuple[str, tuple[tuple[int, int], ...]]]]:
    """A UCF-Crime annotation text and the table it stands for."""
    ids = draw(st.lists(video_ids, min_size=1, max_size=8, unique=True))
    table, text = {}, ""
    for video in ids:
        normal = draw(st.booleans())
        category = NORMAL if normal else draw(classes)
        events = () if normal else draw(ranges(min_size=1))
        numbers = [str(n) for pair in events for n in pair]
        numbers += ["-1", "-1"] * draw(st.integers(0 if events else 1, 2))
        table[video] = (category, events)
        text += join(draw, [f"{video}.mp4", category, *numbers]) + draw(line_ends)
    return text, table


@st.composite
def feature_lists(draw: st.DrawFn) -> tuple[str, list[tuple[str, int]]]:
    """A feature list (RTFM: one file per video, or Wu: consecutive per-crop lines) and (id, crops) per video."""
    videos = [(video, draw(st.sampled_from([0, 1, 5, 10])))  # 0: one [T, C, D] file
              for video in draw(st.lists(video_ids, min_size=1, max_size=6, unique=True))]
    prefix = draw(st.sampled_from(["", "/home/yu/features/", "G:\\UCF_Train_ten_crop_i3d\\", "../x/"]))
    lines = []
    for video, crops in videos:
        names = [f"{video}_i3d.npy"] if crops == 0 else [f"{video}__{c}.npy" for c in range(crops)]
        lines += [prefix + name for name in names]
    return "".join(line + draw(line_ends) for line in lines), videos


TEXT_PARSERS = [parse_ucf_annotation, parse_xd_annotation, parse_ucsd_m, parse_id_list, parse_ucf_train_split,
                parse_feature_list]
#: Text that looks like the files: tokens the parsers act on, in any order.
file_like = st.lists(
    st.one_of(
        st.sampled_from(["-1", "0", "12", "3x", ".mp4", "Normal", "Abuse", "gt_frame = [", "]", ":", ",",
                         "a_i3d.npy", "a__0.npy", "a__1.npy", "/", "\\", "\n", "\r\n", " ", "\t"]),
        st.text(max_size=4),
    ),
    max_size=40,
).map("".join)


# -- annotation, split and list parsers ---------------------------------------------------------------------


@PROPERTIES
@given(st.sampled_from(TEXT_PARSERS), st.one_of(st.text(max_size=120), file_like))
def test_parsers_return_or_raise_a_usage_error_naming_the_source(parser, text):
    try:
        parser(text, SOURCE)
    except UsageError as error:
        assert str(error).startswith(SOURCE + ":")
        assert "\n" not in str(error).strip() or "\n" in text  # one line unless it quotes the input


@PROPERTIES
@given(ucf_annotations())
def test_ucf_annotation_round_trip(case):
    text, table = case
    parsed = parse_ucf_annotation(text, SOURCE)
    assert {video: (note.category, note.ranges) for video, note in parsed.items()} == table


@PROPERTIES
@given(st.dictionaries(video_ids, ranges(min_size=1), min_size=1, max_size=8), st.booleans(), st.data())
def test_xd_annotation_round_trip(table, mp4, data):
    text = "".join(
        join(data.draw, [video + ".mp4" * mp4, *(str(n) for pair in events for n in pair)]) + data.draw(line_ends)
        for video, events in table.items()
    )
    assert parse_xd_annotation(text, SOURCE) == table


@PROPERTIES
@given(st.lists(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 60)), max_size=3), min_size=1, max_size=6))
def test_ucsd_m_round_trip_converts_one_based_inclusive_to_half_open(clips):
    lines = ["TestVideoFile = {};"]
    for clip in clips:
        parts = [f"{a}:{a + n}" if n else str(a) for a, n in clip]
        lines.append(f"TestVideoFile{{end+1}}.gt_frame = [{', '.join(parts)}];")
    parsed = parse_ucsd_m("\n".join(lines), SOURCE)
    assert parsed == [tuple((a - 1, a + n) for a, n in clip) for clip in clips]


@PROPERTIES
@given(feature_lists())
def test_feature_list_round_trip_groups_crops_and_drops_foreign_paths(case):
    text, videos = case
    parsed = parse_feature_list(text, SOURCE)
    assert [(entry.video_id, len(entry.names) if entry.per_crop else 0) for entry in parsed] == videos
    for entry in parsed:
        assert all("/" not in name and "\\" not in name for name in entry.names)


@PROPERTIES
@given(feature_lists(), st.data())
def test_a_video_listed_twice_is_refused(case, data):
    text, videos = case
    video, crops = data.draw(st.sampled_from(videos))
    name = f"{video}_i3d.npy" if crops == 0 else f"{video}__0.npy"
    with pytest.raises(UsageError, match="listed"):
        parse_feature_list(text + f"/elsewhere/{name}\n" + ("/z/zz_i3d.npy\n" if crops else ""), SOURCE)


@PROPERTIES
@given(st.lists(video_ids, min_size=1, max_size=10), st.data())
def test_split_files_keep_order_and_refuse_duplicates(ids, data):
    text = "".join(video + data.draw(line_ends) for video in ids)
    if len(set(ids)) == len(ids):
        assert parse_id_list(text, SOURCE) == ids
        train = "".join(f"Class/{video}.mp4\n" for video in ids)
        assert parse_ucf_train_split(train, SOURCE) == ids
    else:
        with pytest.raises(UsageError, match="appears twice"):
            parse_id_list(text, SOURCE)


# -- ground truth ------------------------------------------------------------------------------------------


@PROPERTIES
@given(ranges(max_size=4), st.integers(0, 3000))
def test_from_ranges_marks_exactly_the_frames_inside_a_range(events, frames):
    labels = from_ranges(events, frames)
    expected = np.zeros(frames, dtype=bool)
    for start, end in events:
        expected[start:end] = True
    assert labels.dtype == np.int8 and len(labels) == frames
    np.testing.assert_array_equal(labels.astype(bool), expected)


@PROPERTIES
@given(ranges(max_size=4), st.integers(1, 200))
def test_built_ground_truth_has_16_t_frames_or_a_clear_error(events, snippets):
    build = labels_from_ranges(events, SOURCE, "video")
    frames = pseudo_frames(snippets)
    assert frames == SNIPPET_FRAMES * snippets
    if any(start >= frames for start, _ in events):
        with pytest.raises(UsageError, match=f"{SOURCE}: video: event at frames"):
            build(snippets)
    else:
        labels = build(snippets)
        assert len(labels) == frames
        assert labels.sum() == len({f for start, end in events for f in range(start, min(end, frames))})


@PROPERTIES
@given(st.lists(st.integers(0, 1), min_size=1, max_size=400), st.integers(1, 40))
def test_a_mask_is_cut_or_padded_with_its_last_label_to_16_t_frames(mask, snippets):
    frames = pseudo_frames(snippets)
    labels = from_mask(np.array(mask, dtype=np.uint8), frames)
    assert len(labels) == frames
    kept = min(len(mask), frames)
    np.testing.assert_array_equal(labels[:kept], mask[:kept])
    assert (labels[kept:] == mask[-1]).all()


@PROPERTIES
@given(st.lists(st.integers(-1, 2), max_size=80), st.integers(1, 5))
def test_a_prebuilt_ground_truth_is_accepted_only_when_it_fits(values, snippets):
    labels = np.array(values, dtype=np.int64)
    fits = len(labels) == pseudo_frames(snippets) and set(values) <= {0, 1}
    if fits:
        np.testing.assert_array_equal(check_prebuilt(labels, snippets, SOURCE), labels)
    else:
        with pytest.raises(UsageError, match=SOURCE):
            check_prebuilt(labels, snippets, SOURCE)


# -- frame expansion and metrics -------------------------------------------------------------------------------

scores = st.floats(0, 1, allow_nan=False, width=32)


@st.composite
def labelled_scores(draw: st.DrawFn, distinct: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Snippet scores with labels holding both classes (distinct scores: no ties)."""
    size = draw(st.integers(2, 40))
    values = draw(st.lists(st.integers(0, 10_000) if distinct else scores, min_size=size, max_size=size,
                           unique=distinct))
    labels = draw(st.lists(st.integers(0, 1), min_size=size, max_size=size))
    assume(0 < sum(labels) < size)
    return np.array(values, dtype=np.float64), np.array(labels, dtype=np.int8)


@PROPERTIES
@given(st.lists(scores, max_size=50), st.integers(1, 32))
def test_expansion_repeats_each_snippet_score_over_its_frames(snippet_scores, frames_per_snippet):
    frames = expand_to_frames(np.array(snippet_scores), frames_per_snippet)
    assert len(frames) == frames_per_snippet * len(snippet_scores)
    for i, value in enumerate(snippet_scores):
        assert (frames[i * frames_per_snippet : (i + 1) * frames_per_snippet] == np.float64(value)).all()


@PROPERTIES
@given(labelled_scores())
def test_frame_auc_is_the_mann_whitney_probability(case):
    values, labels = case
    positive, negative = values[labels == 1], values[labels == 0]
    wins = (positive[:, None] > negative[None, :]).sum() + 0.5 * (positive[:, None] == negative[None, :]).sum()
    frames, frame_labels = expand_to_frames(values), np.repeat(labels, SNIPPET_FRAMES)
    assert frame_auc(frames, frame_labels) == pytest.approx(wins / (len(positive) * len(negative)))


@PROPERTIES
@given(labelled_scores(distinct=True), st.sampled_from([np.log1p, np.sqrt, lambda x: x**3 + 7.0, lambda x: 2 * x - 5]))
def test_auc_and_ap_are_invariant_to_increasing_transforms(case, transform):
    values, labels = case
    assert frame_auc(transform(values), labels) == pytest.approx(frame_auc(values, labels))
    assert frame_ap(transform(values), labels) == pytest.approx(frame_ap(values, labels))


@PROPERTIES
@given(labelled_scores(distinct=True))
def test_auc_of_reversed_scores_is_one_minus_auc(case):
    values, labels = case
    assert frame_auc(-values, labels) == pytest.approx(1 - frame_auc(values, labels))


@PROPERTIES
@given(labelled_scores())
def test_ap_lies_in_the_unit_interval_and_auc_matches_sklearn(case):
    values, labels = case
    for metric in (frame_ap, frame_ap_trapz, frame_auc):
        assert 0.0 <= metric(values, labels) <= 1.0
    assert frame_auc(values, labels) == pytest.approx(roc_auc_score(labels, values))


@PROPERTIES
@given(labelled_scores())
def test_expansion_does_not_change_snippet_level_auc(case):
    values, labels = case
    expanded = frame_auc(expand_to_frames(values), np.repeat(labels, SNIPPET_FRAMES))
    assert expanded == pytest.approx(frame_auc(values, labels))


@PROPERTIES
@given(st.lists(scores, min_size=1, max_size=30), st.integers(1, 20))
def test_a_length_mismatch_is_refused_before_sklearn(snippet_scores, missing):
    frames = expand_to_frames(np.array(snippet_scores))
    labels = np.zeros(len(frames) + missing, dtype=np.int8)
    labels[0] = 1
    for metric in (frame_auc, frame_ap, frame_ap_trapz):
        with pytest.raises(ValueError, match="ground truth must be built for the T"):
            metric(frames, labels)
