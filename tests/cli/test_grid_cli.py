"""`vadbench grid` and `vadbench plot` end to end on a tiny grid: tables, resume, errors, figures."""

import sys

import pytest
from conftest import TINY_SYNTHETIC

from vadbench.cli import main

TINY_OPTIONS = "\n".join(f"dataset.{key} = {value}" for key, value in TINY_SYNTHETIC.items() if key != "steps")


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def grid_file(tmp_path, body, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(f"{body}\nsteps = 3\n[options]\n{TINY_OPTIONS}\n")
    return path


@pytest.fixture
def ablation(tmp_path):
    (tmp_path / "reported.toml").write_text(
        '[[result]]\nexperiment = "t5"\nmethod = "rtfm"\ndataset = "shanghaitech"\nfeatures = "I3D"\n'
        'metric = "auc"\nvalue = 97.21\nsource = "Tian et al., ICCV 2021, Table 5"\n'
    )
    return grid_file(tmp_path, 'title = "tiny ablation"\nmethods = ["rtfm-baseline", "rtfm-fm", "rtfm"]\n'
                               'seeds = [0, 1]\ntable = { kind = "ablation", reported = "reported.toml", '
                               'experiment = "t5" }')


def test_grid_renders_the_ablation_table_and_resumes(capsys, tmp_path, ablation):
    out_dir = str(tmp_path / "runs")
    code, out, err = run_cli(capsys, "grid", str(ablation), "--out", out_dir)
    assert code == 0, err
    assert err.count("AUC") == 6  # one line per run
    lines = out.splitlines()
    assert lines[0] == "## tiny ablation"
    header = next(line for line in lines if line.startswith("| method"))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "method", "PDC", "TSA", "FM", "synthetic AUC", "shanghaitech AUC (I3D, reported)", "ms/step"]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in lines if line.startswith("| rtfm")}
    assert rows["rtfm-baseline"][1:4] == ["", "", ""] and rows["rtfm-fm"][1:4] == ["", "", "✓"]
    assert rows["rtfm"][1:4] == ["✓", "✓", "✓"] and rows["rtfm"][5] == "97.21"
    assert "±" in rows["rtfm"][4] and rows["rtfm-fm"][5] == "-"
    assert "Tian et al., ICCV 2021, Table 5" in out

    code, again, err = run_cli(capsys, "grid", str(ablation), "--out", out_dir)
    assert code == 0 and err.count("finished earlier, skipped") == 6
    assert again == out


def test_dry_run_lists_the_runs_and_runs_nothing(capsys, tmp_path, ablation):
    code, out, err = run_cli(capsys, "grid", str(ablation), "--out", str(tmp_path / "runs"), "--dry-run",
                             "--seeds", "4")
    assert code == 0
    assert len(out.splitlines()) == 3 and all("to run" in line and "seed 4" in line for line in out.splitlines())
    assert "3 runs, 0 finished" in err
    assert not (tmp_path / "runs" / "runs").exists() or not any((tmp_path / "runs" / "runs").iterdir())


def test_protocols_are_separated_and_compared_with_last(capsys, tmp_path):
    path = grid_file(tmp_path, 'methods = ["rtfm"]\nseeds = [0, 1]\nprotocols = ["last", "val:every=1", '
                               '"oracle-test:every=1"]')
    code, out, err = run_cli(capsys, "grid", str(path), "--out", str(tmp_path / "runs"), "--quiet")
    assert code == 0 and err == ""
    honest, oracle = out.split("Selected on the TEST set")
    assert "| last " in honest and "| val:every=1 " in honest and "oracle-test" not in honest
    assert "| oracle-test:every=1 " in oracle
    assert "Δ AUC vs last [95% CI]" in honest
    val_row = next(line for line in honest.splitlines() if line.startswith("| rtfm") and "val:every=1" in line)
    assert val_row.rstrip(" |").endswith("]")  # a difference with its interval


