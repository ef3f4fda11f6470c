import json
import os
import shutil

import numpy as np
import pytest
import torch

from vadbench.api.errors import UsageError
from vadbench.api.types import RunResult, RunSpec
from vadbench.plan.specs import build_specs
from vadbench.plugins.manager import get_plugins
from vadbench.report.aggregate import REPLICATES, rows
from vadbench.report.leaderboard import render
from vadbench.report.store import ConflictingResults, RunStore, load_results, upgrade_stored


def result(method="rtfm", seed=0, auc=0.9, status="ok"):
    spec = RunSpec(method=method, seed=seed)
    metrics = {"auc": auc, "ap": auc - 0.1, "ap_trapz": auc - 0.11, "per_class_auc": {"a": 0.5}}
    scores = {"v0": np.array([0.1, 0.2], np.float32), "v1": np.array([0.3], np.float32)}
    return RunResult(spec, status, metrics=metrics if status == "ok" else {}, scores=scores)


def test_key_ignores_the_device_but_not_the_options():
    assert RunSpec("rtfm", device="cpu").key == RunSpec("rtfm", device="cuda").key
    assert RunSpec("rtfm", method_options={"k": 3}).key != RunSpec("rtfm", method_options={"k": 4}).key
    assert RunSpec("rtfm", seed=1).key != RunSpec("rtfm", seed=2).key


def test_compile_and_stacking_are_part_of_the_key_only_when_used():
    """Both change the numbers (compile: the float arithmetic; stacked: the dropout masks), so they get
    their own keys, while eager runs alone keep the keys they always had."""
    plain = RunSpec("rtfm")
    assert plain.key == "be7de24f5a867aaf"  # the key of this spec before compile and stacked were in it
    assert len({plain.key, RunSpec("rtfm", compile=True).key, RunSpec("rtfm", stacked=(0, 1)).key,
                RunSpec("rtfm", stacked=(0, 1, 2)).key}) == 4
    stacked = RunSpec("rtfm", compile=True, stacked=(0, 1))
    assert RunSpec.from_dict(json.loads(json.dumps(stacked.to_dict()))) == stacked


def test_the_cpu_threads_are_part_of_the_key_when_fixed():
    """Sums split over threads round differently, so a run's numbers depend on its thread count."""
    assert len({RunSpec("rtfm").key, RunSpec("rtfm", threads=1).key, RunSpec("rtfm", threads=2).key}) == 3
    assert RunSpec("rtfm").key == "be7de24f5a867aaf"  # not fixed (a GPU run): the key it always had
    one = RunSpec("rtfm", threads=1)
    assert RunSpec.from_dict(json.loads(json.dumps(one.to_dict()))) == one


def test_the_runner_trains_with_the_threads_the_key_names_and_records_them():
    from conftest import TINY_SYNTHETIC

    from vadbench.engine.runner import Runner

    before = torch.get_num_threads()
    runner = Runner(progress=False)
    for threads in (1, 2):
        spec = RunSpec("sultani-mil", dataset_options=dict(TINY_SYNTHETIC), steps=2, device="cpu", threads=threads)
        recorded = runner.run(spec).device
        assert recorded.startswith("cpu (") and recorded.endswith(f", {threads} thread{'s' * (threads > 1)})")
        assert torch.get_num_threads() == before  # restored after the run


def test_store_round_trip_and_finished_marker(tmp_path):
    store = RunStore(tmp_path)
    store.ensure_writable()
    first = result()
    assert not store.is_finished(first.spec)
    folder = store.write(first)
    assert store.is_finished(first.spec)
    assert sorted(p.name for p in folder.iterdir()) == ["result.json", "scores.npz"]  # no temp files left
    loaded = store.result(first.spec)
    assert loaded.metrics == first.metrics and loaded.spec == first.spec
    np.testing.assert_array_equal(store.scores(first.spec)["v0"], first.scores["v0"])


def test_failed_runs_are_stored_but_not_finished(tmp_path):
    store = RunStore(tmp_path)
    failed = result(status="failed")
    store.write(failed)
    assert not store.is_finished(failed.spec)
    assert [r.status for r in load_results(tmp_path)] == ["failed"]


