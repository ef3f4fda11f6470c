"""A run of a file-backed dataset is keyed on what it reads, not on where the files lie.

The same root given as an absolute path, a relative path, with a trailing slash, copied elsewhere, or
read without the preparation cache is one set of runs; an edited feature file is other data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tinyroot import TRAIN, feature_file, tiny_ucf_root

from vadbench.api.errors import UsageError
from vadbench.api.types import RunSpec, TestSet, TrainSet
from vadbench.cli import main
from vadbench.datasets.synthetic import Synthetic
from vadbench.datasets.ucf_crime.adapter import UCFCrime, UCFCrimeConfig
from vadbench.engine.runner import Runner
from vadbench.plan.specs import with_data
from vadbench.plugins.manager import get_plugins, load_plugins

RUN = ("run", "--dataset", "ucf-crime", "--method", "rtfm", "--steps", "2", "--device", "cpu", "--quiet")


def vadbench(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """`vadbench ARGV` in this process; its stdout (the command must succeed)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def column(table: str, title: str) -> list[str]:
    """The cells of column `title` in a markdown table."""
    rows = [line for line in table.splitlines() if line.startswith("|")]
    lines = [[cell.strip() for cell in line.strip("|").split("|")] for line in rows]
    at = lines[0].index(title)
    return [line[at] for line in lines[2:]]


def stored(out: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(out.glob("runs/*/result.json"))]


def test_a_root_spelled_or_copied_otherwise_is_the_same_runs(tmp_path, monkeypatch, capsys):
    root = tiny_ucf_root(tmp_path / "root")
    out = tmp_path / "out"
    vadbench(capsys, *RUN, "--seeds", "0,1", "--root", str(root), "--out", str(out))
    copy = shutil.copytree(root, tmp_path / "copy")  # preparation cache included, as a folder is copied
    monkeypatch.chdir(tmp_path)
    for spelling in (["root"], [f"{root}/"], [str(copy)], ["root", "--no-cache"]):
        vadbench(capsys, *RUN, "--seeds", "0,1", "--root", *spelling, "--out", str(out))
    results = stored(out)
    assert len(results) == 2
    assert {r["spec"]["dataset_access"]["root"] for r in results} == {str(root)}  # kept for provenance
    assert column(vadbench(capsys, "leaderboard", str(out)), "runs") == ["2"]


def test_a_grid_on_a_copied_root_finds_the_runs_made_on_the_original(tmp_path, monkeypatch, capsys):
    root = tiny_ucf_root(tmp_path / "root")
    out = tmp_path / "out"
    vadbench(capsys, *RUN, "--seeds", "0", "--root", str(root), "--out", str(out))
    shutil.copytree(root, tmp_path / "copy", ignore=shutil.ignore_patterns(".vadbench-cache"))
    grid = tmp_path / "grid.toml"
    grid.write_text('title = "t"\nmethods = ["rtfm"]\ndatasets = ["ucf-crime"]\nseeds = [0]\nsteps = 2\n')
    monkeypatch.chdir(tmp_path)
    listed = vadbench(capsys, "grid", str(grid), "--root", "copy", "--out", str(out), "--dry-run")
    assert "finished" in listed and "to run" not in listed
    vadbench(capsys, "grid", str(grid), "--root", "copy", "--out", str(out), "--quiet", "--device", "cpu")
    assert len(stored(out)) == 1


def test_an_edited_feature_file_is_other_data(tmp_path, capsys):
    root = tiny_ucf_root(tmp_path / "root")
    out = tmp_path / "out"
    vadbench(capsys, *RUN, "--seeds", "0", "--root", str(root), "--out", str(out))
    path = feature_file(root, TRAIN[0])
    np.save(path, np.load(path) + 1)
    vadbench(capsys, *RUN, "--seeds", "0", "--root", str(root), "--out", str(out))
    first, second = stored(out)
    assert first["spec"]["data"] != second["spec"]["data"]
    table = vadbench(capsys, "leaderboard", str(out))
    assert column(table, "runs") == ["1", "1"]
    assert sorted(column(table, "data")) == sorted(r["spec"]["data"] for r in (first, second))


def test_the_fingerprint_is_hashed_once_per_cache_entry_whatever_the_spelling(tmp_path, monkeypatch):
    root = tiny_ucf_root(tmp_path / "root")
    hashed = []
    for part in (TrainSet, TestSet):
        monkeypatch.setattr(part, "digest", lambda self, original=part.digest: hashed.append(self) or original(self))
    monkeypatch.chdir(tmp_path)
    fingerprints = {UCFCrime(UCFCrimeConfig(root=spelling)).fingerprint() for spelling in (str(root), "root", "root/")}
    assert len(hashed) == 2 and len(list((root / ".vadbench-cache").iterdir())) == 2  # a test and a training entry
    fingerprints.add(UCFCrime(UCFCrimeConfig(root="root", cache=False)).fingerprint())
    assert len(hashed) == 4 and len(fingerprints) == 1  # without the cache: hashed again, same content


def test_a_run_keyed_on_other_data_is_refused_before_training(tmp_path):
    root = tiny_ucf_root(tmp_path / "root")
    (keyed,) = with_data([RunSpec("rtfm", "ucf-crime", dataset_options={"root": str(root)}, steps=1)], get_plugins())
    assert keyed.data is not None and keyed.dataset_options == {} and keyed.dataset_access == {"root": str(root)}
    wrong = RunSpec("rtfm", "ucf-crime", dataset_access={"root": str(root)}, data="0" * 16, steps=1, device="cpu")
    with pytest.raises(UsageError, match=f"keyed on {wrong.data}"):
        Runner(progress=False).run(wrong)


def test_synthetic_runs_keep_their_keys():
    spec = RunSpec("rtfm")
    (keyed,) = with_data([spec], get_plugins())
    assert keyed.data is None and keyed.key == spec.key == "be7de24f5a867aaf"  # the key before fingerprints


class _Careless(Synthetic):
    """A dataset that keeps an option out of the key but gives no fingerprint of its data."""

    access_options = frozenset({"seed"})


def test_access_options_without_a_fingerprint_are_refused_naming_the_plugin():
    plugins = load_plugins()
    plugins.datasets.add("careless", _Careless, source="careless_plugin")
    with pytest.raises(UsageError, match="careless.*careless_plugin.*keeps the options seed out.*no fingerprint"):
        with_data([RunSpec("rtfm", "careless", dataset_options={"seed": 3})], plugins)
    # Unset, the option keeps nothing out of the key (the synthetic set's prompt file when none is given).
    assert with_data([RunSpec("rtfm", "careless")], plugins)[0].data is None


def test_an_edited_class_list_is_other_data(tmp_path):
    """The training videos' classes (and class sets) are read by methods like PEL4VAD: part of the data."""
    from fakeroots import sh_root

    from vadbench.api.reduction import Reduction

    root = sh_root(tmp_path)
    plugins = get_plugins()

    def fingerprint() -> str:
        return plugins.datasets.create("shanghaitech", {"root": str(root), "cache": False}).fingerprint(
            Reduction("subsample", 200))

    before = fingerprint()
    relabel = root / "relabel.list"
    relabel.write_text(relabel.read_text().replace("01_0026 fighting,chasing", "01_0026 fighting"))
    assert fingerprint() != before
