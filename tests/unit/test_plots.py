"""Figures on tiny data (their style, axes, legends and formats), the top-k separability, and what
runs store for figures: feature magnitudes and training curves."""

from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_SYNTHETIC

from vadbench.api.errors import UsageError
from vadbench.api.types import RunResult, RunSpec, TestSet
from vadbench.datasets.synthetic import SyntheticConfig, anomaly_segments
from vadbench.engine.runner import Runner
from vadbench.plan.grid import Grid
from vadbench.report.aggregate import SEGMENT_OPTIONS, Row
from vadbench.report.stats import topk_separability
from vadbench.report.store import RunStore, TestTruth

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from vadbench.report import plotdata, plots  # noqa: E402  (plots needs matplotlib)


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
    # The marker stands on an axis in segments: its label gives that position, then the μ in snippets it is.
    assert plotdata.anomaly_marker(config) == {"3.0 (μ=6)": 3.0}
    assert plotdata.anomaly_marker({"benchmark.anomaly_segments": 8.8}) == {"8.8": 8.8}
    assert plotdata.anomaly_marker({"dataset.root": "/x"}) == {}


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
    np.testing.assert_allclose(plotdata.pooled(np.arange(64.0))[:2], [0.5, 2.5])


CURVES = [plotdata.Curve("rtfm", np.array([1, 2, 4]), np.array([80.0, 90.0, 85.0]), np.array([1.0, 2.0, 1.0]),
                      np.array([3, 3, 3]))]
STORED_CURVES = {"steps": [50, 100], "terms": {"loss": [1.0, 0.5], "rank": [0.8, 0.4]},
                 "selection": {"metric": "video AUC of held-out training videos", "steps": [5, 10, 100],
                               "values": [0.6, None, 0.9], "selected_step": 100}}

#: oracle-test on a schedule of 200 steps or fewer scores no checkpoint and keeps the final weights.
UNSCORED = {**STORED_CURVES, "selection": {"metric": "frame AUC of the test set", "steps": [], "values": [],
                                           "selected_step": 200}}
MANY_TERMS = {**STORED_CURVES, "terms": {name: [1.0, 0.5] for name in ("loss", "a", "b", "c", "d", "e", "f")}}


def tiny_figures():
    return [
        plots.sweep_figure(CURVES, "k", markers={"mu=2": 2.0},
                           references=[plotdata.Reference("sultani-mil (no k)", 70.0, 2.0, 3)]),
        plots.per_class_figure(["a", "b"], {"rtfm": (np.array([90.0, 80.0]), np.array([1.0, 2.0])),
                                            "sultani-mil": (np.array([70.0, 75.0]), np.array([3.0, 1.0]))}, seeds=3),
        plots.video_figure("v", np.array([0.1, 0.9, 0.8, 0.2]), np.array([1.0, 5.0, 4.0, 1.0]),
                           np.array([0.0, 1.0, 1.0, 0.0]), run="rtfm, seed 0"),
        plots.video_figure("v", np.array([0.1, 0.9]), None, np.array([0.0, 1.0])),
        plots.separability_figure(CURVES, CURVES, markers={"mu=2": 2}),
        plots.curves_figure([plotdata.TrainingCurves("rtfm val", (0, 1), (STORED_CURVES, STORED_CURVES))]),
        plots.curves_figure([plotdata.TrainingCurves("many terms", (0,), (MANY_TERMS,))]),  # 4 panels a row
        plots.methods_figure([plotdata.Panel(d, m, {"rtfm": np.array([90.0, 95.0, 93.0]),
                                                    "ur-dmu": np.array([88.0, 91.0])})
                              for m in ("auc", "ap") for d in ("synthetic", "synthetic-shanghaitech")]),
        plots.curves_figure([plotdata.TrainingCurves("rtfm oracle-test", (0,), (UNSCORED,))]),
    ]


def test_every_figure_renders_fits_a_paper_column_and_keeps_its_text_inside():
    for figure in tiny_figures():
        assert figure.get_figwidth() in (plots.SINGLE_COLUMN, plots.DOUBLE_COLUMN)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        # Everything drawn, in inches: a clipped label or an overflowing title reaches past the edge.
        drawn = figure.get_tightbbox(canvas.get_renderer())
        assert drawn.x0 >= 0 and drawn.y0 >= 0
        assert drawn.x1 <= figure.get_figwidth() + 1e-3 and drawn.y1 <= figure.get_figheight() + 1e-3


