"""`--set key=value` routing: which method or dataset an option override belongs to.

A key may be qualified by a component name (``rtfm.k=4``) or by its kind (``method.k``,
``dataset.mu``); an unqualified key goes to every selected component that has that option. A key
that no selected component has, or that both a method and the dataset have, is a usage error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vadbench.api.errors import UsageError
from vadbench.plugins.registry import option_names

if TYPE_CHECKING:  # the manager imports the method contract, and torch with it: not needed to route options
    from vadbench.plugins.manager import Plugins


def parse_assignment(text: str) -> tuple[str, str]:
    """``"key=value"`` -> (key, value), or a usage error naming the malformed text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--set {text!r}: expected key=value, for example --set k=4")
    return key.strip(), value.strip()


def route_overrides(
    assignments: Iterable[str], methods: list[str], dataset: str, plugins: Plugins
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Split `--set` assignments into per-method option dicts and the dataset's option dict."""
    method_options: dict[str, dict[str, Any]] = {name: {} for name in methods}
    dataset_options: dict[str, Any] = {}
    method_fields = {name: option_names(plugins.methods.get(name).cls.Config) for name in methods}
    dataset_fields = option_names(plugins.datasets.get(dataset).cls.Config)
    for text in assignments:
        key, value = parse_assignment(text)
        scope, dot, option = key.rpartition(".")
        if dot and scope not in ("method", "dataset", dataset, *methods):
            raise UsageError(
                f"--set {text!r}: {scope!r} is not a selected method or dataset; "
                f"use one of: method, dataset, {', '.join([*methods, dataset])}"
            )
        name = option if dot else key
        targets = [m for m in methods if name in method_fields[m] and scope in ("", "method", m)]
        to_dataset = name in dataset_fields and scope in ("", "dataset", dataset)
        if not targets and not to_dataset:
            known = sorted({*dataset_fields, *(f for m in methods for f in method_fields[m])})
            raise UsageError(f"--set {text!r}: no selected method or dataset has option {name!r}; "
                             f"options are: {', '.join(known)}")
        if targets and to_dataset:
            raise UsageError(f"--set {text!r}: both the method and the dataset have option {name!r}; "
                             f"write method.{name}= or dataset.{name}=")
        for method in targets:
            method_options[method][name] = value
        if to_dataset:
            dataset_options[name] = value
    return method_options, dataset_options
