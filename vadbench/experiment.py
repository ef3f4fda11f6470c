"""Many runs at once: specs from command-line choices, executed with resume through the run store.

The driver (`run_specs`) is also where a result gets what the report path needs, so that tables and
figures read the store without plugins, torch or a data root: the plugins' report metadata in each
result's config (`vadbench.aggregate.report_metadata`) and, once per benchmark, its test ground truth
(`vadbench.results.TestTruth`).
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import ExitStack, closing
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from vadbench.aggregate import report_metadata
from vadbench.errors import UsageError
from vadbench.executor import Executor, WorkerFailure, results_with_retry
from vadbench.executors.serial import SerialExecutor
from vadbench.options import route_overrides
from vadbench.plugins import Plugins, get_plugins
from vadbench.pooling import Reduction
from vadbench.results import RunStore, TestTruth
from vadbench.runner import Runner, check_data, schedule
from vadbench.types import RunResult, RunSpec


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
    """One validated, canonical spec per (method, seed), with `--set` assignments routed and typed."""
    for name in methods:
        plugins.methods.get(name)
    plugins.datasets.get(dataset)
    method_options, dataset_options = route_overrides(assignments, list(methods), dataset, plugins)
    typed_dataset = plugins.datasets.parse_options(dataset, dataset_options)
    specs = [
        RunSpec(
            method=name,
            dataset=dataset,
            method_options=plugins.methods.parse_options(name, method_options[name]),
            dataset_options=typed_dataset,
            seed=seed,
            steps=steps,
            protocol=protocol,
            device=device,
        )
        for name in methods
        for seed in dict.fromkeys(seeds)
    ]
    runner = Runner(plugins, progress=False)
    for spec in specs:
        runner.validate(spec)
    return [canonical(plugins, spec) for spec in specs]


def canonical(plugins: Plugins, spec: RunSpec) -> RunSpec:
    """`spec` without the choices that equal what it gets anyway: options equal to the defaults of its
    method and dataset (a preset's values included) and a schedule equal to the one it would get
    without `--steps`. So ``--set k=3`` for RTFM (whose k is 3), ``--steps 200`` on the synthetic
    benchmark (which suggests 200) and a plain run are one run with one key, on every path that builds
    specs (`run`, grids, every executor). `spec` must be valid (`Runner.validate`)."""
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


def upgrade_stored(plugins: Plugins, result: RunResult) -> RunResult:
    """A result stored by an older version, as this version stores it: the options that only locate the
    data moved out of its key, its spec canonical (an older version may have stored a run under a key that
    named default values) and its plugins' report metadata in its config. A result whose method, dataset
    or options this installation does not know stays as it was stored."""
    spec = result.spec
    try:
        plugins.methods.config(spec.method, spec.method_options)
        plugins.datasets.config(spec.dataset, spec.full_dataset_options())
    except UsageError:
        return result
    access = plugins.datasets.get(spec.dataset).cls.access_options
    located = replace(spec, dataset_options={k: v for k, v in spec.dataset_options.items() if k not in access},
                      dataset_access={**spec.dataset_access,
                                      **{k: v for k, v in spec.dataset_options.items() if k in access}})
    # The revision it was made with stays: a run of an older revision of the method is another run.
    upgraded = replace(canonical(plugins, located), method_revision=spec.method_revision)
    return replace(result, spec=upgraded, config={**result.config, **recorded(plugins, spec)})


def recorded(plugins: Plugins, spec: RunSpec) -> dict[str, Any]:
    """The report metadata of `spec`'s method and dataset (`report_metadata`), for its result's config."""
    return report_metadata(plugins.methods.get(spec.method).cls, plugins.datasets.get(spec.dataset).cls)


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
        reduction = plugins.methods.create(spec.method, spec.method_options).training_input.reduction
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


def data_fingerprint(plugins: Plugins, name: str, options: dict[str, Any], reduction: Reduction) -> str | None:
    """The fingerprint of dataset `name`'s data under `options`, reduced by `reduction` (None: its options
    define the data).

    An adapter that keeps access options out of the key but gives no fingerprint would let different
    data share run keys: refused, naming the plugin.
    """
    entry = plugins.datasets.get(name)
    fingerprint = plugins.datasets.create(name, options).fingerprint(reduction)
    access = entry.cls.access_options
    if access and fingerprint is None:
        raise UsageError(f"dataset {name!r} from {entry.source}: it declares access options "
                         f"({', '.join(sorted(access))}) but gives no fingerprint of its data")
    return fingerprint


def run_specs(
    specs: Sequence[RunSpec],
    out: str | Path,
    *,
    plugins: Plugins | None = None,
    progress: bool = True,
    executor: Executor | None = None,
) -> list[RunResult]:
    """Run every spec not already finished in the store at `out`; return all their results, in spec order.

    `executor` (default: serial) runs them; each result is stored as soon as it arrives, so Ctrl-C
    loses only the runs in flight. A worker failure is reported and retried once after the other
    runs; a second one stores the run as failed. With `progress`, a line per run, and on a terminal a
    bar that counts the runs (finished earlier ones included) and per-step bars; in a log file or pipe
    the bars' redraws would be most of what is written, so there are only the lines. The line of a
    run that failed is written even without `progress`: nothing else says why it failed. Runs are keyed
    on their data's content first (`with_data`). Every result gets its plugins' report metadata, and the
    store the test ground truth of every benchmark with a successful run (`store_test_truth`), so the
    results of earlier versions gain both when their command is repeated.
    """
    store = RunStore(out)
    store.ensure_writable()
    plugins = plugins or get_plugins()
    specs = with_data(specs, plugins)
    executor = executor or SerialExecutor(SerialExecutor.Config())
    specs = executor.plan(specs, plugins)
    copies = Counter(spec.key for spec in specs)
    labels: dict[str, str] = {}
    for index, spec in enumerate(specs, 1):
        labels.setdefault(spec.key, f"[{index}/{len(specs)}] {spec.method} on {spec.dataset}, seed {spec.seed}")
    finished = {spec.key: store.result(spec) for spec in specs if store.is_finished(spec)}
    for result in finished.values():
        result.config.update(recorded(plugins, result.spec))
    pending = [spec for key, spec in {spec.key: spec for spec in specs}.items() if key not in finished]
    results: dict[str, RunResult] = {}
    bars = progress and sys.stderr.isatty()
    with ExitStack() as stack:
        if pending:  # before the bar, so that a missing extra is a clean one-line error
            stack.enter_context(executor.session(plugins, progress=bars))
        bar = stack.enter_context(tqdm(total=len(specs), desc="runs", unit="run", disable=not bars,
                                       file=sys.stderr))

        def arrived(result: RunResult, line: str) -> None:
            results[result.spec.key] = result
            if result.status == "ok":
                store_test_truth(store, plugins, result.spec)
            _say(progress or result.status != "ok", f"{labels[result.spec.key]}: {line}")  # why it failed, always
            bar.update(copies[result.spec.key])

        def retrying(failure: WorkerFailure) -> None:
            _say(progress, f"{labels[failure.spec.key]}: worker failed ({failure.error}); will retry after the others")

        for result in finished.values():
            arrived(result, f"finished earlier, skipped ({store.folder(result.spec)})")
        with closing(results_with_retry(executor, pending, retrying)) as arrivals:
            for result in arrivals:
                result.config.update(recorded(plugins, result.spec))
                store.write(result)
                arrived(result, _summary(result))
    return [results[spec.key] for spec in specs]


def store_test_truth(store: RunStore, plugins: Plugins, spec: RunSpec) -> None:
    """Store the test ground truth of `spec`'s benchmark unless the store has it: the driver loads the
    benchmark for it once per benchmark and store (runs may train elsewhere, on a worker or a Ray node)."""
    if store.has_test_truth(spec):
        return
    benchmark = plugins.datasets.create(spec.dataset, spec.full_dataset_options()).load()
    check_data(spec, benchmark)
    store.write_test_truth(spec, TestTruth.of(benchmark.test))


def _summary(result: RunResult) -> str:
    if result.status != "ok":
        return f"FAILED: {result.error}"
    m, t = result.metrics, result.timings
    return f"AUC {100 * m['auc']:.2f}, AP {100 * m['ap']:.2f} ({t['total']:.1f} s on {result.device})"


def _say(enabled: bool, line: str) -> None:
    if enabled:
        tqdm.write(line, file=sys.stderr)
