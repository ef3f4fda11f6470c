"""Weights that outlive a run, through the commands a user types: `vadbench run --save-model` keeps them,
`vadbench score` applies them to feature files and videos, `vadbench evaluate` scores a dataset's test set with
a checkpoint; each bad input is one line with exit code 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fakeroots import ucsd_root

from vadbench.api.types import RunResult
from vadbench.cli import main
from vadbench.report.store import RunStore

TRAIN = ["--method", "rtfm", "--dataset", "ucsd-ped2", "--seeds", "0", "--steps", "2", "--set", "rtfm.batch_size=2",
         "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(data root, run store, run folder) of one RTFM run on a fake UCSD Ped2 root, with its weights saved."""
    folder = tmp_path_factory.mktemp("weights")
    (folder / "ped2").mkdir()
    root = ucsd_root(folder / "ped2")
    store = folder / "runs"
    assert main(["run", *TRAIN, "--root", str(root), "--out", str(store), "--save-model"]) == 0
    (run,) = (store / "runs").iterdir()
    return root, store, run


def test_saved_weights_score_the_test_videos_as_they_did_at_the_end_of_their_run(trained, tmp_path):
    root, store, run = trained
    record = json.loads((run / "model.json").read_text())
    assert (record["method"], record["crops"], record["feature_dim"]) == ("rtfm", 10, 8)
    assert set(torch.load(run / "model.pt", weights_only=True)) >= {"mtn.pdc.branches.0.0.weight"}
    spec = RunResult.from_dict(json.loads((run / "result.json").read_text())).spec
    stored = RunStore(store).scores(spec)
    test_files = sorted(root.glob("*/*_i3d.npy"))  # the test split holds the normal clips not drawn for training
    out = tmp_path / "scores.npz"
    assert main(["score", "--run", str(run), "--out", str(out), *map(str, test_files)]) == 0
    scored = dict(np.load(out))
    assert set(stored) <= set(scored) and stored
    for name in stored:
        np.testing.assert_allclose(scored[name], np.repeat(stored[name], 16), rtol=1e-6, atol=1e-7)


def test_evaluate_with_the_saved_weights_gives_the_runs_numbers_in_a_row_of_its_own(trained, capsys):
    root, store, run = trained
    trained_auc = json.loads((run / "result.json").read_text())["metrics"]["auc"]
    capsys.readouterr()
    assert main(["evaluate", "--method", "rtfm", "--checkpoint", str(run / "model.pt"), "--dataset", "ucsd-ped2",
                 "--root", str(root), "--out", str(store)]) == 0
    table = capsys.readouterr().out
    assert "| given " in table and "checkpoint=" in table
    given = [json.loads(path.read_text()) for path in (store / "runs").glob("*/result.json")
             if json.loads(path.read_text())["spec"]["protocol"] == "given"]
    assert len(given) == 1 and given[0]["metrics"]["auc"] == pytest.approx(trained_auc, abs=1e-12)
    assert given[0]["config"]["checkpoint_format"] == "vadbench"


def test_a_stored_run_without_weights_trains_again_when_they_are_asked_for(tmp_path):
    (tmp_path / "ped2").mkdir()
    root = ucsd_root(tmp_path / "ped2")
    store = tmp_path / "runs"
    assert main(["run", *TRAIN, "--root", str(root), "--out", str(store)]) == 0
    (run,) = (store / "runs").iterdir()
    assert not (run / "model.pt").exists()
    assert main(["score", "--run", str(run), str(next((root / "Test").glob("*.npy")))]) == 2
    assert main(["run", *TRAIN, "--root", str(root), "--out", str(store), "--save-model"]) == 0
    assert (run / "model.pt").is_file()


