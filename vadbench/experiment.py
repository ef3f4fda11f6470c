"""Many runs at once: specs from command-line choices, executed with resume through the run store."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import ExitStack, closing
from pathlib import Path

from tqdm.auto import tqdm

from vadbench.executor import Executor, WorkerFailure, results_with_retry
from vadbench.executors.serial import SerialExecutor
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
    run that failed is written even without `progress`: nothing else says why it failed.
    """
    store = RunStore(out)
    store.ensure_writable()
    executor = executor or SerialExecutor(SerialExecutor.Config())
    copies = Counter(spec.key for spec in specs)
    labels: dict[str, str] = {}
    for index, spec in enumerate(specs, 1):
        labels.setdefault(spec.key, f"[{index}/{len(specs)}] {spec.method} on {spec.dataset}, seed {spec.seed}")
    finished = {spec.key: store.result(spec) for spec in specs if store.is_finished(spec)}
    pending = [spec for key, spec in {spec.key: spec for spec in specs}.items() if key not in finished]
    results: dict[str, RunResult] = {}
    bars = progress and sys.stderr.isatty()
    with ExitStack() as stack:
        if pending:  # before the bar, so that a missing extra is a clean one-line error
            stack.enter_context(executor.session(plugins or get_plugins(), progress=bars))
        bar = stack.enter_context(tqdm(total=len(specs), desc="runs", unit="run", disable=not bars,
                                       file=sys.stderr))

        def arrived(result: RunResult, line: str) -> None:
            results[result.spec.key] = result
            _say(progress or result.status != "ok", f"{labels[result.spec.key]}: {line}")  # why it failed, always
            bar.update(copies[result.spec.key])

        def retrying(failure: WorkerFailure) -> None:
            _say(progress, f"{labels[failure.spec.key]}: worker failed ({failure.error}); will retry after the others")

        for result in finished.values():
            arrived(result, f"finished earlier, skipped ({store.folder(result.spec)})")
        with closing(results_with_retry(executor, pending, retrying)) as arrivals:
            for result in arrivals:
                store.write(result)
                arrived(result, _summary(result))
    return [results[spec.key] for spec in specs]


def _summary(result: RunResult) -> str:
    if result.status != "ok":
        return f"FAILED: {result.error}"
    m, t = result.metrics, result.timings
    return f"AUC {100 * m['auc']:.2f}, AP {100 * m['ap']:.2f} ({t['total']:.1f} s on {result.device})"


def _say(enabled: bool, line: str) -> None:
    if enabled:
        tqdm.write(line, file=sys.stderr)
