"""Side inputs (`Declarations.side_inputs`): classes are required where declared, prompts come from the dataset's
file or a marked stand-in, and the prompt file is part of the data a run is keyed on."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_SYNTHETIC

from vadbench.api.errors import UsageError
from vadbench.api.method import TrainingInput
from vadbench.api.types import TrainSet
from vadbench.cli import main
from vadbench.data.prompts import STAND_IN_DIM, load_prompts, stand_in_prompts
from vadbench.engine.side_inputs import with_side_inputs
from vadbench.engine.training import Sampler
from vadbench.plugins.manager import get_plugins

TINY = [arg for key, value in TINY_SYNTHETIC.items() for arg in ("--set", f"dataset.{key}={value}")]
CLASSES = ("Normal", "anomaly-0", "anomaly-1", "anomaly-2")


def run(tmp_path: Path, capsys, *extra: str) -> dict:
    code = main(["run", "--method", "global-context", "--seeds", "0", "--steps", "3", "--device", "cpu",
                 "--out", str(tmp_path), "--quiet", *TINY, *extra])
    assert code == 0, capsys.readouterr().err
    (stored,) = tmp_path.rglob("result.json")
    return json.loads(stored.read_text())


def test_the_stand_in_is_one_fixed_unit_vector_per_class_name():
    prompts = stand_in_prompts(CLASSES)
    assert prompts.shape == (4, STAND_IN_DIM) and prompts.dtype == np.float32
    assert np.allclose(np.linalg.norm(prompts, axis=1), 1)
    assert np.array_equal(stand_in_prompts(CLASSES[2:]), prompts[2:])  # by name, not by position
    assert np.abs(prompts @ prompts.T - np.eye(4)).max() < 0.2  # distinct directions


def test_without_a_prompt_file_a_method_reading_prompts_gets_the_marked_stand_in(contract_plugin, tmp_path, capsys):
    result = run(tmp_path, capsys)
    assert result["config"]["benchmark.prompts"] == "stand-in"
    code = main(["leaderboard", str(tmp_path)])
    assert code == 0 and "Stand-in prompt vectors (no prompts file" in capsys.readouterr().out  # the table says so
    assert result["config"]["method.side_inputs"] == "classes,prompts"
    seen = contract_plugin.SEEN["prompts"][0].numpy()
    assert np.array_equal(seen, stand_in_prompts(CLASSES))


def test_a_prompt_file_reaches_the_batches_and_is_part_of_the_run_key(contract_plugin, tmp_path, capsys):
    vectors = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    np.save(tmp_path / "prompts.npy", vectors)
    with_file = run(tmp_path / "a", capsys, "--set", f"dataset.prompts={tmp_path / 'prompts.npy'}")
    assert with_file["config"]["benchmark.prompts"] == "prompts.npy"
    assert np.array_equal(contract_plugin.SEEN["prompts"][-1].numpy(), vectors)
    stand_in = run(tmp_path / "b", capsys)
    keys = {path.parent.name for path in tmp_path.rglob("result.json")}
    assert len(keys) == 2, keys  # the file's vectors are another run than the stand-in's
    assert stand_in["config"]["benchmark.prompts"] == "stand-in"


def test_a_prompt_file_is_keyed_by_its_content_not_its_path(contract_plugin, tmp_path, capsys, monkeypatch):
    """The same vectors by a relative path, an absolute path and in a copy are one run; other vectors another."""
    vectors = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    np.save(tmp_path / "prompts.npy", vectors)
    np.save(tmp_path / "copy.npy", vectors)
    np.save(tmp_path / "other.npy", vectors + 1)
    monkeypatch.chdir(tmp_path)
    for given in ("prompts.npy", str(tmp_path / "prompts.npy"), "copy.npy", "other.npy"):
        code = main(["run", "--method", "global-context", "--seeds", "0", "--steps", "3", "--device", "cpu",
                     "--out", "store", "--quiet", *TINY, "--set", f"dataset.prompts={given}"])
        assert code == 0, capsys.readouterr().err
    assert len(list((tmp_path / "store").rglob("result.json"))) == 2
    assert len(contract_plugin.SEEN["prompts"]) == 2 * 3  # two runs of 3 steps trained: the copies found the first


def test_a_prompt_file_of_the_wrong_width_is_refused_before_training(tmp_path, capsys):
    """PEL4VAD matches its video features (512-d, the published prompt_dim) with the prompt vectors: a 4 x 256
    file is a usage error naming the file and the expected shape, before any training (nothing stored). On
    narrow features the default prompt_dim follows them (D / 2: 8 at 16-d)."""
    np.save(tmp_path / "narrow.npy", np.ones((4, 256), np.float32))
    for width, options in ((512, ["--set", "pel4vad.prompt_dim=512"]), (8, [])):
        code = main(["run", "--method", "pel4vad", "--seeds", "0", "--steps", "2", "--device", "cpu", "--quiet",
                     "--out", str(tmp_path / "store"), *TINY, *options,
                     "--set", f"dataset.prompts={tmp_path / 'narrow.npy'}"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert f"narrow.npy holds vectors of width 256, but method 'pel4vad' needs width {width}" in err[0]
        assert f"expected a .npy of shape (4, {width})" in err[0]
    assert not list((tmp_path / "store").rglob("result.json"))


@pytest.mark.parametrize("shape", [(3, 8), (4,), (4, 2, 2)])
def test_a_prompt_file_of_the_wrong_shape_names_the_file_and_the_classes(tmp_path, shape):
    np.save(tmp_path / "p.npy", np.zeros(shape, np.float32))
    with pytest.raises(UsageError, match=r"p\.npy: expected prompt vectors of shape \(4, P\), one row per class"):
        load_prompts(str(tmp_path / "p.npy"), CLASSES)


def test_a_method_reading_classes_is_refused_on_a_dataset_without_them(contract_plugin):
    plugins = get_plugins()
    benchmark = plugins.datasets.create("synthetic", TINY_SYNTHETIC).load()
    without = dataclasses.replace(benchmark, train=dataclasses.replace(benchmark.train, classes=None))
    method = plugins.methods.create("global-context")
    with pytest.raises(UsageError, match="needs the class of each training video, and dataset 'synthetic' has no"):
        with_side_inputs("global-context", method, without)
    assert with_side_inputs("rtfm", plugins.methods.create("rtfm"), without) is without  # declares none


@pytest.mark.parametrize("class_sets", [None, [[0, -1], [2, 5], [1, -1], [0, -1], [3, 1]]])
def test_the_sampler_gives_each_sample_its_videos_classes(class_sets):
    """Every crop of a video is a sample of its own and carries the video's class and class set."""
    features = np.broadcast_to(np.arange(5, dtype=np.float32)[:, None, None, None], (5, 2, 3, 4))  # value = video
    classes = np.array([0, 2, 1, 0, 3])
    sets = None if class_sets is None else np.array(class_sets)
    train = TrainSet(features, np.array([0, 1, 1, 0, 1]), tuple("abcde"), classes=classes, class_sets=sets)
    sampler = Sampler.create(train, torch.from_numpy(features.copy()), TrainingInput(crops="independent",
                                                                                     batch="mixed"), 10, seed=0)
    batch = sampler.empty_batch()
    sampler.draw_into(batch)
    video = batch.features[:, 0, 0].long()
    assert sorted(video.tolist()) == sorted([0, 1, 2, 3, 4] * 2)
    assert torch.equal(batch.classes, torch.from_numpy(classes)[video])
    expected = torch.from_numpy(classes[:, None] if sets is None else sets)[video]
    assert torch.equal(batch.class_sets, expected)