@pytest.mark.parametrize("problem", ["code", "other method", "wrong dimension", "no weights"])
def test_bad_weights_and_inputs_are_one_line_and_write_nothing(trained, tmp_path, capsys, problem):
    root, _, run = trained
    feature = next((root / "Test").glob("*.npy"))
    command = ["score", "--run", str(run)]
    if problem == "code":
        pickled = tmp_path / "model.pkl"
        torch.save(torch.nn.Linear(8, 1), pickled)  # a pickled module: unpickling it would run code
        command = ["score", "--method", "rtfm", "--checkpoint", str(pickled)]
    elif problem == "other method":
        command = ["score", "--method", "mgfn", "--checkpoint", str(run / "model.pt")]
    elif problem == "wrong dimension":
        feature = tmp_path / "clip_i3d.npy"
        np.save(feature, np.zeros((4, 10, 16), dtype=np.float32))
    else:
        command = ["score", "--run", str(tmp_path)]
    out = tmp_path / "scores.csv"
    capsys.readouterr()
    assert main([*command, "--out", str(out), str(feature)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vadbench: error:"), err
    assert not out.exists()
    expected = {"code": "weights_only", "other method": "not a checkpoint of mgfn", "wrong dimension": "[T, 10, 8]",
                "no weights": "no saved weights"}[problem]
    assert expected in err[0]


def test_scores_as_csv_on_stdout_and_a_plot_with_the_ground_truth(trained, tmp_path, capsys):
    root, _, run = trained
    feature = next((root / "Test").glob("*.npy"))
    capsys.readouterr()
    plot = tmp_path / "scores.png"
    assert main(["score", "--run", str(run), str(feature), "--plot", str(plot), "--dataset", "ucsd-ped2",
                 "--root", str(root)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "video,frame,score"
    frames = 16 * len(np.load(feature))
    assert len(lines) == 1 + frames and lines[-1].startswith(f"{feature.stem.removesuffix('_i3d')},{frames - 1},")


def test_score_a_video_extracted_with_the_feature_set_the_weights_were_trained_on(tmp_path, capsys):
    from test_extract import R50, random_weights, ucsd_annotation, ucsd_videos

    clips = ucsd_videos(tmp_path / "UCSDped2")
    root = tmp_path / "features"
    ucsd_annotation(root)
    weights = random_weights(tmp_path / "i3d.pt", R50)
    assert main(["extract", *R50, "--weights", str(weights), "--out", str(root), str(clips)]) == 0
    store = tmp_path / "runs"
    assert main(["run", *TRAIN, "--root", str(root), "--out", str(store), "--save-model"]) == 0
    (run,) = (store / "runs").iterdir()
    video = clips.parent / "Train" / "Train015.avi"
    from_video, from_file = tmp_path / "video.npy", tmp_path / "file.npy"
    extractor = ["--extractor", "i3d-r50", "--weights", str(weights), "--extractor-set", "width=4",
                 "--extractor-set", "crops=center"]
    assert main(["score", "--run", str(run), *extractor, "--out", str(from_video), str(video)]) == 0
    assert main(["score", "--run", str(run), "--out", str(from_file), str(root / "Train015_i3d.npy")]) == 0
    np.testing.assert_allclose(np.load(from_video), np.load(from_file), rtol=1e-5, atol=1e-6)
    capsys.readouterr()
    wu = ["--extractor", "i3d-wu", "--weights", str(weights)]
    assert main(["score", "--run", str(run), *wu, "--out", str(tmp_path / "wu.npy"), str(video)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "makes wu features" in err[0] and not (tmp_path / "wu.npy").exists()


def test_evaluate_a_checkpoint_in_the_public_codes_format(trained, tmp_path, capsys):
    """The same weights under the public RTFM code's names (as its main.py saves them) load through RTFM's
    importer and give the same numbers as vadbench's own file."""
    from vadbench.methods.rtfm.checkpoint import PUBLIC_PREFIXES

    root, store, run = trained
    ours = torch.load(run / "model.pt", weights_only=True)
    public = {}
    for name, tensor in ours.items():
        theirs, prefix = next((theirs, prefix) for theirs, prefix in PUBLIC_PREFIXES if name.startswith(prefix))
        public[theirs + name.removeprefix(prefix)] = tensor
    path = tmp_path / "rtfm-public.pkl"
    torch.save(public, path)
    trained_auc = json.loads((run / "result.json").read_text())["metrics"]["auc"]
    out = tmp_path / "store"
    assert main(["evaluate", "--method", "rtfm", "--checkpoint", str(path), "--dataset", "ucsd-ped2",
                 "--root", str(root), "--out", str(out)]) == 0
    (result,) = [json.loads(p.read_text()) for p in (out / "runs").glob("*/result.json")]
    assert result["config"]["checkpoint_format"] == "public"
    assert result["metrics"]["auc"] == pytest.approx(trained_auc, abs=1e-12)


def test_a_public_checkpoint_that_does_not_fit_is_refused_by_the_files_own_key_names(trained, tmp_path, capsys):
    from vadbench.methods.rtfm.checkpoint import PUBLIC_PREFIXES

    root, _, run = trained
    public = {}
    for name, tensor in torch.load(run / "model.pt", weights_only=True).items():
        theirs, prefix = next((theirs, prefix) for theirs, prefix in PUBLIC_PREFIXES if name.startswith(prefix))
        public[theirs + name.removeprefix(prefix)] = tensor
    public["fc1.weight"] = torch.zeros(7, 3)
    public["extra.weight"] = torch.zeros(1)
    path = tmp_path / "rtfm-public.pkl"
    torch.save(public, path)
    capsys.readouterr()
    assert main(["evaluate", "--method", "rtfm", "--checkpoint", str(path), "--dataset", "ucsd-ped2",
                 "--root", str(root), "--out", str(tmp_path / "store")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "in its public code's format" in line and "1 unexpected keys: extra.weight" in line
    assert "fc1.weight (as classifier.0.weight) (7, 3)" in line