def test_a_folder_without_result_json_is_unfinished(tmp_path):
    store = RunStore(tmp_path)
    spec = RunSpec("rtfm")
    store.folder(spec).mkdir(parents=True)
    (store.folder(spec) / "scores.npz").write_bytes(b"partial")
    assert not store.is_finished(spec)
    assert load_results(tmp_path) == []


def test_unwritable_output_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(UsageError, match="cannot write results there"):
        RunStore(blocker / "out").ensure_writable()


def test_loading_a_folder_that_is_not_a_store(tmp_path):
    with pytest.raises(UsageError, match="no vadbench results here"):
        load_results(tmp_path)
    store = RunStore(tmp_path)
    store.write(result())
    (store.folder(RunSpec("rtfm")) / "result.json").write_text("{broken")
    with pytest.raises(UsageError, match="not a vadbench result"):
        load_results(tmp_path)


def test_leaderboard_mean_std_over_seeds_and_failures_counted():
    results = [result(seed=0, auc=0.8), result(seed=1, auc=0.9),
               result("sultani-mil", seed=0, auc=0.7), result("sultani-mil", seed=1, status="failed")]
    rtfm, sultani = rows(results)
    assert rtfm.stat("auc").mean == pytest.approx(85.0) and rtfm.stat("auc").std == pytest.approx(5.0)
    assert len(sultani.ok) == 1 and sultani.failed == 1
    markdown = render(results, "md")
    assert "85.00 ± 5.00" in markdown and "failed" in markdown
    assert "\\pm" in render(results, "latex")
    csv = render(results, "csv").splitlines()
    assert csv[0].startswith("method,dataset,features,protocol,runs,failed,auc_mean,auc_std")
    assert csv[1].startswith("rtfm,synthetic,,last,2,0,85.0000,5.0000,")  # csv: "-" is empty


def test_result_json_is_plain_json(tmp_path):
    store = RunStore(tmp_path)
    folder = store.write(result())
    record = json.loads((folder / "result.json").read_text())
    assert record["spec"]["method"] == "rtfm" and record["status"] == "ok" and "scores" not in record


