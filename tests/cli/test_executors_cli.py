"""The executor flags of `vadbench run` and `vadbench grid`: wiring, one-line errors, equal tables."""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

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


@pytest.mark.slow  # starts worker processes
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


@pytest.mark.slow  # starts a Ray cluster
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


#: The `ray` command of the Ray installed beside this Python (its console script may be elsewhere).
RAY = [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.argv[0] = 'ray'; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ray_start(*args: str, env: dict[str, str], groups: list[int]) -> subprocess.CompletedProcess[str]:
    """``ray start ARGS``; its daemons share a new process group, recorded in `groups` for the clean-up."""
    process = subprocess.Popen([*RAY, "start", *args, "--num-cpus=1", "--disable-usage-stats"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    groups.append(process.pid)
    output, _ = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, output)


def end_process_groups(groups: list[int]) -> None:
    """Stop every process of these groups (the Ray nodes this test started): SIGTERM, then SIGKILL."""
    for stop, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        deadline = time.monotonic() + grace
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, stop)
        while time.monotonic() < deadline and any(_group_alive(group) for group in groups):
            time.sleep(0.2)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_a_grid_on_a_two_node_ray_cluster_joined_with_a_token_gives_the_serial_table(capsys, tmp_path):
    """Two Ray nodes on loopback, as examples/ray/slurm.sh starts them (token authentication on), and a
    grid driven through --address: the same metrics as serial."""
    pytest.importorskip("ray")
    options = "\n".join(f"dataset.{key} = {value}" for key, value in TINY_SYNTHETIC.items() if key != "steps")
    grid = tmp_path / "tiny.toml"
    grid.write_text(f'methods = ["sultani-mil"]\nseeds = [0, 1]\nsteps = 4\n[options]\n{options}\n')
    code, _, err = run_cli(capsys, "grid", str(grid), "--device", "cpu", "--cpus-per-run", "1", "--quiet",
                           "--out", str(tmp_path / "serial"))
    assert code == 0, err

    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "VADBENCH_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
    for name in ("RAY_ADDRESS", "VADBENCH_PLUGINS"):
        env.pop(name, None)
    address = f"127.0.0.1:{free_port()}"
    ray_temp = tempfile.mkdtemp(prefix="vr-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    groups: list[int] = []
    try:
        head = ray_start("--head", f"--port={address.rpartition(':')[2]}", "--node-ip-address=127.0.0.1",
                         "--include-dashboard=false", f"--temp-dir={ray_temp}", env=env, groups=groups)
        assert head.returncode == 0, head.stdout[-3000:]
        joined = ray_start(f"--address={address}", f"--temp-dir={ray_temp}", env=env, groups=groups)
        assert joined.returncode == 0, joined.stdout[-3000:]
        driver = subprocess.run(
            [sys.executable, "-m", "vadbench", "grid", str(grid), "--device", "cpu", "--quiet",
             "--executor", "ray", "--address", address, "--out", str(tmp_path / "ray")],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240, check=False,
        )
        assert driver.returncode == 0, driver.stderr[-3000:]
    finally:
        end_process_groups(groups)
        shutil.rmtree(ray_temp, ignore_errors=True)
    assert not any(map(_group_alive, groups)), "Ray processes outlived the test"
    tables = [run_cli(capsys, "leaderboard", str(tmp_path / name), "--format", "csv")[1] for name in ("serial", "ray")]
    assert tables[0] == tables[1] and tables[0].count("\nsultani-mil,") == 1