def test_no_panel_of_any_figure_is_empty():
    """A panel without data (a selection metric that no run scored) is left out, not drawn empty."""
    for figure in tiny_figures():
        for axes in figure.axes:
            if axes.get_visible():
                drawn = [line for line in axes.get_lines() if len(line.get_xdata())]
                assert drawn or axes.collections or axes.patches, axes.get_title()


def legend_texts(figure):
    return [t.get_text() for legend in figure.legends for t in [legend.get_title(), *legend.get_texts()]]


def row(method, values, sweep, protocol="last"):
    spec = RunSpec(method, protocol=protocol)
    return Row(spec, results=[RunResult(spec, "ok", metrics={"auc": v}) for v in values], sweep=sweep)


def test_a_method_without_the_swept_option_is_a_labelled_reference_line():
    rows = [row("rtfm", [0.8, 0.9], {"k": 1}), row("rtfm", [0.9, 0.92], {"k": 4}),
            row("sultani-mil", [0.7, 0.74], {"k": "-"})]
    curves, references = plotdata.collect_sweep(rows, "k")
    assert [c.label for c in curves] == ["rtfm"] and list(curves[0].x) == [1.0, 4.0]
    assert [(r.label, r.runs) for r in references] == [("sultani-mil (no k)", 2)]
    assert references[0].y == pytest.approx(72.0) and references[0].spread == pytest.approx(2.0)
    figure = plots.sweep_figure(curves, "k", references=references)
    flat = [line for line in figure.axes[0].get_lines() if line.get_label() == "sultani-mil (no k)"]
    assert len(flat) == 1 and set(flat[0].get_ydata()) == {72.0}  # horizontal, at the mean
    assert legend_texts(figure) == ["mean ± std over 2 seeds", "rtfm", "sultani-mil (no k)"]


def test_a_sweep_is_drawn_from_recorded_results_alone(tmp_path):
    """No plugin: the x label from the method's recorded segment options, the anomaly length from the
    benchmark's recorded config, mean ± std from the rows with the runs that recorded the metric."""
    recorded = {SEGMENT_OPTIONS: {"k": "top-k"}, "benchmark.anomaly_snippets": 6, "benchmark.anomaly_segments": 3.0}
    results = [RunResult(RunSpec("rtfm", seed=s, method_options={"k": k}), "ok", config={**recorded, "method.k": k},
                         metrics={} if (k, s) == (4, 1) else {"auc": 0.8 + 0.01 * k + 0.01 * s})
               for k in (1, 4) for s in (0, 1)]
    results += [RunResult(RunSpec("sultani-mil", seed=s), "ok", config={"dataset.mu": 6}, metrics={"auc": 0.7})
                for s in (0, 1)]
    grid = Grid(Path("sweep.toml"), "sweep", ("rtfm", "sultani-mil"), sweep={"k": (1, 4)})
    figure = plots.draw("sweep", results, store=RunStore(tmp_path), grid=grid)
    axes = figure.axes[0]
    assert axes.get_xlabel() == "k (top-k of 32 pooled segments per video)"
    assert [text.get_text() for text in axes.texts] == ["3.0 (μ=6)"]  # at 3.0 on an axis in segments
    assert legend_texts(figure) == ["mean ± std over 1–2 seeds", "rtfm", "sultani-mil (no k)", plotdata.MARKER_MEANING]
    with pytest.raises(UsageError, match="only plot curves takes a run store"):
        plots.draw("sweep", results, store=RunStore(tmp_path))


def test_per_class_bars_start_at_chance_and_the_axis_shows_below_chance_results():
    figure = plots.per_class_figure(["a", "b"], {"m": (np.array([90.0, 30.0]), np.array([1.0, 4.0]))}, seeds=3)
    axes = figure.axes[0]
    bars = axes.patches
    assert [bar.get_y() for bar in bars] == [50.0, 50.0]  # every bar grows from chance
    assert bars[0].get_y() + bars[0].get_height() == 90.0 and bars[1].get_y() + bars[1].get_height() == 30.0
    low, high = axes.get_ylim()
    assert low <= 26.0 and high == 100.0  # the below-chance bar and its error bar are on the axis
    assert "bars from chance" in legend_texts(figure)[0]
    assert plots.per_class_figure(["a"], {"m": (np.array([90.0]), np.array([1.0]))}).axes[0].get_ylim()[0] == 50.0


