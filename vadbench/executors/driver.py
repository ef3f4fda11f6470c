"""The driver of many runs: skip what the store has, hand the rest to an executor, store what comes back.

The executor only decides where runs execute; this driver owns everything around them, the same for
every executor: resuming through the run store, the per-run lines and progress, the retry policy
(`results_with_retry`), and storing each benchmark's test ground truth for the report path. It also
creates the executor a command line names (`create_executor`).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from vadbench.api.errors import UsageError
from vadbench.api.executor import Executor, WorkerFailure
from vadbench.api.types import RunResult, RunSpec
from vadbench.engine.runner import check_data
from vadbench.engine.saved_models import has_model, write_model
from vadbench.executors.serial import SerialExecutor
from vadbench.plan.specs import training_reduction, with_data
from vadbench.plugins.manager import Plugins, get_plugins
from vadbench.plugins.registry import option_names
from vadbench.report.aggregate import recorded
from vadbench.report.store import RunStore, TestTruth

#: Attempts per run: a worker failure is retried once, then the run is stored as failed.
ATTEMPTS = 2


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
    the bars' redraws would be most of what is written, so there are lines instead (a run's progress
    every half minute, `vadbench.engine.progress`; worker processes always write lines). Either way a run
    that will take long says so before most of its steps. The line of a
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
    specs = executor.specs_as_run(specs, plugins)
    copies = Counter(spec.key for spec in specs)
    labels: dict[str, str] = {}
    for index, spec in enumerate(specs, 1):
        labels.setdefault(spec.key, f"[{index}/{len(specs)}] {spec.method} on {spec.dataset}, seed {spec.seed}")
    finished = {spec.key: store.result(spec) for spec in specs
                if store.is_finished(spec) and not (spec.save_model and not has_model(store.folder(spec)))}
    for result in finished.values():
        result.config.update(recorded(plugins, result.spec))
    pending = [spec for key, spec in {spec.key: spec for spec in specs}.items() if key not in finished]
    results: dict[str, RunResult] = {}
    bars = progress and sys.stderr.isatty()
    with ExitStack() as stack:
        if pending:  # before the bar, so that a missing extra is a clean one-line error
            stack.enter_context(executor.session(plugins, progress=progress))
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
                if result.weights:  # before result.json, which marks the run finished
                    store_model(store, result)
                store.write(result)
                arrived(result, _summary(result))
    return [results[spec.key] for spec in specs]


def results_with_retry(
    executor: Executor, specs: Sequence[RunSpec], on_retry: Callable[[WorkerFailure], None]
) -> Generator[RunResult, None, None]:
    """Each spec's result as it arrives; a worker failure is retried once, after the other runs.

    Retrying after the rest of the grid gives a lost node or a busy GPU time to come back. A failure
    that will be retried is passed to `on_retry`; a run that fails on every attempt is yielded as a
    failed `RunResult` whose error gives each attempt's failure.
    """
    errors: dict[str, list[str]] = {}
    for attempt in range(1, ATTEMPTS + 1):
        if not specs:
            return
        retry = []
        for outcome in executor.execute(specs):
            if isinstance(outcome, RunResult):
                yield outcome
                continue
            errors.setdefault(outcome.spec.key, []).append(outcome.error)
            if attempt < ATTEMPTS:
                on_retry(outcome)
                retry.append(outcome.spec)
            else:
                yield failed_result(outcome.spec, errors[outcome.spec.key])
        specs = retry


def failed_result(spec: RunSpec, errors: Sequence[str]) -> RunResult:
    """The stored record of a run whose worker failed on every attempt."""
    attempts = "; ".join(f"attempt {i}: {error}" for i, error in enumerate(errors, 1))
    return RunResult(spec, status="failed", error=f"worker failed {len(errors)} times ({attempts})")


def store_model(store: RunStore, result: RunResult) -> None:
    """The run's weights into its folder (`vadbench.engine.saved_models`), or one line naming the folder."""
    try:
        write_model(store.folder(result.spec), result)
    except OSError as error:
        raise UsageError(f"--out {store.root}: cannot store the weights of run {result.spec.key} "
                         f"({error.strerror or error})") from None


def store_test_truth(store: RunStore, plugins: Plugins, spec: RunSpec) -> None:
    """Store the test ground truth of `spec`'s benchmark unless the store has it: the driver loads the
    benchmark for it once per benchmark and store (runs may train elsewhere, on a worker or a Ray node),
    reduced as the run's method reduces it: the data the run was keyed on (`with_data`), already prepared."""
    if store.has_test_truth(spec):
        return
    dataset = plugins.datasets.create(spec.dataset, spec.full_dataset_options())
    benchmark = dataset.load(training_reduction(plugins, spec))
    check_data(spec, benchmark)
    store.write_test_truth(spec, TestTruth.of(benchmark.test))


def create_executor(plugins: Plugins, name: str, options: Mapping[str, Any]) -> Executor:
    """The registered executor `name` with `options`; an option it does not take is named as a flag."""
    entry = plugins.executors.get(name)
    known = option_names(entry.cls.Config)
    for option in options:
        if option not in known:
            takes = ", ".join(f"--{flag(k)}" for k in known) or "no options"
            raise UsageError(f"--{flag(option)} does not apply to --executor {name} (it takes {takes})")
    return plugins.executors.create(name, options)


def flag(option: str) -> str:
    """The command-line flag of an executor option: ``gpus_per_run`` -> ``gpus-per-run``."""
    return option.replace("_", "-")


def _summary(result: RunResult) -> str:
    if result.status != "ok":
        return f"FAILED: {result.error}"
    m, t = result.metrics, result.timings
    return f"AUC {100 * m['auc']:.2f}, AP {100 * m['ap']:.2f} ({t['total']:.1f} s on {result.device})"


def _say(enabled: bool, line: str) -> None:
    if enabled:
        tqdm.write(line, file=sys.stderr)
