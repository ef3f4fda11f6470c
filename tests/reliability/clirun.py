"""`vadbench` as a separate process, for tests that kill it or run two at once.

The child sees only the built-in plugins and one torch thread, so that two of them side by side on a
small CI machine stay fast and their numbers do not depend on what else is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import TINY_SYNTHETIC

#: `--set` arguments that make the synthetic benchmark tiny (each run about a second).
TINY = [arg for key, value in TINY_SYNTHETIC.items() for arg in ("--set", f"dataset.{key}={value}")]


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "VADBENCH_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1", **extra}
    env.pop("VADBENCH_PLUGINS", None)
    return env


#: Where the child starts: not the repository root, whose bare vadbench/ folder `python -m` would
#: import instead of the installed package (that has vadbench.methods and vadbench.datasets).
NEUTRAL_FOLDER = Path(__file__).resolve().parent


def start(*args: str, **extra_env: str) -> subprocess.Popen[str]:
    """Start ``vadbench ARGS`` in the background, stdout and stderr captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "vadbench", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(**extra_env), cwd=NEUTRAL_FOLDER,
    )


def vadbench(*args: str, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """Run ``vadbench ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "vadbench", *args],
        capture_output=True, text=True, timeout=timeout, env=environment(**extra_env), check=False,
        cwd=NEUTRAL_FOLDER,
    )


def stored(out: Path) -> dict[str, dict]:
    """Run key -> parsed result.json of every stored run (fails the test on a corrupt one)."""
    return {path.parent.name: json.loads(path.read_text()) for path in sorted(out.glob("runs/*/result.json"))}


def temporaries(out: Path) -> list[Path]:
    """Hidden or temporary files left in the store."""
    return [path for path in out.rglob("*") if path.name.startswith(".") or path.name.endswith(".tmp")]
