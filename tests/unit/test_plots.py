"""Figures on tiny data, the top-k separability, and the magnitudes that runs store for them."""

import io

import numpy as np
import pytest
from conftest import TINY_SYNTHETIC

from vadbench.datasets.synthetic import SyntheticConfig, anomaly_segments
from vadbench.results import RunStore, TestTruth
from vadbench.runner import Runner
from vadbench.stats import topk_separability
from vadbench.types import RunSpec, TestSet

pytest.importorskip("matplotlib")

from vadbench import plots  # noqa: E402  (needs matplotlib)


def png_bytes(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def test_top_k_separability_rises_to_the_anomaly_length():
    # Abnormal videos: a 3-snippet event of magnitude 5. Every video, normal ones too, has one spike of 5.
    rng = np.random.default_rng(0)

    def video(abnormal):
        values = np.ones(20)
        values[7] = 5.0
        if abnormal:
            values[12:15] = 5.0
        return values + 0.1 * rng.random(20)

    magnitudes = [video(True) for _ in range(50)] + [video(False) for _ in range(50)]
    aucs, gaps = topk_separability(magnitudes, np.array([1] * 50 + [0] * 50), [1, 2, 3, 4, 20])
    # The top-1 is a spike in every video: only the noise (the max of 4 values against 1) separates them.
    assert aucs[0] < 0.9
    assert aucs[1] == aucs[2] == 1.0  # up to mu, more snippets only add the event
    assert gaps[0] < gaps[1] < gaps[2]
    assert gaps[4] < gaps[2]  # far beyond mu, the mean dilutes the event with background


def test_anomaly_length_in_training_segments():
    """The synthetic benchmark records it; figures mark it from the recorded config alone."""
    assert anomaly_segments(SyntheticConfig(mu=6, min_length=64, max_length=64)) == pytest.approx(3.0)
    config = {"benchmark.anomaly_snippets": 6, "benchmark.anomaly_segments": 3.0}
    assert plots.anomaly_marker(config) == {"anomaly of 6 snippets (~3.0 segments)": 3.0}
    assert plots.anomaly_marker({"dataset.root": "/x"}) == {}


def test_snippet_truth_and_input_magnitudes_follow_the_test_layout(tmp_path):
    test = TestSet(
        features=np.full((5, 1, 4), 0.5, dtype=np.float32), offsets=np.array([0, 2, 5]), labels=np.array([1, 0]),
        frame_labels=np.r_[np.zeros(4), np.ones(4), np.zeros(12)], video_ids=("a", "b"),
        classes=("x", "Normal"), snippet_frames=4,
    )
    store, spec = RunStore(tmp_path), RunSpec("rtfm")
    store.write_test_truth(spec, TestTruth.of(test))
    truth = store.test_truth(spec)  # what the figures read: stored once per benchmark, no features
    np.testing.assert_array_equal(truth.snippet_truth(0), [0.0, 1.0])
    np.testing.assert_array_equal(truth.frames(1), np.zeros(12))
    assert truth.video_ids == ("a", "b") and truth.classes == ("x", "Normal")
    inputs = truth.input_magnitudes  # pooled to the 32 training segments, as the top-k sees them
    assert inputs.shape == (2, 32) and inputs[1] == pytest.approx(np.ones(32))  # ||(.5,.5,.5,.5)||
    np.testing.assert_allclose(plots.pooled(np.arange(64.0))[:2], [0.5, 2.5])


def test_every_figure_renders_from_tiny_data():
    curves = [plots.Curve("rtfm", np.array([1, 2, 4]), np.array([80.0, 90.0, 85.0]), np.array([1.0, 2.0, 1.0]))]
    figures = [
        plots.sweep_figure(curves, "k", markers={"mu=2": 2.0}, title="tiny"),
        plots.per_class_figure(["a", "b"], {"rtfm": (np.array([90.0, 80.0]), np.array([1.0, 2.0])),
                                            "sultani-mil": (np.array([70.0, 75.0]), np.array([3.0, 1.0]))}),
        plots.video_figure("v", np.array([0.1, 0.9, 0.8, 0.2]), np.array([1.0, 5.0, 4.0, 1.0]),
                           np.array([0.0, 1.0, 1.0, 0.0])),
        plots.video_figure("v", np.array([0.1, 0.9]), None, np.array([0.0, 1.0])),
        plots.separability_figure(curves, curves, markers={"mu=2": 2}),
    ]
    for figure in figures:
        data = png_bytes(figure)
        assert data.startswith(b"\x89PNG") and len(data) < 200_000


def test_rtfm_runs_store_magnitudes_and_sultani_runs_do_not(tmp_path):
    store = RunStore(tmp_path)
    runner = Runner(progress=False)
    for method, has_magnitudes in (("rtfm", True), ("sultani-mil", False)):
        spec = RunSpec(method, dataset_options=dict(TINY_SYNTHETIC), steps=2, device="cpu")
        result = runner.run(spec)
        store.write(result)
        stored = store.magnitudes(spec)
        assert bool(stored) == has_magnitudes
        if has_magnitudes:
            assert {v: len(m) for v, m in stored.items()} == {v: len(s) for v, s in result.scores.items()}
            assert all(np.all(m >= 0) for m in stored.values())
