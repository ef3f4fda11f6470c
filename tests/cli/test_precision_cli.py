"""--precision and --compile on the command line: bf16 and compiled runs are stored and tabled apart."""

from vadbench.cli import main
from vadbench.report.store import load_results


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


def test_a_grid_takes_the_precision(capsys, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["rtfm"]\ndatasets = ["synthetic"]\nseeds = [0]\n')
    assert main(["grid", str(grid), "--precision", "bf16", "--dry-run", "--out", str(tmp_path)]) == 0
    out, _ = capsys.readouterr()
    fp32 = main(["grid", str(grid), "--dry-run", "--out", str(tmp_path)])
    assert fp32 == 0 and out.split()[0] != capsys.readouterr()[0].split()[0]  # different run keys


def test_compiled_runs_get_their_own_keys(capsys, tmp_path):
    """torch.compile changes the numbers on the CPU, so a compiled run is not the eager run (docs/gpu.md)."""
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["sultani-mil"]\nseeds = [0]\n')
    assert main(["grid", str(grid), "--dry-run", "--out", str(tmp_path)]) == 0
    eager = capsys.readouterr()[0].split()[0]
    assert main(["grid", str(grid), "--dry-run", "--compile", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr()[0].split()[0] != eager
