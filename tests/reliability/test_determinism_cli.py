"""The same command with the same seed on the CPU stores bit-identical scores and metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from clirun import TINY

from vadbench.cli import main
from vadbench.report.store import CURVES_FILE, MAGNITUDES_FILE, SCORES_FILE

#: Differ between two identical runs by nature; everything else in result.json must match.
VOLATILE = ("timings",)


def stored_run(out):
    (folder,) = out.glob("runs/*")
    record = json.loads((folder / "result.json").read_text())
    record["curves"] = json.loads((folder / CURVES_FILE).read_text())  # the logged losses repeat too
    arrays = {}
    for name in (SCORES_FILE, MAGNITUDES_FILE):
        if not (folder / name).is_file():  # a method without feature magnitudes
            continue
        with np.load(folder / name, allow_pickle=False) as data:
            arrays.update({f"{name}:{key}": data[key] for key in data.files})
    return folder.name, {k: v for k, v in record.items() if k not in VOLATILE}, arrays


@pytest.mark.parametrize("method", ["rtfm", "sultani-mil"])
def test_same_command_same_seed_gives_identical_stored_scores(method, tmp_path, capsys):
    runs = []
    for out in (tmp_path / "first", tmp_path / "second"):
        code = main(["run", "--method", method, "--seeds", "7", "--steps", "5", "--device", "cpu", "--quiet",
                     "--out", str(out), *TINY])
        assert code == 0, capsys.readouterr().err
        runs.append(stored_run(out))
    (key, record, arrays), (key_again, record_again, arrays_again) = runs
    assert key == key_again and record == record_again
    assert arrays.keys() == arrays_again.keys()
    for name, array in arrays.items():
        np.testing.assert_array_equal(array, arrays_again[name], err_msg=name)