def test_a_write_that_fails_mid_grid_is_a_usage_error_and_leaves_no_finished_run(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    store.ensure_writable()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("vadbench.data.atomic.os.replace", disk_full)
    with pytest.raises(UsageError, match=r"cannot store run .*\(No space left on device\)"):
        store.write(result())
    assert not store.is_finished(RunSpec("rtfm"))


def ucsd_run(seed, auc, split=0, **options):
    """A UCSD run as the driver stores it: the split a replicate option (recorded from the adapter)."""
    spec = RunSpec("rtfm", dataset="ucsd-ped2", seed=seed, dataset_options={"split": split} if split else {},
                   method_options=options, dataset_access={"root": "/d"}, data=f"data-{split}")
    return RunResult(spec, "ok", metrics={"auc": auc, "ap": auc, "ap_trapz": auc}, config={REPLICATES: ["split"]})


def test_runs_with_other_options_get_their_own_row_while_splits_are_averaged():
    board = rows([ucsd_run(0, 0.8, split=0), ucsd_run(0, 0.9, split=1), ucsd_run(0, 0.5, k=4)])
    assert [(row.options, len(row.ok), row.stat("auc").mean) for row in board] == [
        ("", 2, pytest.approx(85.0)), ("k=4", 1, pytest.approx(50.0))]
    header, _, *lines = render([ucsd_run(0, 0.8, split=0), ucsd_run(0, 0.9, split=1)]).splitlines()
    assert "data" not in [c.strip() for c in header.strip("|").split("|")]  # the splits' data differ by design
    assert len(lines) == 1 and "85.00 ± 5.00" in lines[0]


def test_runs_of_one_split_on_two_versions_of_the_data_are_not_averaged():
    edited = ucsd_run(1, 0.1, split=1)
    edited.spec = RunSpec(**{**edited.spec.__dict__, "data": "edited"})
    with pytest.raises(UsageError, match="2 versions of the data"):
        rows([ucsd_run(0, 0.8, split=0), ucsd_run(0, 0.9, split=1), edited])


def test_a_view_may_keep_a_replicate_option_apart():
    """A grid that sweeps the split shows one row per split; everything else averages over splits."""
    runs = [ucsd_run(0, 0.8, split=0), ucsd_run(1, 0.7, split=0), ucsd_run(0, 0.9, split=1)]
    assert [len(row.ok) for row in rows(runs, keep=["split"])] == [2, 1]
    assert [len(row.ok) for row in rows(runs)] == [3]


def test_the_leaderboard_shows_the_chosen_metrics_and_a_stored_result_without_far_as_missing():
    with_far = [result(seed=0), result(seed=1)]
    for run, far in zip(with_far, (0.02, 0.04), strict=True):
        run.metrics["far"] = far
    old = result("sultani-mil")  # stored before the false-alarm rate existed
    frame = [*with_far, old]
    table = render(frame, "md", ["auc", "far"]).splitlines()
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header == ["method", "dataset", "features", "protocol", "runs", "AUC", "FAR"]
    cells = {line.split("|")[1].strip(): line.strip("|").split("|")[-1].strip() for line in table[2:]}
    assert cells == {"rtfm": "3.00 ± 1.00", "sultani-mil": "-"}
    assert "FAR" not in render(frame, "md")  # the default keeps today's columns
    csv = render(frame, "csv", ["far"]).splitlines()
    assert csv[0].endswith("far_mean,far_std") and csv[2].endswith(",,")  # missing, not 0


def test_a_run_given_twice_counts_once():
    twice = result(seed=1, auc=0.8)
    (row,) = rows([twice, twice, result(seed=2, auc=0.9)])
    assert len(row.ok) == 2 and row.stat("auc").mean == pytest.approx(85.0)


def test_results_of_one_run_stored_under_two_keys_count_once_the_newest(tmp_path):
    """An older version stored ``--set k=3`` (RTFM's default) under a key of its own: it is the plain run."""
    store = RunStore(tmp_path)
    old = store.write(RunResult(RunSpec("rtfm", method_options={"k": 3}, steps=200, seed=0), "ok",
                                metrics={"auc": 0.5, "ap": 0.5, "ap_trapz": 0.5}))
    new = store.write(result(seed=0, auc=0.9))
    os.utime(old / "result.json", (1e9, 1e9))
    os.utime(new / "result.json", (2e9, 2e9))
    plugins = get_plugins()
    with pytest.warns(ConflictingResults, match="stored 2 times with different numbers: AUC 50.00"):
        results = load_results(tmp_path, lambda stored: upgrade_stored(plugins, stored))
    assert [(r.spec, r.metrics["auc"]) for r in results] == [(RunSpec("rtfm"), 0.9)]
    assert results[0].config[REPLICATES] == []  # upgraded: the report metadata this version records
    os.utime(old / "result.json", (3e9, 3e9))
    with pytest.warns(ConflictingResults, match=f"the tables use the newest, {old.name}"):
        assert [r.metrics["auc"] for r in load_results(tmp_path, lambda s: upgrade_stored(plugins, s))] == [0.5]
    assert len(load_results(tmp_path)) == 2  # without canonical forms the keys differ


def test_two_results_of_one_key_with_different_numbers_are_reported_naming_both(tmp_path):
    store = RunStore(tmp_path)
    folder = store.write(result(seed=0, auc=0.9))
    copy = folder.with_name("from-another-machine")
    shutil.copytree(folder, copy)
    record = json.loads((copy / "result.json").read_text())
    record["metrics"]["auc"], record["device"] = 0.8, "cpu (Other CPU, 2 threads)"
    (copy / "result.json").write_text(json.dumps(record))
    os.utime(copy / "result.json", (2e9, 2e9))
    os.utime(folder / "result.json", (1e9, 1e9))
    with pytest.warns(ConflictingResults) as caught:
        (chosen,) = load_results(tmp_path)
    (message,) = [str(w.message) for w in caught]
    assert "AUC 90.00 AP 80.00 in " + folder.name in message and "AUC 80.00 AP 80.00 in from-another-machine" in message
    assert "(cpu (Other CPU, 2 threads))" in message and chosen.metrics["auc"] == 0.8


def test_a_copied_run_folder_counts_once(tmp_path, recwarn):
    store = RunStore(tmp_path)
    folder = store.write(result(seed=0))
    shutil.copytree(folder, folder.with_name("copy"))
    assert len(load_results(tmp_path)) == 1
    assert not [w for w in recwarn if w.category is ConflictingResults]  # the same numbers: nothing to report


@pytest.mark.parametrize("damage", ["no metrics", "no auc", "auc null", "no ap_trapz"])
def test_a_successful_result_without_its_metrics_is_an_error_naming_the_file(tmp_path, damage):
    store = RunStore(tmp_path)
    path = store.write(result()) / "result.json"
    record = json.loads(path.read_text())
    if damage == "no metrics":
        del record["metrics"]
    elif damage == "no auc":
        del record["metrics"]["auc"]
    elif damage == "auc null":
        record["metrics"]["auc"] = None
    else:
        del record["metrics"]["ap_trapz"]
    path.write_text(json.dumps(record))
    with pytest.raises(UsageError, match=f"{path}: incomplete vadbench result"):
        load_results(tmp_path)
    with pytest.raises(UsageError, match=str(path)):
        store.result(result().spec)


def test_a_run_of_an_older_revision_of_its_method_is_another_run(tmp_path):
    """sultani-mil's objective changed (revision 2): a result stored by the old code must not pass for a new run."""
    plugins = get_plugins()
    (new,) = build_specs(plugins, ["sultani-mil"], "synthetic", [], [0])
    old = RunSpec("sultani-mil")  # as vadbench 0.1 stored it: no revision
    assert new.method_revision == 2 and new.key != old.key
    store = RunStore(tmp_path)
    store.write(RunResult(old, "ok", metrics={"auc": 0.5, "ap": 0.5, "ap_trapz": 0.5}))
    assert not store.is_finished(new)
    (stored,) = load_results(tmp_path, lambda result: upgrade_stored(plugins, result))
    assert stored.spec.method_revision == 1  # kept apart from new runs in the tables
    (rtfm,) = build_specs(plugins, ["rtfm"], "synthetic", [], [0])
    assert rtfm.key == RunSpec("rtfm", method_revision=rtfm.method_revision).key  # a revision adds nothing else
    assert RunSpec("rtfm", method_revision=1).key == RunSpec("rtfm").key  # revision 1 keeps the keys it had


def test_oracle_test_runs_name_the_selection_rule_they_followed(tmp_path):
    spec = RunSpec("rtfm", protocol="oracle-test", method_revision=2)
    assert spec.identity()["selection_rule"] == "public-code"
    assert "selection_rule" not in RunSpec("rtfm", protocol="last").identity()
    store = RunStore(tmp_path)
    store.write(RunResult(spec, "ok", metrics={"auc": 0.5, "ap": 0.5, "ap_trapz": 0.5}))
    assert store.result(spec).spec == spec and RunSpec.from_dict(spec.to_dict()) == spec  # it reads back


def test_rows_of_one_dataset_on_two_feature_sets_are_told_apart_and_noted():
    """Numbers from different feature sets never share a row, and the table says they are not one comparison."""
    on = {"rtfm": ("rtfm", 10, 2048), "wu": ("wu", 5, 1024)}
    results = []
    for seed, (name, crops, dim) in enumerate([on["rtfm"], on["wu"]]):
        run = result("ur-dmu", seed=seed)
        run.spec = RunSpec("ur-dmu", seed=seed, data=f"fingerprint-{name}")
        run.config = {"benchmark.feature_set": name, "benchmark.crops": crops, "benchmark.feature_dim": dim}
        results.append(run)
    table = render(results, "md")
    assert "rtfm 10x2048" in table and "wu 5x1024" in table
    assert "read different feature sets (rtfm 10x2048, wu 5x1024)" in table
    assert len(rows(results)) == 2
    same = render(results[:1], "md")
    assert "different feature sets" not in same
