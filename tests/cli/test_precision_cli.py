"""--precision and --compile on the command line: bf16 runs are stored and tabled apart from fp32 runs."""

from vadbench.cli import main
from vadbench.results import load_results


def test_bf16_runs_get_their_own_keys_and_table_rows(capsys, tmp_path, tiny_synthetic_args):
    common = ["run", "--method", "rtfm", "--seeds", "0", "--steps", "2", "--device", "cpu", "--quiet",
              "--out", str(tmp_path), *tiny_synthetic_args]
    assert main([*common, "--precision", "bf16"]) == 0
    assert main(common) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(tmp_path)]) == 0
    rows = [line for line in capsys.readouterr()[0].splitlines() if line.startswith("| rtfm")]
    assert len(rows) == 2 and {"fp32", "bf16"} <= {cell.strip() for row in rows for cell in row.split("|")}
    results = load_results(tmp_path)
    assert sorted(r.spec.precision for r in results) == ["bf16", "fp32"] and len({r.spec.key for r in results}) == 2


def test_compile_reuses_the_key_of_the_same_run(capsys, tmp_path, tiny_synthetic_args):
    common = ["run", "--method", "sultani-mil", "--seeds", "0", "--steps", "2", "--device", "cpu",
              "--out", str(tmp_path), *tiny_synthetic_args]
    assert main(common) == 0
    assert main([*common, "--compile"]) == 0  # finished earlier: skipped, not compiled
    _, err = capsys.readouterr()
    assert "finished earlier, skipped" in err


def test_a_grid_takes_the_precision(capsys, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["rtfm"]\ndatasets = ["synthetic"]\nseeds = [0]\n')
    assert main(["grid", str(grid), "--precision", "bf16", "--dry-run", "--out", str(tmp_path)]) == 0
    out, _ = capsys.readouterr()
    fp32 = main(["grid", str(grid), "--dry-run", "--out", str(tmp_path)])
    assert fp32 == 0 and out.split()[0] != capsys.readouterr()[0].split()[0]  # different run keys
