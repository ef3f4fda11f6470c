"""Files vadbench writes get the permissions the umask asks for, so that a group can share a run store
and a data root's preparation cache (atomic writes go through private temporary files first)."""

from __future__ import annotations

import os
import stat

from tinyroot import tiny_ucf_root

from vadbench.cli import main


def test_umask_002_gives_group_writable_store_and_cache(tmp_path, capsys):
    root = tiny_ucf_root(tmp_path / "root")
    out = tmp_path / "out"
    previous = os.umask(0o002)
    try:
        code = main(["run", "--dataset", "ucf-crime", "--root", str(root), "--method", "rtfm", "--seeds", "0",
                     "--steps", "2", "--device", "cpu", "--quiet", "--out", str(out)])
    finally:
        os.umask(previous)
    assert code == 0, capsys.readouterr().err
    written = [out, *out.rglob("*"), root / ".vadbench-cache", *(root / ".vadbench-cache").rglob("*")]
    assert any(path.name == "result.json" for path in written) and any(path.suffix == ".npy" for path in written)
    modes = {str(path.relative_to(tmp_path)): oct(stat.S_IMODE(path.stat().st_mode)) for path in written}
    expected = {name: oct(0o775 if (tmp_path / name).is_dir() else 0o664) for name in modes}
    assert modes == expected
