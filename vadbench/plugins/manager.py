"""Plugin discovery: one pluggy manager fed by the ``vadbench`` entry-point group.

Built-ins are entry points of the ``vadbench`` distribution itself, so they load exactly like a
third-party plugin. ``VADBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` loads the built-ins only;
``VADBENCH_PLUGINS=mod1,mod2`` additionally loads plugin modules by import name (handy for a
plugin under development that is not installed yet). A plugin that fails to import is reported
by distribution name and skipped, so the built-ins keep working.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from vadbench.api import hookspecs
from vadbench.api.dataset import Dataset
from vadbench.api.errors import UsageError
from vadbench.api.executor import Executor
from vadbench.api.extractor import Extractor
from vadbench.api.method import Method
from vadbench.plugins.registry import Registry

ENTRY_POINT_GROUP = "vadbench"
BUILTIN_DISTRIBUTION = "vadbench"


@dataclass
class Plugins:
    """The loaded plugins and the registries they filled."""

    manager: pluggy.PluginManager
    methods: Registry[Method]
    datasets: Registry[Dataset]
    executors: Registry[Executor]
    extractors: Registry[Extractor]
    #: plugin name -> distribution that provides it ("vadbench" for the built-ins)
    distributions: dict[str, str] = field(default_factory=dict)
    #: one line per plugin that failed to load
    errors: list[str] = field(default_factory=list)


def autoload_disabled() -> bool:
    return os.environ.get("VADBENCH_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower() not in ("", "0", "false")


def load_plugins() -> Plugins:
    """A fresh plugin manager with every plugin loaded and the registries filled."""
    manager = pluggy.PluginManager("vadbench")
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(
        manager, Registry("method", Method), Registry("dataset", Dataset), Registry("executor", Executor),
        Registry("extractor", Extractor),
    )
    _load_entry_points(plugins)
    _load_named_modules(plugins)
    manager.check_pending()
    _fill(plugins, manager.hook.vadbench_register_methods, plugins.methods)
    _fill(plugins, manager.hook.vadbench_register_datasets, plugins.datasets)
    _fill(plugins, manager.hook.vadbench_register_executors, plugins.executors)
    _fill(plugins, manager.hook.vadbench_register_extractors, plugins.extractors)
    return plugins


@functools.cache
def get_plugins() -> Plugins:
    """The process-wide plugins (the only global state of vadbench)."""
    return load_plugins()


def _load_entry_points(plugins: Plugins) -> None:
    builtins_only = autoload_disabled()
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist.name if entry_point.dist is not None else "unknown distribution"
        if builtins_only and dist != BUILTIN_DISTRIBUTION:
            continue
        if plugins.manager.get_plugin(entry_point.name) is not None:
            continue  # the same distribution seen twice on sys.path
        try:
            module = entry_point.load()
        except Exception as error:  # a third-party bug must not take the built-ins down
            plugins.errors.append(
                f"plugin {entry_point.name!r} from distribution {dist!r} failed to load: "
                f"{type(error).__name__}: {error}"
            )
            continue
        if not plugins.manager.is_registered(module):
            plugins.manager.register(module, name=entry_point.name)
            plugins.distributions[entry_point.name] = dist


def _load_named_modules(plugins: Plugins) -> None:
    for name in filter(None, (n.strip() for n in os.environ.get("VADBENCH_PLUGINS", "").split(","))):
        if plugins.manager.get_plugin(name) is not None:
            continue
        try:
            module = importlib.import_module(name)
        except Exception as error:
            plugins.errors.append(f"plugin module {name!r} (VADBENCH_PLUGINS) failed to load: {error}")
            continue
        if not plugins.manager.is_registered(module):
            plugins.manager.register(module, name=name)
            plugins.distributions[name] = f"module {name}"


def _fill(plugins: Plugins, hook: Any, registry: Registry[Any]) -> None:
    """Call each plugin's hook with a `register` bound to that plugin, so duplicates name both."""
    for impl in hook.get_hookimpls():
        source = getattr(impl.plugin, "__name__", impl.plugin_name)
        register = registry.registrar(source)
        try:
            impl.function(**({"register": register} if "register" in impl.argnames else {}))
        except UsageError:
            raise
        except Exception as error:
            dist = plugins.distributions.get(impl.plugin_name, impl.plugin_name)
            plugins.errors.append(
                f"plugin {impl.plugin_name!r} from {dist!r} failed in {hook.name}: {type(error).__name__}: {error}"
            )
