"""Run specs from command-line choices: routed and typed options, canonical keys, data fingerprints.

A run's key must name exactly what determines its numbers, on every path that builds specs: options
equal to their defaults are dropped (`canonical`), the data is named by its content (`with_data`),
and results stored by older versions are brought to this form when read
(`vadbench.report.store.upgrade_stored`). The driver that executes specs is `vadbench.executors.driver`.

Without torch: specs are checked here for everything but the device (`validate`); the device is the
machine's, checked where runs are made (`vadbench.engine.runner.resolve_device`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vadbench.api.errors import UsageError
from vadbench.api.reduction import Reduction
from vadbench.api.types import PRECISIONS, RunSpec
from vadbench.plan.protocols import parse_protocol
from vadbench.plan.widths import data_defaults
from vadbench.plugins.overrides import route_overrides

if TYPE_CHECKING:
    from vadbench.plugins.manager import Plugins


def build_specs(
    plugins: Plugins,
    methods: Sequence[str],
    dataset: str,
    assignments: Iterable[str],
    seeds: Sequence[int],
    steps: int | None = None,
    device: str = "auto",
    protocol: str = "last",
) -> list[RunSpec]:
    """One validated (`validate`: all but the device), canonical spec per (method, seed), with `--set`
    assignments routed and typed, and the method's defaults for the dataset's data
    (`vadbench.plan.widths`) where the assignments leave them."""
    for name in methods:
        plugins.methods.get(name)
    plugins.datasets.get(dataset)
    method_options, dataset_options = route_overrides(assignments, list(methods), dataset, plugins)
    typed_dataset = plugins.datasets.parse_options(dataset, dataset_options)
    specs = [
        RunSpec(
            method=name,
            dataset=dataset,
            method_options=plugins.methods.parse_options(name, {
                **data_defaults(plugins, name, dataset, typed_dataset, method_options[name]), **method_options[name]
            }),
            dataset_options=typed_dataset,
            seed=seed,
            steps=steps,
            protocol=protocol,
            device=device,
        )
        for name in methods
        for seed in dict.fromkeys(seeds)
    ]
    for spec in specs:
        validate(plugins, spec)
    return [canonical(plugins, spec) for spec in specs]


def validate(plugins: Plugins, spec: RunSpec) -> None:
    """Raise UsageError for anything wrong in `spec` but its device, before any work starts: its method's and
    dataset's options, protocol, schedule and precision."""
    plugins.methods.config(spec.method, spec.method_options)
    plugins.datasets.config(spec.dataset, spec.full_dataset_options())
    parse_protocol(spec.protocol)
    if spec.steps is not None and spec.steps < 1:
        raise UsageError(f"steps must be at least 1, got {spec.steps}")
    if spec.precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {spec.precision!r}")


def canonical(plugins: Plugins, spec: RunSpec) -> RunSpec:
    """`spec` without the choices that equal what it gets anyway: options equal to the defaults of its
    method and dataset (a preset's values included) and a schedule equal to the one it would get
    without `--steps`. So ``--set k=3`` for RTFM (whose k is 3), ``--steps 200`` on the synthetic
    benchmark (which suggests 200) and a plain run are one run with one key, on every path that builds
    specs (`run`, grids, every executor). `spec` must be valid (`validate`)."""
    method = dataclasses.asdict(plugins.methods.config(spec.method))
    dataset = dataclasses.asdict(plugins.datasets.config(spec.dataset))
    options = dataclasses.replace(
        spec,
        method_options={k: v for k, v in spec.method_options.items() if method[k] != v},
        dataset_options={k: v for k, v in spec.dataset_options.items() if dataset[k] != v},
        steps=None,
        method_revision=plugins.methods.get(spec.method).cls.revision,
    )
    if spec.steps is not None and spec.steps != schedule(plugins, options):
        return dataclasses.replace(options, steps=spec.steps)
    return options


def with_data(specs: Sequence[RunSpec], plugins: Plugins) -> list[RunSpec]:
    """`specs` keyed on the content of their data: access options (`Dataset.access_options`, such as the
    root) moved to `dataset_access`, and the data's fingerprint set, computed once per dataset configuration
    and training-input reduction (the data as the run's method reads it).

    Done before the store is asked which runs are finished: a copied root, or the same root spelled
    another way, then finds the runs already made, and an edited feature file does not.
    """
    fingerprints: dict[str, str | None] = {}
    keyed = []
    for spec in specs:
        options = spec.full_dataset_options()
        reduction = training_reduction(plugins, spec)
        configuration = repr((spec.dataset, sorted(options.items()), reduction.key))
        if configuration not in fingerprints:
            fingerprints[configuration] = data_fingerprint(plugins, spec.dataset, options, reduction)
        access = plugins.datasets.get(spec.dataset).cls.access_options
        keyed.append(replace(
            spec,
            dataset_options={k: v for k, v in options.items() if k not in access},
            dataset_access={k: v for k, v in options.items() if k in access},
            data=fingerprints[configuration],
        ))
    return keyed


def schedule(plugins: Plugins, spec: RunSpec) -> int:
    """The training steps of `spec`: its own, else its dataset's suggestion, else its method's published
    schedule (known without loading any data)."""
    if spec.steps is not None:
        return spec.steps
    suggested = plugins.datasets.create(spec.dataset, spec.dataset_options).suggested_steps()
    return suggested or int(plugins.methods.config(spec.method, spec.method_options).steps)


def training_reduction(plugins: Plugins, spec: RunSpec) -> Reduction:
    """How `spec`'s method reduces its training videos: its data is keyed and loaded reduced this way."""
    return plugins.methods.create(spec.method, spec.method_options).declarations().training_input.reduction


def data_fingerprint(plugins: Plugins, name: str, options: dict[str, Any], reduction: Reduction) -> str | None:
    """The fingerprint of dataset `name`'s data under `options`, reduced by `reduction` (None: its options
    define the data).

    An adapter that keeps set access options out of the key but gives no fingerprint would let different
    data share run keys: refused, naming the plugin.
    """
    entry = plugins.datasets.get(name)
    fingerprint = plugins.datasets.create(name, options).fingerprint(reduction)
    given = sorted(option for option in entry.cls.access_options if options.get(option))
    if given and fingerprint is None:
        raise UsageError(f"dataset {name!r} from {entry.source}: it keeps the options {', '.join(given)} out of "
                         "the run key but gives no fingerprint of its data")
    return fingerprint
