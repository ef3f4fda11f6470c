"""Many runs at once: specs from command-line choices, executed with resume through the run store."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from vadbench.options import route_overrides
from vadbench.plugins import Plugins, get_plugins
from vadbench.results import RunStore
from vadbench.runner import Runner
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
    """One validated spec per (method, seed), with `--set` assignments routed and typed."""
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
        for seed in seeds
    ]
    runner = Runner(plugins, progress=False)
    for spec in specs:
        runner.validate(spec)
    return specs


def run_specs(
    specs: Sequence[RunSpec], out: str | Path, *, plugins: Plugins | None = None, progress: bool = True
) -> list[RunResult]:
    """Run every spec not already finished in the store at `out`; return all their results."""
    store = RunStore(out)
    store.ensure_writable()
    runner = Runner(plugins or get_plugins(), progress=progress)
    results = []
    for index, spec in enumerate(specs, 1):
        label = f"[{index}/{len(specs)}] {spec.method} on {spec.dataset}, seed {spec.seed}"
        if store.is_finished(spec):
            _say(progress, f"{label}: finished earlier, skipped ({store.folder(spec)})")
            results.append(store.result(spec))
            continue
        result = runner.run(spec)
        store.write(result)
        _say(progress, f"{label}: {_summary(result)}")
        results.append(result)
    return results


def _summary(result: RunResult) -> str:
    if result.status != "ok":
        return f"FAILED: {result.error}"
    m, t = result.metrics, result.timings
    return f"AUC {100 * m['auc']:.2f}, AP {100 * m['ap']:.2f} ({t['total']:.1f} s on {result.device})"


def _say(enabled: bool, line: str) -> None:
    if enabled:
        print(line, file=sys.stderr, flush=True)