def test_save_writes_vector_pdf_and_300_dpi_png_chosen_by_suffix(tmp_path):
    figure = tiny_figures()[0]
    paths = plots.check_outputs([str(tmp_path / "f.pdf"), str(tmp_path / "f.png")])
    plots.save(figure, paths)
    pdf, png = (path.read_bytes() for path in paths)
    assert pdf.startswith(b"%PDF") and b"/Subtype /Image" not in pdf  # lines and text, no bitmap
    width = int.from_bytes(png[16:20], "big")  # the IHDR chunk
    assert width == round(plots.SINGLE_COLUMN * plots.DPI)
    plots.save(figure, paths[:1])
    assert paths[0].read_bytes() == pdf  # no dates: the same figure gives the same file
    with pytest.raises(UsageError, match="f.jpg: the suffix names the format"):
        plots.check_outputs(["f.jpg"])


def test_where_keeps_the_runs_whose_recorded_options_match():
    results = [RunResult(RunSpec("rtfm", seed=s), "ok", config={"method.k": k, "dataset.mu": 6, "protocol": "val"})
               for s, k in ((0, 1), (1, 4))]
    assert [r.spec.seed for r in plotdata.where(results, ["k=4"])] == [1]
    assert len(plotdata.where(results, ["dataset.mu=6", "protocol=val"])) == 2
    with pytest.raises(UsageError, match="no run has option 'margin'"):
        plotdata.where(results, ["margin=1"])
    with pytest.raises(UsageError, match="no run left"):
        plotdata.where(results, ["k=2"])


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


def test_a_run_stores_its_training_curves(tmp_path):
    store = RunStore(tmp_path)
    runner = Runner(progress=False)
    options = {key: value for key, value in TINY_SYNTHETIC.items() if key != "steps"}
    last = RunSpec("rtfm", dataset_options=options, steps=60, device="cpu")
    val = RunSpec("sultani-mil", dataset_options=options, steps=12, device="cpu", protocol="val:every=5")
    for spec in (last, val):
        store.write(runner.run(spec))
    curves = store.curves(last)
    files = sorted(p.name for p in store.folder(last).iterdir())
    assert files == ["curves.json", "magnitudes.npz", "result.json", "scores.npz"]  # no temporary file left
    assert curves["steps"] == [50, 60] and "selection" not in curves  # logged every 50 steps and at the last
    assert {"loss", "cls", "fm", "smooth", "sparse"} <= set(curves["terms"])
    assert all(len(values) == 2 for values in curves["terms"].values())
    assert curves["terms"]["loss"][-1] == store.result(last).metrics["final_loss"]
    selection = store.curves(val)["selection"]
    assert selection["steps"] == [5, 10, 12] and len(selection["values"]) == 3
    assert selection["metric"] == "video AUC of held-out training videos"
    result = store.result(val)
    assert selection["selected_step"] == result.metrics["selected_step"]
    assert max(v for v in selection["values"] if v is not None) == result.metrics["selection_score"]


def test_runs_stored_without_curves_are_named_in_one_line(tmp_path):
    store = RunStore(tmp_path)
    result = RunResult(RunSpec("rtfm"), "ok")
    store.write(result)  # an older vadbench wrote no curves.json
    assert store.curves(result.spec) == {}
    with pytest.raises(UsageError, match="1 of the 1 runs have no stored training curves") as error:
        plotdata.collect_curves([result], store)
    assert "\n" not in str(error.value)


def test_curves_are_grouped_by_configuration_and_labelled_by_what_differs(tmp_path):
    store = RunStore(tmp_path)
    results = []
    for protocol in ("last", "val"):
        for seed in (0, 1):
            spec = RunSpec("rtfm", seed=seed, protocol=protocol)
            results.append(RunResult(spec, "ok", config={"method.k": 3, "protocol": protocol}, curves=STORED_CURVES))
            store.write(results[-1])
    groups = plotdata.collect_curves(results, store)
    assert [(g.label, g.seeds) for g in groups] == [("rtfm", (0, 1)), ("rtfm val", (0, 1))]
    figure = plots.curves_figure(groups)
    titles = [axes.get_title().replace("\n", " ") for axes in figure.axes]  # wrapped at spaces
    assert titles == ["loss (total)", "rank", "selection: video AUC of held-out training videos (%)"]
    assert len(figure.axes[0].get_lines()) == 4  # one line per seed and configuration
    assert "selected step" in legend_texts(figure)


