"""Every registered method through `vadbench run`, the command a user types, on every layout of every real
dataset: the fake roots of the test suite (RTFM's one file per video for ShanghaiTech, UCF-Crime and UCSD;
Wu et al.'s one file per crop for UCF-Crime and XD-Violence) with narrow models and two steps. The normal test
videos of UCF-Crime and XD-Violence are cut to their first `NORMAL_TEST_SNIPPETS` snippets (their ground
truth is all normal at any length): the methods that attend over whole videos score each one alone, at a cost
that grows with the square of its length, and UCF-Crime's longest normal videos have 6,749 snippets.

What is tested is the user's path: the run is keyed, its data fingerprinted, trained, scored and stored,
and the table printed, or the method is refused in one line before anything is stored. Runs that the
runner alone would finish have failed here before (a fingerprint planned on one training reduction and
checked on another), so nothing here calls the runner directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fakeroots import sh_root, ucf_root, ucsd_root, xd_root

from vadbench.cli import main
from vadbench.plugins.manager import get_plugins

#: Narrow models (the same code paths at a fraction of the width) and small batches: a run and the scoring of
#: every test video alone take seconds. Options of a base method apply to its presets too.
NARROW = {
    "ur-dmu": {"batch_size": 2, "width": 32, "head_dim": 16, "mlp_dim": 32, "head_hidden": 16},
    "mgfn": {"batch_size": 2, "dim1": 16, "dim2": 32, "dim3": 64, "head_dim": 16},
    "pel4vad": {"batch_size": 4},
    "bn-wvad": {"batch_size": 2, "width": 32, "head_dim": 16, "mlp_dim": 32},
    "rtfm": {"batch_size": 2},
    "sultani-mil": {"batch_size": 2},
}
NORMAL_TEST_SNIPPETS = 48


def ucf_normal(name: str) -> bool:
    return name.startswith("Normal")


def xd_normal(name: str) -> bool:
    return "_label_A" in name


def short_normal_tests(root: Path, folder: str, normal: Callable[[str], bool]) -> Path:
    """`root` with every normal test video's feature files (in `folder`) cut to `NORMAL_TEST_SNIPPETS` snippets."""
    for path in (root / folder).glob("*.npy"):
        if normal(path.name):
            np.save(path, np.load(path)[:NORMAL_TEST_SNIPPETS])
    return root


#: (dataset, root maker, its crops, its file layout)
LAYOUTS: dict[str, tuple[str, Callable[[Path], Path], int, str]] = {
    "shanghaitech": ("shanghaitech", sh_root, 10, "rtfm"),
    "ucf-crime": ("ucf-crime", lambda root: short_normal_tests(ucf_root(root), "test", ucf_normal), 10, "rtfm"),
    "ucf-crime-wu": ("ucf-crime", lambda root: short_normal_tests(ucf_root(root, per_crop=True), "test", ucf_normal),
                     10, "wu"),
    "xd-violence": ("xd-violence", lambda root: short_normal_tests(xd_root(root), "RGBTest", xd_normal), 5, "wu"),
    "ucsd-ped2": ("ucsd-ped2", ucsd_root, 10, "rtfm"),
}
#: Methods refused on a dataset, and the reason their one-line error gives.
REFUSED = {("pel4vad", "ucsd-ped2"): "needs the class of each training video"}


def registered() -> dict[str, str]:
    """Every registered method -> the base method it is a preset of (itself when it is none)."""
    entries = get_plugins().methods
    return {entry.name: next(base for base in NARROW if entries.get(base).cls is entry.cls) for entry in entries}


METHODS = registered()
#: The layouts of the published lists' sizes (UCF-Crime's 290 and XD-Violence's 800 test videos, each scored
#: alone by the methods that attend over whole videos): 2 to 15 s a method, about two minutes together on a
#: busy 2-core machine, so they are ``slow`` (the full suite runs them, ``-m "not slow"`` leaves them out).
LONG_LAYOUTS = {"ucf-crime", "ucf-crime-wu", "xd-violence"}
#: Base methods on every layout; presets (the same code with other options) on one layout each.
CASES = [pytest.param(method, layout, marks=pytest.mark.slow if layout in LONG_LAYOUTS else ())
         for method, base in METHODS.items() for layout in LAYOUTS if method == base or layout == "shanghaitech"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """One root per layout, made when first asked for and shared by every method (each is read once, then
    from its preparation cache)."""
    made: dict[str, str] = {}

    def root(layout: str) -> str:
        if layout not in made:
            made[layout] = str(LAYOUTS[layout][1](tmp_path_factory.mktemp(layout)))
        return made[layout]

    return root


@pytest.mark.parametrize(("method", "layout"), CASES)
def test_every_method_runs_from_the_command_line_on_every_layout(method, layout, roots, tmp_path, capsys):
    dataset, _, crops, files = LAYOUTS[layout]
    narrow = [arg for key, value in NARROW[METHODS[method]].items() for arg in ("--set", f"{method}.{key}={value}")]
    code = main(["run", "--method", method, "--dataset", dataset, "--root", roots(layout), "--seeds", "0",
                 "--steps", "2", "--device", "cpu", "--out", str(tmp_path), "--quiet", *narrow])
    out, err = capsys.readouterr()
    stored = [json.loads(path.read_text()) for path in tmp_path.rglob("result.json")]
    refusal = REFUSED.get((METHODS[method], dataset))
    if refusal is not None:
        assert code == 2 and len(err.strip().splitlines()) == 1 and refusal in err, err
        assert not stored  # refused before anything was stored
        return
    assert code == 0, err
    (result,) = stored
    assert result["status"] == "ok" and result["spec"]["data"]  # keyed on the content of its data
    assert result["config"]["benchmark.crops"] == crops and result["config"]["benchmark.layout"].startswith(files)
    assert 0 <= result["metrics"]["auc"] <= 1
    assert f"| {method} " in out and dataset in out  # the table the user reads
