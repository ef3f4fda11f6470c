"""Plugin discovery through the entry-point machinery, for built-ins and third parties alike."""

import importlib
import sys
from pathlib import Path

import pytest

from vadbench.api import hookspecs
from vadbench.api.errors import UsageError
from vadbench.plugins.manager import load_plugins

EXAMPLE_SRC = Path(__file__).resolve().parents[2] / "examples" / "plugin" / "src"


def install_distribution(site: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Make `site` hold an installed distribution: a dist-info with entry points, plus modules."""
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = "\n".join(f"{key} = {value}" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[vadbench]\n{lines}\n")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("VADBENCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("VADBENCH_PLUGINS", raising=False)
    yield tmp_path
    prefixes = ("broken_plugin", "dup_plugin", "vadbench_magnitude_mlp", "unscheduled_plugin", "described_plugin")
    for name in [m for m in sys.modules if m.startswith(prefixes)]:
        del sys.modules[name]
    importlib.invalidate_caches()


def test_builtins_are_entry_points_of_vadbench_itself(site):
    plugins = load_plugins()
    assert {"rtfm", "sultani-mil"} <= set(plugins.methods.names())
    assert "synthetic" in plugins.datasets.names()
    assert plugins.distributions["rtfm"] == "vadbench"


def test_example_plugin_is_discovered_through_its_entry_point(site, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    install_distribution(site, "vadbench-magnitude-mlp", {"magnitude-mlp": "vadbench_magnitude_mlp"}, {})
    plugins = load_plugins()
    assert "magnitude-mlp" in plugins.methods.names()
    assert plugins.distributions["magnitude-mlp"] == "vadbench-magnitude-mlp"
    assert plugins.methods.get("magnitude-mlp").source == "vadbench_magnitude_mlp"


def test_autoload_disabled_keeps_only_the_builtins(site, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    install_distribution(site, "vadbench-magnitude-mlp", {"magnitude-mlp": "vadbench_magnitude_mlp"}, {})
    monkeypatch.setenv("VADBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins = load_plugins()
    assert "magnitude-mlp" not in plugins.methods.names()
    assert "rtfm" in plugins.methods.names()


def test_named_module_loads_without_installation(site, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_SRC))
    monkeypatch.setenv("VADBENCH_PLUGINS", "vadbench_magnitude_mlp")
    assert "magnitude-mlp" in load_plugins().methods.names()


def test_a_plugin_that_fails_to_import_is_reported_by_distribution(site):
    broken = {"broken_plugin": "raise ImportError('no cuda')\n"}
    install_distribution(site, "broken-dist", {"broken": "broken_plugin"}, broken)
    plugins = load_plugins()
    assert any("broken-dist" in e and "no cuda" in e for e in plugins.errors)
    assert "rtfm" in plugins.methods.names()


def test_a_duplicate_method_name_is_refused_naming_both_modules(site):
    source = (
        "from vadbench import hookimpl\nfrom vadbench.methods.rtfm import RTFM\n"
        "@hookimpl\ndef vadbench_register_methods(register):\n    register('rtfm', RTFM)\n"
    )
    install_distribution(site, "dup-dist", {"dup": "dup_plugin"}, {"dup_plugin": source})
    with pytest.raises(UsageError, match=r"'rtfm' is registered twice: by \S+ and by \S+") as error:
        load_plugins()
    assert "dup_plugin" in str(error.value) and "vadbench.methods.rtfm" in str(error.value)


def test_a_method_config_without_batch_size_is_refused_at_registration_naming_the_plugin(site):
    source = (
        "from dataclasses import dataclass\nfrom vadbench import hookimpl\n"
        "from vadbench.methods.sultani_mil import SultaniMIL\n"
        "@dataclass(frozen=True)\nclass UnscheduledConfig:\n    lr: float = 0.001\n    steps: int = 10\n"
        "class Unscheduled(SultaniMIL):\n    Config = UnscheduledConfig\n"
        "@hookimpl\ndef vadbench_register_methods(register):\n    register('unscheduled', Unscheduled)\n"
    )
    install_distribution(site, "unscheduled-dist", {"unscheduled": "unscheduled_plugin"},
                         {"unscheduled_plugin": source})
    with pytest.raises(UsageError, match="'unscheduled' from unscheduled_plugin: .*no option 'batch_size'"):
        load_plugins()


def test_every_config_option_can_be_preset_even_description_and_name(site):
    source = (
        "from dataclasses import dataclass\nfrom vadbench import hookimpl\n"
        "from vadbench.methods.sultani_mil import SultaniMIL, SultaniMILConfig\n"
        "@dataclass(frozen=True)\nclass DescribedConfig(SultaniMILConfig):\n"
        "    description: str = ''\n    name: str = ''\n"
        "class Described(SultaniMIL):\n    Config = DescribedConfig\n"
        "@hookimpl\ndef vadbench_register_methods(register):\n"
        "    register('described', Described, 'MIL with a note', description='a note', name='mine')\n"
    )
    install_distribution(site, "described-dist", {"described": "described_plugin"}, {"described_plugin": source})
    plugins = load_plugins()
    assert plugins.errors == []
    entry = plugins.methods.get("described")
    assert entry.description == "MIL with a note"
    assert entry.preset == {"description": "a note", "name": "mine"}
    config = plugins.methods.config("described")
    assert (config.description, config.name) == ("a note", "mine")


def test_every_hook_is_documented():
    hooks = [name for name in dir(hookspecs) if name.startswith("vadbench_")]
    assert hooks, "no hookspecs found"
    guide = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    for name in hooks:
        assert getattr(hookspecs, name).__doc__, f"{name} has no docstring"
        assert name in guide, f"{name} is not documented in docs/plugins.md"
