"""The catalogue of malformed inputs, end to end through the command line.

Each row damages a tiny valid data root (or the command line) in one way. The contract for every row:
exit code 2, exactly one line on stderr that names the file or field and what was expected, no
traceback, and nothing half-written (no ``runs/*/result.json`` under ``--out``, no temporary files
there or in the root's preparation cache). `test_short_videos_are_clamped_not_refused` holds the
inputs that look odd but must run: videos shorter than k.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from tinyroot import ANNOTATION, CROPS, DIM, SNIPPETS, TEST_LIST, TRAIN_LIST, feature_file, tiny_ucf_root

from vadbench.cli import main

#: Rewrites the root (and may use the scratch folder); returns extra command-line arguments, if any.
Damage = Callable[[Path, Path], list[str] | None]

RUN = ("run", "--dataset", "ucf-crime", "--root", "{root}", "--method", "rtfm", "--seeds", "0",
       "--steps", "2", "--device", "cpu", "--quiet", "--out", "{out}")
ABUSE = "Abuse028_x264"  # an abnormal test video, annotated at frames [32, 96)
NORMAL_TEST = "Normal_Videos_003_x264"
TRAINING = "Abuse001_x264"


@dataclass(frozen=True)
class Case:
    id: str
    damage: Damage
    #: substrings of the one error line; ``{root}``, ``{tmp}`` and ``{out}`` are filled in
    expect: tuple[str, ...]
    argv: tuple[str, ...] = field(default=RUN)


def nothing(root: Path, tmp: Path) -> None:
    """No damage: the case is in the arguments."""


def args(*extra: str) -> Damage:
    return lambda root, tmp: [a.format(root=root, tmp=tmp) for a in extra]


def features(video: str, array: np.ndarray) -> Damage:
    return lambda root, tmp: np.save(feature_file(root, video), array)


def shaped(*shape: int, value: float = 0.5, dtype: type = np.float32) -> np.ndarray:
    return np.full(shape, value, dtype=dtype)


def raw_bytes(video: str, make: Callable[[bytes], bytes]) -> Damage:
    def damage(root: Path, tmp: Path) -> None:
        path = feature_file(root, video)
        path.write_bytes(make(path.read_bytes()))

    return damage


def edit(name: str, old: str, new: str) -> Damage:
    def damage(root: Path, tmp: Path) -> None:
        text = (root / name).read_text()
        assert old in text, f"{old!r} not in {name}"
        (root / name).write_text(text.replace(old, new, 1))

    return damage


def append(name: str, line: str) -> Damage:
    def damage(root: Path, tmp: Path) -> None:
        (root / name).write_text((root / name).read_text() + line + "\n")

    return damage


def replace(name: str, text: str) -> Damage:
    def damage(root: Path, tmp: Path) -> None:
        (root / name).write_text(text)

    return damage


def moved_outside(entry: str) -> Damage:
    """Move ABUSE's file just outside the root and make its list entry point there (`entry`)."""

    def damage(root: Path, tmp: Path) -> None:
        outside = tmp / f"{ABUSE}_i3d.npy"
        feature_file(root, ABUSE).rename(outside)
        edit(TEST_LIST, f"/home/yu/UCF_Test/{ABUSE}_i3d.npy", entry.format(outside=outside))(root, tmp)

    return damage


def dangling_link(root: Path, tmp: Path) -> None:
    path = feature_file(root, ABUSE)
    path.unlink()
    path.symlink_to(tmp / "elsewhere" / path.name)


def prebuilt_gt(labels: np.ndarray) -> Damage:
    def damage(root: Path, tmp: Path) -> list[str]:
        np.save(root / "gt-ucf.npy", labels)
        return ["--set", "dataset.gt=gt-ucf.npy"]

    return damage


def copy_elsewhere(root: Path, tmp: Path) -> None:
    (root / "more").mkdir()
    (root / "more" / f"{ABUSE}_i3d.npy").write_bytes(feature_file(root, ABUSE).read_bytes())


def out_under_a_file(root: Path, tmp: Path) -> list[str]:
    (tmp / "a-file").write_text("not a folder\n")
    return ["--out", str(tmp / "a-file" / "runs")]


def read_only_out(root: Path, tmp: Path) -> list[str]:
    """A folder the user cannot write in; as root (permission bits ignored) sysfs, which refuses files."""
    folder = tmp / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        folder = Path("/sys")
        if not folder.is_dir():
            pytest.skip("running as root without /sys: no read-only folder to write in")
    return ["--out", str(folder / "vadbench-out")]


def corrupt_result(root: Path, tmp: Path) -> list[str]:
    (tmp / "store" / "runs" / "0123456789abcdef").mkdir(parents=True)
    (tmp / "store" / "runs" / "0123456789abcdef" / "result.json").write_text('{"status": "ok", "spec": ')
    return []


