"""Nothing vadbench reads can execute code, and a broken plugin cannot take the built-ins down.

Feature files come from third-party mirrors: every ``np.load`` must pass ``allow_pickle=False`` and
every ``torch.load`` ``weights_only=True``, and no module may import ``pickle``. The scan is static, so
a new loader added anywhere in the shipped code is caught before it is ever run.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

from vadbench.cli import main
from vadbench.plugins.manager import get_plugins

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("vadbench", "methods", "datasets", "examples", "benchmarks")
#: (module alias, function) -> the keyword and value that make the call safe
SAFE_CALLS = {("np", "load"): ("allow_pickle", False), ("numpy", "load"): ("allow_pickle", False),
              ("torch", "load"): ("weights_only", True)}


def shipped_modules() -> list[Path]:
    return sorted(path for folder in SHIPPED for path in (REPO / folder).rglob("*.py"))


def unsafe_calls(path: Path) -> list[str]:
    """``file:line: what`` for each unsafe load call or pickle import in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
            if any(name.split(".")[0] in ("pickle", "dill", "cloudpickle") for name in names):
                found.append(f"{where}: imports a pickle module")
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)):
            continue
        rule = SAFE_CALLS.get((node.func.value.id, node.func.attr))
        if rule is None:
            continue
        keyword, value = rule
        given = {k.arg: k.value for k in node.keywords}
        if not (isinstance(given.get(keyword), ast.Constant) and given[keyword].value is value):
            found.append(f"{where}: {node.func.value.id}.{node.func.attr} without {keyword}={value}")
    return found


def test_every_load_in_the_shipped_code_refuses_pickles():
    modules = shipped_modules()
    assert len(modules) > 20, "the source folders were not found"
    assert [problem for path in modules for problem in unsafe_calls(path)] == []


def test_the_scan_catches_an_unsafe_load(tmp_path):
    module = REPO / "vadbench" / "_scan_probe.py"  # must sit under the repository for relative paths
    try:
        module.write_text("import numpy as np\nimport torch\nimport pickle\n"
                          "np.load('x.npy')\ntorch.load('m.pt', weights_only=False)\n"
                          "np.load('y.npy', allow_pickle=False)\n")
        assert len(unsafe_calls(module)) == 3
    finally:
        module.unlink()


@pytest.fixture
def broken_site(tmp_path, monkeypatch):
    """An installed distribution `broken-dist` whose plugin module raises at import."""
    info = tmp_path / "broken_dist-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-dist\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[vadbench]\nbroken = vadbench_broken_plugin\n")
    (tmp_path / "vadbench_broken_plugin.py").write_text("raise ImportError('libcudart.so.11 not found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("VADBENCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("VADBENCH_PLUGINS", raising=False)
    get_plugins.cache_clear()
    yield
    get_plugins.cache_clear()
    sys.modules.pop("vadbench_broken_plugin", None)
    importlib.invalidate_caches()


def test_a_plugin_failing_at_import_is_one_warning_naming_its_distribution(broken_site, capsys):
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert "rtfm" in out and "synthetic" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("vadbench: warning: plugin 'broken' from distribution 'broken-dist'")
    assert "libcudart.so.11 not found" in lines[0]


def test_disabling_autoload_skips_the_broken_plugin_and_is_documented(broken_site, monkeypatch, capsys):
    monkeypatch.setenv("VADBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "rtfm" in out
    assert "VADBENCH_DISABLE_PLUGIN_AUTOLOAD" in (REPO / "docs" / "plugins.md").read_text()
