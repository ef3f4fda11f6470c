"""The run store: one folder per run key under ``<out>/runs/``, written atomically, read back for tables.

Each run folder holds ``scores.npz`` (per-video snippet scores), ``magnitudes.npz`` (per-video feature
magnitudes, for methods that have them), ``curves.json`` (training curves, `RunStore.curves`) and
``result.json``; the JSON is
written last, by rename, so a folder without it is an unfinished run and is simply redone. Two
processes finishing the same run write identical files, and rename keeps either one whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vadbench.errors import UsageError
from vadbench.types import RunResult, RunSpec

RESULT_FILE = "result.json"
SCORES_FILE = "scores.npz"
MAGNITUDES_FILE = "magnitudes.npz"
CURVES_FILE = "curves.json"


class RunStore:
    """Results of finished runs, keyed by `RunSpec.key`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"

    def ensure_writable(self) -> None:
        """Create the store, or say which folder cannot be written."""
        try:
            self.runs.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.runs, prefix=".probe-"):
                pass
        except OSError as error:
            raise UsageError(f"--out {self.root}: cannot write results there ({error.strerror})") from None

    def folder(self, spec: RunSpec) -> Path:
        return self.runs / spec.key

    def is_finished(self, spec: RunSpec) -> bool:
        """True when a successful result of `spec` is stored (failed runs are tried again)."""
        path = self.folder(spec) / RESULT_FILE
        if not path.is_file():
            return False
        try:
            return json.loads(path.read_text()).get("status") == "ok"
        except (OSError, ValueError):
            return False

    def write(self, result: RunResult) -> Path:
        """Store `result`: per-video arrays first, then the JSON record that marks the run as finished.

        A write that fails (a full disk, a folder made read-only mid-grid) is a usage error naming the
        folder; the run stays unfinished and is redone next time.
        """
        folder = self.folder(result.spec)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, key, per_video in (
                (SCORES_FILE, "scores", result.scores),
                (MAGNITUDES_FILE, "magnitudes", result.magnitudes),
            ):
                if per_video:
                    _write_per_video(folder / name, key, per_video)
            if result.curves:
                curves = json.dumps(result.curves).encode()
                _atomic_write(folder / CURVES_FILE, lambda f: f.write(curves))
            record = json.dumps(result.to_dict(), indent=2, sort_keys=True, default=_json_default)
            _atomic_write(folder / RESULT_FILE, lambda f: f.write(record.encode()))
        except OSError as error:
            raise UsageError(f"--out {self.root}: cannot store run {result.spec.key} in {folder} "
                             f"({error.strerror or error})") from None
        return folder

    def result(self, spec: RunSpec) -> RunResult:
        """The stored result of `spec`."""
        return _read_result(self.folder(spec) / RESULT_FILE)

    def results(self) -> Iterator[RunResult]:
        """Every stored result (finished or failed), in key order."""
        for path in sorted(self.runs.glob(f"*/{RESULT_FILE}")):
            yield _read_result(path)

    def scores(self, spec: RunSpec) -> dict[str, np.ndarray]:
        """Per-video snippet scores of a stored run."""
        return _read_per_video(self.folder(spec) / SCORES_FILE, "scores")

    def magnitudes(self, spec: RunSpec) -> dict[str, np.ndarray]:
        """Per-video snippet feature magnitudes of a stored run (empty when its method has none)."""
        path = self.folder(spec) / MAGNITUDES_FILE
        return _read_per_video(path, "magnitudes") if path.is_file() else {}

    def curves(self, spec: RunSpec) -> dict[str, Any]:
        """The training curves of a stored run; empty for runs stored before vadbench kept them.

        ``steps`` and ``terms`` (name -> values): the loss terms as training logged them (every 50
        steps and the last); for a selecting protocol, ``selection``: its ``metric`` (a name), the
        ``steps`` it checked and the ``values`` there (None where not finite), and ``selected_step``.
        """
        path = self.folder(spec) / CURVES_FILE
        if not path.is_file():
            return {}
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError) as error:
            raise UsageError(f"{path}: not a vadbench curves file ({error})") from None


def load_results(root: str | Path) -> list[RunResult]:
    """Results stored under `root`; a folder without any is a usage error."""
    store = RunStore(root)
    if not store.runs.is_dir():
        raise UsageError(f"{root}: no vadbench results here (expected a runs/ folder written by `vadbench run`)")
    return list(store.results())


def _write_per_video(path: Path, key: str, per_video: dict[str, np.ndarray]) -> None:
    """One array per video, stored concatenated (under `key`) with offsets, atomically."""
    ids = list(per_video)
    arrays = [np.asarray(per_video[i], dtype=np.float32) for i in ids]
    columns: dict[str, Any] = {
        "video_ids": np.array(ids, dtype=str),
        "offsets": np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64),
        key: np.concatenate(arrays),
    }
    _atomic_write(path, lambda f: np.savez_compressed(f, **columns))


def _read_per_video(path: Path, key: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        ids, offsets, values = data["video_ids"], data["offsets"], data[key]
    return {str(v): values[offsets[i] : offsets[i + 1]] for i, v in enumerate(ids)}


def _read_result(path: Path) -> RunResult:
    try:
        return RunResult.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{path}: not a vadbench result ({error})") from None


def _atomic_write(path: Path, write: Any) -> None:
    """Write via a temporary file in the same folder and rename it into place."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)
