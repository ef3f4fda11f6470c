"""The preparation cache keeps one copy of the test set per dataset configuration, shared by every training
reduction, and `vadbench data cache` shows what it holds and removes what no configuration uses any more.

A test entry and a training entry are each keyed on the files they are read from, so an edited test file
makes a new test entry (the training entries still serve) and an edited training file a new training entry;
the fingerprint that keys the runs changes with either.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from tinyroot import TEST, TRAIN, feature_file, tiny_ucf_root

from vadbench.api.reduction import Reduction
from vadbench.api.types import TestSet
from vadbench.cli import main
from vadbench.data import cached_assembly
from vadbench.datasets.ucf_crime.adapter import UCFCrime, UCFCrimeConfig

CACHE = ".vadbench-cache"


def dataset(root: Path, **options: object) -> UCFCrime:
    return UCFCrime(UCFCrimeConfig(root=str(root), **options))


def entries(root: Path) -> list[str]:
    """The published entries under the root's cache, by part: "test", "train-mean-32", ..."""
    return sorted(path.name.removeprefix("ucf-crime-").rsplit("-", 1)[0] for path in (root / CACHE).iterdir()
                  if not path.name.startswith("."))


def edit(path: Path) -> None:
    """Change the features of `path` (a new size-preserving content and a new mtime)."""
    np.save(path, np.load(path) + 1)


def garble_keeping_stat(path: Path) -> None:
    """Overwrite `path` with zeros of its size and give it back its mtime: the cache's key does not see the
    change, but any read of the file fails (even as root, whom permissions do not stop)."""
    stat = path.stat()
    path.write_bytes(bytes(stat.st_size))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tiny_ucf_root(tmp_path / "root")


def test_one_test_copy_serves_two_reductions_and_the_second_reads_no_test_file(root):
    first = dataset(root).load()
    for video in TEST:
        garble_keeping_stat(feature_file(root, video))
    second = dataset(root).load(Reduction("subsample", 200))  # would fail on any read of a test file
    assert entries(root) == ["test", "train-mean-32", "train-subsample-200"]
    assert second.meta["cache"] == str(root / CACHE)
    np.testing.assert_array_equal(second.test.features, first.test.features)
    assert isinstance(second.test.features, np.memmap) and not second.test.features.flags.writeable
    assert isinstance(second.train.features, np.memmap) and not second.train.features.flags.writeable
    assert second.train.features.shape[2] == 200 and first.train.features.shape[2] == 32


def test_without_its_test_entry_a_reduction_reads_the_test_files(root):
    """The control of the test above: the garbled test files are read, and refused, when nothing is cached."""
    for video in TEST:
        garble_keeping_stat(feature_file(root, video))
    with pytest.raises(Exception, match="not a .npy array file"):
        dataset(root).load(Reduction("subsample", 200))


def test_the_fingerprint_combines_the_parts_digests_as_a_load_without_the_cache_computes_it(root):
    for reduction in (Reduction(), Reduction("subsample", 200)):
        cached = dataset(root).fingerprint(reduction)
        assert cached == dataset(root, cache=False).fingerprint(reduction)
    assert dataset(root).fingerprint() != dataset(root).fingerprint(Reduction("subsample", 200))


def test_an_edited_test_file_gives_a_new_test_entry_and_a_new_fingerprint(root, monkeypatch):
    before = dataset(root).fingerprint()
    edit(feature_file(root, next(iter(TEST))))
    trained = []
    monkeypatch.setattr(cached_assembly, "build_train_part", lambda *args: trained.append(args) or None)  # not built
    after = dataset(root).fingerprint()
    assert after != before and trained == []  # the training entry still serves
    assert entries(root) == ["test", "test", "train-mean-32"]


def test_an_edited_training_file_gives_a_new_training_entry_and_a_new_fingerprint(root, monkeypatch):
    before = dataset(root).fingerprint()
    edit(feature_file(root, TRAIN[0]))
    hashed = []
    monkeypatch.setattr(TestSet, "digest", lambda self: hashed.append(self) or "")  # must not be hashed again
    after = dataset(root).fingerprint()
    assert after != before and hashed == []
    assert entries(root) == ["test", "train-mean-32", "train-mean-32"]


def test_a_damaged_entry_is_rebuilt(root):
    expected = dataset(root).load().test.features.copy()
    (test_entry,) = (root / CACHE).glob("*-test-*")
    (test_entry / "meta.json").unlink()  # an entry without it is never published: damaged by hand
    rebuilt = dataset(root).load().test.features
    assert isinstance(rebuilt, np.memmap) and (test_entry / "meta.json").exists()  # in the cache again
    np.testing.assert_array_equal(rebuilt, expected)
    (train_entry,) = (root / CACHE).glob("*-train-*")
    (train_entry / "train_features.npy").write_bytes(b"cut")
    assert dataset(root).load().train.features.shape[2] == 32
    assert entries(root) == ["test", "train-mean-32"]


