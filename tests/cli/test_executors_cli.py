"""The executor flags of `vadbench run` and `vadbench grid`: wiring, one-line errors, equal tables."""

import sys

import pytest
from conftest import TINY_SYNTHETIC

from vadbench.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_the_builtin_executors(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    executors = out.split("executors:")[1].splitlines()
    for name in ("serial", "local", "ray"):
        assert any(line.strip().startswith(name + " ") for line in executors), out


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--workers", "2"], "--workers does not apply to --executor serial"),
        (["--executor", "slurm"], "unknown executor 'slurm'; known: local, ray, serial"),
        (["--executor", "local", "--address", "auto"], "--address does not apply to --executor local"),
        (["--executor", "local", "--workers", "0"], "workers must be at least 1"),
    ],
)
def test_bad_executor_flags_are_one_line_errors(capsys, tmp_path, flags, needle):
    code, _, err = run_cli(capsys, "run", "--method", "rtfm", "--out", str(tmp_path), *flags)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_ray_without_the_extra_says_how_to_install_it(capsys, tmp_path, monkeypatch, tiny_synthetic_args):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    code, _, err = run_cli(capsys, "run", "--method", "rtfm", "--seeds", "0", "--steps", "2", "--executor", "ray",
                           "--out", str(tmp_path), *tiny_synthetic_args)
    assert code == 2
    assert err.strip().splitlines()[-1] == 'vadbench: error: --executor ray needs Ray: pip install "vadbench[ray]"'


def test_local_workers_print_the_same_table_as_serial(capsys, tmp_path, tiny_synthetic_args):
    common = ["run", "--method", "sultani-mil", "--seeds", "0,1", "--steps", "4", "--cpus-per-run", "1",
              *tiny_synthetic_args]
    code, serial, _ = run_cli(capsys, *common, "--out", str(tmp_path / "serial"))
    assert code == 0
    code, local, err = run_cli(capsys, *common, "--executor", "local", "--workers", "2",
                               "--out", str(tmp_path / "local"))
    assert code == 0, err
    assert local == serial and "| sultani-mil" in local
    assert err.count("AUC") == 2


def test_grid_takes_the_same_executor_flags(capsys):
    with pytest.raises(SystemExit):
        main(["grid", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--executor", "--workers", "--address", "--gpus-per-run", "--cpus-per-run"):
        assert flag in help_text


def test_a_grid_on_a_local_ray_cluster_gives_the_same_numbers_as_serial(capsys, tmp_path):
    pytest.importorskip("ray")
    options = "\n".join(f"dataset.{key} = {value}" for key, value in TINY_SYNTHETIC.items() if key != "steps")
    grid = tmp_path / "tiny.toml"
    grid.write_text(f'methods = ["rtfm", "sultani-mil"]\nseeds = [0, 1]\nsteps = 4\n[options]\n{options}\n')
    common = ["grid", str(grid), "--device", "cpu", "--cpus-per-run", "1", "--quiet"]
    code, _, err = run_cli(capsys, *common, "--out", str(tmp_path / "serial"))
    assert code == 0, err
    code, _, err = run_cli(capsys, *common, "--executor", "ray", "--workers", "2", "--out", str(tmp_path / "ray"))
    assert code == 0, err
    # The grid's own table has a timing column; the leaderboard holds the metrics only.
    tables = [run_cli(capsys, "leaderboard", str(tmp_path / name), "--format", "csv")[1] for name in ("serial", "ray")]
    assert tables[0] == tables[1] and tables[0].count("\nrtfm,") == 1