def test_bad_grid_file_is_one_line_naming_file_and_field(capsys, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('methods = ["rtfm"]\nseeds = [-1]\n')
    code, _, err = run_cli(capsys, "grid", str(path), "--out", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{path}: seeds:" in err


def test_plot_without_matplotlib_is_a_one_line_hint(capsys, tmp_path, monkeypatch, ablation):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    code, _, err = run_cli(capsys, "plot", "sweep", str(ablation), "--out", str(tmp_path))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert 'pip install "vadbench[plot]"' in err


def test_plot_before_the_grid_ran_says_what_to_run(capsys, tmp_path, ablation):
    pytest.importorskip("matplotlib")
    code, _, err = run_cli(capsys, "plot", "per-class", str(ablation), "--out", str(tmp_path / "empty"))
    assert code == 2 and "are not finished" in err and "vadbench grid" in err


def test_plots_of_a_finished_sweep(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = grid_file(tmp_path, 'methods = ["rtfm", "sultani-mil"]\nseeds = [0]\nsweep = { k = [1, 3] }')
    out_dir = str(tmp_path / "runs")
    assert run_cli(capsys, "grid", str(path), "--out", out_dir, "--quiet")[0] == 0
    for kind, extra in (("sweep", []), ("per-class", [])):
        figure = tmp_path / f"{kind}.png"
        code, out, err = run_cli(capsys, "plot", kind, str(path), "--out", out_dir, "-o", str(figure), *extra)
        assert code == 0, err
        assert out.strip() == str(figure) and figure.read_bytes().startswith(b"\x89PNG")
    code, _, err = run_cli(capsys, "plot", "sweep", str(path), "--out", out_dir, "--x", "margin")
    assert code == 2 and "--x margin: not swept" in err
    code, _, err = run_cli(capsys, "plot", "video", str(path), "--out", out_dir, "--method", "rtfm")
    assert code == 2 and "runs it in 2 configurations" in err and "--where" in err
    figure = tmp_path / "video-k1.png"
    code, _, err = run_cli(capsys, "plot", "video", str(path), "--out", out_dir, "--where", "k=1", "-o", str(figure))
    assert code == 0 and figure.is_file(), err

    one = grid_file(tmp_path, 'methods = ["rtfm", "sultani-mil"]\nseeds = [0]', "one.toml")  # the k = 3 runs
    for kind, extra in (("video", ["--method", "rtfm"]), ("separability", ["--max-k", "6"])):
        figure = tmp_path / f"{kind}.png"
        code, out, err = run_cli(capsys, "plot", kind, str(one), "--out", out_dir, "-o", str(figure), *extra)
        assert code == 0, err
        assert figure.read_bytes().startswith(b"\x89PNG")
    code, _, err = run_cli(capsys, "plot", "separability", str(one), "--out", out_dir, "--method", "sultani-mil")
    assert code == 2 and "stores no feature magnitudes" in err


def test_grid_metrics_option_chooses_the_columns_of_every_table_kind(capsys, tmp_path, ablation):
    out_dir = str(tmp_path / "runs")
    code, out, err = run_cli(capsys, "grid", str(ablation), "--out", out_dir, "--quiet", "--metrics", "auc,far")
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("| method"))
    assert [c.strip() for c in header.strip("|").split("|")][4:6] == ["synthetic AUC", "synthetic FAR"]
    path = grid_file(tmp_path, 'methods = ["rtfm"]\nseeds = [0]', name="board.toml")
    code, out, err = run_cli(capsys, "grid", str(path), "--out", out_dir, "--quiet", "--metrics", "far")
    assert code == 0, err
    header, _, row = [line for line in out.splitlines() if line.startswith("|")]
    assert [c.strip() for c in header.strip("|").split("|")] == ["method", "dataset", "features", "protocol",
                                                                  "runs", "FAR", "params", "ms/step"]
    assert "±" in row.split("|")[6]


def test_oracle_test_on_a_short_schedule_scores_no_checkpoint_and_says_so(capsys, tmp_path):
    path = grid_file(tmp_path, 'methods = ["rtfm"]\nseeds = [0]\nprotocols = ["oracle-test"]')
    code, out, err = run_cli(capsys, "grid", str(path), "--out", str(tmp_path / "runs"), "--quiet")
    assert code == 0, err
    header, _, row = [line for line in out.splitlines() if line.startswith("|")]
    cells = dict(zip((c.strip() for c in header.strip("|").split("|")),
                     (c.strip() for c in row.strip("|").split("|")), strict=True))
    assert cells["selected step"] == "3"  # the 3-step schedule's final weights
    assert "No checkpoint was scored in 1 run (oracle-test" in out


def test_plot_curves_of_a_grid_and_of_a_run_store(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    path = grid_file(tmp_path, 'methods = ["rtfm"]\nseeds = [0, 1]\nprotocols = ["last", "val:every=1"]')
    store = tmp_path / "runs"
    assert run_cli(capsys, "grid", str(path), "--out", str(store), "--quiet")[0] == 0
    code, out, err = run_cli(capsys, "plot", "curves", str(path), "--out", str(store))
    assert code == 0, err
    assert out.split() == ["tiny-curves.pdf", "tiny-curves.png"]  # default: vector and raster, here
    assert (tmp_path / "tiny-curves.pdf").read_bytes().startswith(b"%PDF")
    figure = tmp_path / "store.svg"
    code, out, err = run_cli(capsys, "plot", "curves", str(store), "-o", str(figure), "--where", "protocol=val:every=1")
    assert code == 0 and out.strip() == str(figure) and b"<svg" in figure.read_bytes()

    code, _, err = run_cli(capsys, "plot", "sweep", str(store))
    assert code == 2 and "only plot curves takes a run store" in err
    code, _, err = run_cli(capsys, "plot", "curves", str(store), "-o", "curves.jpg")
    assert code == 2 and "--output curves.jpg: the suffix names the format" in err
    for curves in store.glob("runs/*/curves.json"):  # a store written before runs kept their curves
        curves.unlink()
    code, _, err = run_cli(capsys, "plot", "curves", str(path), "--out", str(store), "-o", "old.png")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "4 of the 4 runs have no stored training curves" in err and not (tmp_path / "old.png").exists()