def test_a_cache_that_cannot_be_written_warns_and_prepares_in_memory(root, tmp_path):
    (tmp_path / "a-file").write_text("not a folder\n")
    with pytest.warns(UserWarning, match="cannot write the preparation cache"):
        benchmark = dataset(root, cache_dir=str(tmp_path / "a-file" / "cache")).load()
    expected = dataset(root, cache=False).load()
    np.testing.assert_array_equal(benchmark.test.features, expected.test.features)
    np.testing.assert_array_equal(benchmark.train.features, expected.train.features)


# -- `vadbench data cache` and the line of `vadbench data check` -------------------------------------------


def vadbench(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's refusals
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def listed(out: str) -> list[tuple[str, str]]:
    """(part, state) of each entry line of `vadbench data cache`."""
    rows = [line.split() for line in out.splitlines() if line.startswith("  ")][1:]
    return sorted((row[0], row[3]) for row in rows)


def test_the_cache_command_lists_the_entries_and_removes_the_stale_ones(root, capsys):
    dataset(root).load()
    edit(feature_file(root, TRAIN[0]))
    dataset(root).load()
    old = root / CACHE / "ucf-crime-0123456789abcdef0123"  # an entry of vadbench's earlier layout
    old.mkdir()
    (old / "meta.json").write_text(json.dumps({"name": "ucf-crime", "fingerprint": "f"}))
    (root / CACHE / ".ucf-crime-test-0123456789abcdef0123-x1y2").mkdir()  # a killed preparation
    code, out, err = vadbench(capsys, "data", "cache", "ucf-crime", "--root", str(root))
    assert code == 0 and err == ""
    assert listed(out) == [("test", "current"), ("test", "unfinished"), ("test+train", "old"),
                           ("train-mean-32", "current"), ("train-mean-32", "stale")]
    assert out.splitlines()[-1].startswith("total: ") and "in 5 entries (" in out and " in 3 entries stale)" in out

    code, out, err = vadbench(capsys, "data", "check", "ucf-crime", "--root", str(root))
    (line,) = [line for line in out.splitlines() if line.startswith("preparation cache: ")]
    assert code == 0 and "in 5 entries" in line and "--remove-stale` removes the stale ones" in line

    code, out, err = vadbench(capsys, "data", "cache", "ucf-crime", "--root", str(root), "--remove-stale")
    assert code == 0 and " in 3 entries; left " in out.splitlines()[-1]
    assert entries(root) == ["test", "train-mean-32"] and not old.exists()
    assert not any(path.name.startswith(".") for path in (root / CACHE).iterdir())
    dataset(root).load()  # the entries kept are the current ones: nothing is prepared again
    assert entries(root) == ["test", "train-mean-32"]

    code, out, err = vadbench(capsys, "data", "cache", "ucf-crime", "--root", str(root), "--remove-all")
    assert code == 0 and entries(root) == []
    code, out, err = vadbench(capsys, "data", "cache", "ucf-crime", "--root", str(root))
    assert code == 0 and out.splitlines()[-1] == "total: nothing"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (("synthetic",), "dataset 'synthetic' has no preparation cache"),
        (("ucf-crime",), "dataset 'ucf-crime' needs --root DIR"),
        (("ucf-crime", "--root", "{root}", "--remove-stale", "--remove-all"), "not allowed with argument"),
        (("ucf-crime", "--root", "{root}", "--set", "cache_dir={root}/ucf-i3d.list"), "ucf-i3d.list is not a folder"),
        (("ucf-crime", "--root", "{root}/nowhere"), "nowhere is not a directory"),
        (("ucf-crime", "--root", "{root}", "--set", "rtfm.k=3"), "'rtfm' is not the dataset"),
    ],
    ids=["no-cache", "no-root", "both-removals", "cache-dir-a-file", "root-missing", "method-option"],
)
def test_the_cache_command_refuses_bad_input_in_one_line(root, capsys, argv, needle):
    code, out, err = vadbench(capsys, "data", "cache", *(arg.format(root=root) for arg in argv))
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert needle in line


def test_two_methods_with_different_reductions_through_run_leave_one_test_entry(root, tmp_path, capsys):
    narrow = ["--set", "ur-dmu.width=32", "--set", "ur-dmu.head_dim=16", "--set", "ur-dmu.mlp_dim=32",
              "--set", "ur-dmu.head_hidden=16", "--set", "batch_size=2"]
    code, out, err = vadbench(capsys, "run", "--dataset", "ucf-crime", "--root", str(root), "--method", "rtfm",
                              "--method", "ur-dmu", "--steps", "2", "--device", "cpu", "--quiet",
                              "--out", str(tmp_path / "out"), *narrow)
    assert code == 0, err
    assert entries(root) == ["test", "train-mean-200", "train-mean-32"]