def test_class_sets_start_with_the_videos_class():
    with pytest.raises(ValueError, match="each row starting with the video's class"):
        TrainSet(np.zeros((2, 1, 3, 4), np.float32), np.array([0, 1]), ("a", "b"), classes=np.array([0, 2]),
                 class_sets=np.array([[0, -1], [1, 2]]))


@pytest.fixture(scope="module")
def real_layouts(tmp_path_factory):
    """The training classes of each real adapter, read from fake roots in the published layouts."""
    from fakeroots import sh_root, ucf_root, xd_root

    plugins = get_plugins()
    roots = {
        "ucf-crime": ucf_root(tmp_path_factory.mktemp("ucf"), per_crop=True),
        "shanghaitech": sh_root(tmp_path_factory.mktemp("sh")),
        "xd-violence": xd_root(tmp_path_factory.mktemp("xd")),
    }
    return {name: plugins.datasets.create(name, {"root": str(root), "cache": False}).load()
            for name, root in roots.items()}


def expected_class(dataset: str, video_id: str, label: int) -> str:
    """The class each public code gives a training video (PEL4VAD's loaders), written out independently."""
    if not label:
        return "Normal"
    if dataset == "ucf-crime":
        return video_id.rstrip("_x264").rstrip("0123456789")
    if dataset == "xd-violence":
        code = video_id.split("_label_")[1].split("-")[0]
        return {"B1": "Fighting", "B2": "Shooting", "B4": "Riot", "B5": "Abuse", "B6": "Car accident",
                "G": "Explosion"}[code]
    relabel = (Path(__file__).parents[2] / "datasets/shanghaitech/official/relabel.list").read_text()
    return dict(line.split() for line in relabel.splitlines() if line.strip())[video_id].split(",")[0]


@pytest.mark.parametrize("dataset", ["ucf-crime", "shanghaitech", "xd-violence"])
def test_real_adapters_give_every_training_video_its_class(real_layouts, dataset):
    benchmark = real_layouts[dataset]
    train = benchmark.train
    assert train.classes is not None and benchmark.class_names[0] == "Normal"
    found = [benchmark.class_names[c] for c in train.classes]
    assert found == [expected_class(dataset, v, y) for v, y in zip(train.video_ids, train.labels, strict=True)]
    assert len(set(found)) >= (2 if dataset == "ucf-crime" else 3)  # the UCF root keeps 20 Abuse videos
    assert (train.class_sets is None) == (dataset != "shanghaitech")  # only ShanghaiTech lists two actions
    # The feature set is named by its layout unless the user names it (UCF here in Wu's per-crop files).
    assert benchmark.meta["feature_set"] == ("rtfm" if dataset == "shanghaitech" else "wu")