def test_curves_of_a_run_that_scored_no_checkpoint_draw_without_a_selected_star(tmp_path):
    """oracle-test on a schedule of 200 steps or fewer scores no checkpoint and keeps the final weights."""
    store = RunStore(tmp_path)
    result = RunResult(RunSpec("rtfm", protocol="oracle-test"), "ok", config={"protocol": "oracle-test"},
                       curves=UNSCORED)
    store.write(result)
    groups = plotdata.collect_curves([result], store)
    assert groups[0].unscored
    figure = plots.curves_figure(groups)
    # The loss terms only: the selection metric scored nothing, so it has no (empty) panel.
    assert [axes.get_title() for axes in figure.axes] == ["loss (total)", "rank"]
    assert "rtfm oracle-test (1 seed; no checkpoint scored, final weights)" in legend_texts(figure)


def test_curves_tell_seeds_apart_and_coinciding_configurations_both_show():
    """The protocols grid's `last` and `oracle-test` runs trained alike: the second must not hide the first."""
    groups = [plotdata.TrainingCurves(label, (0, 1), (STORED_CURVES, STORED_CURVES))
              for label in ("rtfm", "rtfm oracle-test")]
    figure = plots.curves_figure(groups)
    lines = figure.axes[0].get_lines()  # loss: configuration x seed, in drawing order
    assert [line.get_label() for line in lines] == ["rtfm, seed 0", "rtfm, seed 1",
                                                    "rtfm oracle-test, seed 0", "rtfm oracle-test, seed 1"]
    assert lines[0].get_linestyle() != lines[1].get_linestyle()  # seeds: one line style each
    assert lines[0].get_linestyle() == lines[2].get_linestyle()  # the same seed alike in every configuration
    # The first drawn is wider, with larger markers: the later one is drawn inside it.
    assert lines[0].get_linewidth() > lines[2].get_linewidth()
    assert lines[0].get_markersize() > lines[2].get_markersize()
    assert {"seed 0", "seed 1"} <= set(legend_texts(figure))


def test_coinciding_sweep_lines_both_show():
    same = [plotdata.Curve(label, CURVES[0].x, CURVES[0].y, CURVES[0].spread, CURVES[0].runs) for label in "ab"]
    first, second = plots.sweep_figure(same, "k").axes[0].get_lines()
    assert first.get_linewidth() > second.get_linewidth() and first.get_markersize() > second.get_markersize()


def test_the_methods_figure_shows_every_seed_and_the_mean_per_dataset_and_metric():
    results = []
    for method, aucs in (("rtfm", (0.9, 0.8)), ("sultani-mil", (0.7, 0.75))):
        spec = RunSpec(method)
        results.append(Row(spec, results=[RunResult(spec, "ok", metrics={"auc": a, "ap": a / 2}) for a in aucs]))
    panels = plotdata.collect_methods(results)
    assert [(p.dataset, p.metric) for p in panels] == [("synthetic", "auc"), ("synthetic", "ap")]
    assert np.allclose(panels[0].values["rtfm"], [90.0, 80.0])
    assert np.allclose(panels[1].values["sultani-mil"], [35.0, 37.5])
    figure = plots.methods_figure(panels)
    axes = [a for a in figure.axes if a.get_visible()]
    assert len(axes) == 2 and [a.get_ylabel() for a in axes] == ["AUC (%)", "AP (%)"]
    assert [a.get_title() for a in axes] == ["AUC on synthetic", "AP on synthetic"]  # what each panel shows
    dots = [c for c in axes[0].collections if len(c.get_offsets()) == 2]  # one dot per seed, per method
    assert len(dots) == 2


def test_the_video_figure_shows_scores_that_are_not_probabilities_whole():
    """BN-WVAD's scores (distance x sigmoid) exceed 1: the axis grows to show them, not cut them."""
    figure = plots.video_figure("v", np.array([0.5, 7.5, 3.0]), None, np.array([0.0, 1.0, 0.0]))
    low, high = figure.axes[0].get_ylim()
    assert high >= 7.5 and low <= 0
    assert plots.video_figure("v", np.array([0.1, 0.9]), None, np.array([0.0, 1.0])).axes[0].get_ylim() == (-0.02, 1.02)