GRID = ("grid", "{tmp}/grid.toml", "--device", "cpu", "--quiet", "--out", "{out}")
GRID_FILE = "{tmp}/grid.toml"


def grid(text: str) -> Damage:
    """A grid file holding `text` (valid grids around the damage have one method, one seed, two steps)."""

    def damage(root: Path, tmp: Path) -> None:
        (tmp / "grid.toml").write_text(text + "\n")

    return damage


def grid_bytes(data: bytes) -> Damage:
    """A grid file holding raw `data` (for encodings other than UTF-8)."""

    def damage(root: Path, tmp: Path) -> None:
        (tmp / "grid.toml").write_bytes(data)

    return damage


FEATURES = "{root}/test/" + ABUSE + "_i3d.npy"
BAD_FILE = (FEATURES,)

CASES = [
    # -- feature files -----------------------------------------------------------------------------
    Case("missing-feature-file", lambda root, tmp: feature_file(root, ABUSE).unlink(),
         ("{root}/" + TEST_LIST, "line 1", f"{ABUSE}_i3d.npy not found under {{root}}")),
    Case("list-entry-dotdot-outside-root", moved_outside(f"../{ABUSE}_i3d.npy"),
         ("{root}/" + TEST_LIST, f"{ABUSE}_i3d.npy not found under {{root}}")),
    Case("list-entry-absolute-outside-root", moved_outside("{outside}"),
         ("{root}/" + TEST_LIST, f"{ABUSE}_i3d.npy not found under {{root}}")),
    Case("dangling-symlink-out-of-root", dangling_link,
         (*BAD_FILE, "a symbolic link to {tmp}/elsewhere", "cannot be read")),
    Case("truncated-npy", raw_bytes(ABUSE, lambda data: data[: len(data) // 2]),
         (*BAD_FILE, "truncated", "the header promises")),
    Case("empty-npy-file", raw_bytes(ABUSE, lambda data: b""), (*BAD_FILE, "not a .npy array file")),
    Case("pickled-array", raw_bytes(ABUSE, lambda data: pickle.dumps(np.ones((SNIPPETS, CROPS, DIM)))),
         (*BAD_FILE, "not a .npy array file")),
    Case("object-npy", raw_bytes(ABUSE, lambda data: _object_npy()), (*BAD_FILE, "pickled object array")),
    Case("garbage-npy-header", raw_bytes(ABUSE, lambda data: b"\x93NUMPY\x01\x00\x10\x00{'descr': x}   \n"),
         (*BAD_FILE, "unreadable .npy header")),
    Case("integer-features", features(ABUSE, shaped(SNIPPETS, CROPS, DIM, dtype=np.int64)),
         (*BAD_FILE, "dtype int64, expected float")),
    Case("wrong-ndim", features(ABUSE, shaped(SNIPPETS, CROPS * DIM)),
         (*BAD_FILE, "2 dimensions, expected 3", "[T, C, D]")),
    Case("inconsistent-dim", features(ABUSE, shaped(SNIPPETS, CROPS, DIM + 1)),
         (*BAD_FILE, f"D={DIM + 1}", f"D={DIM}", "same crops and dimension")),
    Case("inconsistent-crops", features(ABUSE, shaped(SNIPPETS, CROPS + 1, DIM)),
         (*BAD_FILE, f"C={CROPS + 1}", f"C={CROPS}", "same crops and dimension")),
    Case("nan-in-test-features", features(ABUSE, shaped(SNIPPETS, CROPS, DIM, value=np.nan)),
         (*BAD_FILE, "NaN or Inf")),
    Case("inf-in-training-features", features(TRAINING, shaped(SNIPPETS, CROPS, DIM, value=np.inf)),
         ("{root}/train/" + TRAINING + "_i3d.npy", "NaN or Inf")),
    Case("zero-snippets", features(ABUSE, shaped(0, CROPS, DIM)), (*BAD_FILE, "T = 0", "at least one")),
    # -- list files ----------------------------------------------------------------------------------
    Case("empty-train-list", replace(TRAIN_LIST, ""),
         ("{root}/" + TRAIN_LIST, "the list is empty")),
    Case("blank-test-list", replace(TEST_LIST, "\n  \n"),
         ("{root}/" + TEST_LIST, "the list is empty")),
    Case("list-line-not-npy", append(TRAIN_LIST, "/home/yu/UCF_Train/readme.txt"),
         ("{root}/" + TRAIN_LIST, "line 5", "expected a .npy feature file")),
    Case("duplicate-id-in-list", append(TRAIN_LIST, f"/elsewhere/{TRAINING}_i3d.npy"),
         ("{root}/" + TRAIN_LIST, "line 5", "already listed on line 1")),
    Case("duplicate-id-across-splits", append(TRAIN_LIST, f"/home/yu/UCF_Train/{ABUSE}_i3d.npy"),
         (*BAD_FILE, "both a training and a test video", "disjoint")),
    Case("same-file-name-twice-under-root", copy_elsewhere,
         (f"{ABUSE}_i3d.npy is found 2 times under {{root}}", "keep one")),
    # -- ground truth ----------------------------------------------------------------------------------
    Case("prebuilt-gt-length-mismatch", prebuilt_gt(np.zeros(100, np.int8)),
         ("{root}/gt-ucf.npy", "100 frames", f"expected 16 x {4 * SNIPPETS} test snippets")),
    Case("prebuilt-gt-2d", prebuilt_gt(np.zeros((4 * SNIPPETS * 16, 2), np.int8)),
         ("{root}/gt-ucf.npy", "shape (768, 2)", "expected 16 x")),
    Case("prebuilt-gt-not-binary", prebuilt_gt(np.full(4 * SNIPPETS * 16, 2, np.int8)),
         ("{root}/gt-ucf.npy", "labels must be 0 or 1")),
    Case("prebuilt-gt-missing", args("--set", "dataset.gt=gt-nowhere.npy"),
         ("option gt=gt-nowhere.npy", "no such file")),
    # -- annotations ---------------------------------------------------------------------------------
    Case("annotation-frame-not-a-number", edit(ANNOTATION, "Abuse  32", "Abuse  3x"),
         ("{root}/" + ANNOTATION, "line 1", "expected a frame number, got '3x'")),
    Case("annotation-odd-frame-count", edit(ANNOTATION, "96  -1  -1", "96  -1"),
         ("{root}/" + ANNOTATION, "line 1", "expected start/end frame pairs")),
    Case("annotation-too-few-fields", edit(ANNOTATION, "  Abuse  32  96  -1  -1", ""),
         ("{root}/" + ANNOTATION, "line 1", "expected 'video.mp4 Class s1 e1 s2 e2'")),
    Case("annotation-end-before-start", edit(ANNOTATION, "32  96", "96  32"),
         ("{root}/" + ANNOTATION, "line 1", "bad frame range 96 32")),
    Case("annotation-normal-with-event", edit(ANNOTATION, "Normal  -1  -1", "Normal  3  5"),
         ("{root}/" + ANNOTATION, "line 3", "a Normal video with an event")),
    Case("annotation-unknown-video", append(ANNOTATION, "Robbery999_x264.mp4  Robbery  1  5  -1  -1"),
         ("{root}/" + ANNOTATION, "Robbery999_x264", "not among the test videos")),
    Case("annotation-duplicate-video", append(ANNOTATION, f"{ABUSE}.mp4  Abuse  1  5  -1  -1"),
         ("{root}/" + ANNOTATION, "line 5", "appears twice")),
    Case("annotation-missing-test-video", edit(ANNOTATION, f"{ABUSE}.mp4  Abuse  32  96  -1  -1\n", ""),
         ("{root}/" + ANNOTATION, f"no annotation for test video {ABUSE}")),
    Case("annotation-event-after-the-features", edit(ANNOTATION, "32  96", "3200  3300"),
         ("{root}/" + ANNOTATION, ABUSE, "starts after the 192 frames")),
    Case("annotation-empty", replace(ANNOTATION, "\n"),
         ("{root}/" + ANNOTATION, "no annotation lines")),
    # -- names, options and folders ----------------------------------------------------------------------
    Case("unknown-dataset", args("--dataset", "ucf-crimes"), ("unknown dataset 'ucf-crimes'", "ucf-crime")),
    Case("unknown-method", args("--method", "rtfx"), ("unknown method 'rtfx'", "rtfm")),
    Case("unknown-option", args("--set", "dataset.colour=red"), ("'dataset.colour=red'", "options are")),
    Case("option-value-not-allowed", args("--set", "dataset.layout=tiff"),
         ("option 'layout'", "auto, rtfm, wu", "'tiff'")),
    Case("option-value-wrong-type", args("--set", "rtfm.k=three"), ("'k'", "expects int")),
    Case("malformed-seeds", args("--seeds", "1-x"), ("--seeds", "expected seeds like 0,1,2")),
    Case("zero-steps", args("--steps", "0"), ("steps must be at least 1",)),
    Case("root-not-a-directory", args("--root", "{tmp}/nowhere"), ("--root {tmp}/nowhere", "not a directory")),
    Case("root-missing", nothing, ("dataset 'ucf-crime' needs --root DIR",),
         argv=tuple(a for a in RUN if a not in ("--root", "{root}"))),
    Case("out-under-a-file", out_under_a_file, ("--out {tmp}/a-file/runs", "cannot write results there")),
    Case("out-not-writable", read_only_out, ("--out", "cannot write results there")),
    # -- grid files ----------------------------------------------------------------------------------------
    Case("grid-file-missing", nothing, (GRID_FILE, "cannot read the grid file"), argv=GRID),
    Case("grid-not-toml", grid('methods = ["rtfm"'), (GRID_FILE, "not valid TOML"), argv=GRID),
    Case("grid-not-utf8", grid_bytes('methods = ["rtfm"]\ntitle = "r\u00e9sum\u00e9"\n'.encode("latin-1")),
         (GRID_FILE, "not UTF-8 text"), argv=GRID),
    Case("grid-unknown-field", grid('method = ["rtfm"]'), (GRID_FILE, "unknown field 'method'"), argv=GRID),
    Case("grid-without-methods", grid("seeds = [0]"), (GRID_FILE, "methods: missing"), argv=GRID),
    Case("grid-methods-not-a-list", grid('methods = "rtfm"'), (GRID_FILE, "methods: expected a non-empty list"),
         argv=GRID),
    Case("grid-negative-seed", grid('methods = ["rtfm"]\nseeds = [-1]'),
         (GRID_FILE, "seeds: expected a non-empty list of non-negative integers"), argv=GRID),
    Case("grid-zero-steps", grid('methods = ["rtfm"]\nsteps = 0'), (GRID_FILE, "steps: expected a positive"),
         argv=GRID),
    Case("grid-unknown-method", grid('methods = ["rtfx"]'), (GRID_FILE, "methods", "unknown method 'rtfx'"),
         argv=GRID),
    Case("grid-unknown-option", grid('methods = ["rtfm"]\n[options]\ncolour = "red"'),
         (GRID_FILE, "no selected method or dataset has option 'colour'"), argv=GRID),
    Case("grid-sweep-not-a-list", grid('methods = ["rtfm"]\n[sweep]\nk = 3'),
         (GRID_FILE, "sweep.k: expected a non-empty list"), argv=GRID),
    Case("grid-sweep-wrong-type", grid('methods = ["rtfm"]\n[sweep]\nk = ["three"]'),
         (GRID_FILE, "'k'", "expects int"), argv=GRID),
    Case("grid-unknown-table-kind", grid('methods = ["rtfm"]\n[table]\nkind = "pie"'),
         (GRID_FILE, "table.kind: must be one of"), argv=GRID),
    # -- the run store ---------------------------------------------------------------------------------------
    Case("corrupt-stored-result", corrupt_result,
         ("{tmp}/store/runs/0123456789abcdef/result.json", "not a vadbench result"),
         argv=("leaderboard", "{tmp}/store")),
]


def _object_npy() -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"run": "os.system"}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def run_cli(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """`vadbench ARGV` in this process: the exit code (argparse's SystemExit included), stdout, stderr."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(*folders: Path) -> list[Path]:
    """Result files and temporaries that a refused command must not leave behind."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += folder.glob("runs/*/result.json")
            found += (p for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp"))
    return found


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys):
    root = tiny_ucf_root(tmp_path / "root")
    out = tmp_path / "out"
    extra = case.damage(root, tmp_path) or []
    fill = {"root": root, "tmp": tmp_path, "out": out}
    code, stdout, stderr = run_cli(capsys, [a.format(**fill) for a in case.argv] + extra)
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and stdout == ""
    assert lines[0].startswith("vadbench"), lines[0]
    for needle in case.expect:
        assert needle.format(**fill) in lines[0], lines[0]
    assert leftovers(out, root / ".vadbench-cache") == []


@pytest.mark.parametrize(
    ("video", "snippets", "k"),
    [(NORMAL_TEST, 2, 3), (NORMAL_TEST, 1, 3), (TRAINING, 1, 3), (TRAINING, 4, 8)],
    ids=["test-T2-k3", "test-T1-k3", "train-T1-k3", "train-T4-k8"],
)
def test_short_videos_are_clamped_not_refused(video, snippets, k, tmp_path, capsys):
    root = tiny_ucf_root(tmp_path / "root")
    features(video, np.random.default_rng(1).random((snippets, CROPS, DIM), dtype=np.float32))(root, tmp_path)
    argv = [a.format(root=root, out=tmp_path / "out") for a in RUN] + ["--set", f"k={k}"]
    code, stdout, stderr = run_cli(capsys, argv)
    assert code == 0, stderr
    assert "| rtfm" in stdout
    assert len(list((tmp_path / "out").glob("runs/*/result.json"))) == 1


def test_a_symbolic_link_loop_in_the_root_is_walked_once(tmp_path, capsys):
    root = tiny_ucf_root(tmp_path / "root")
    (root / "train" / "loop").symlink_to("..", target_is_directory=True)
    code, stdout, stderr = run_cli(capsys, [a.format(root=root, out=tmp_path / "out") for a in RUN])
    assert code == 0, stderr
    assert "| rtfm" in stdout
