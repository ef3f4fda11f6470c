"""Grid files: a TOML description of many runs, expanded to RunSpecs (execution is elsewhere).

A grid is the product methods x datasets x protocols x sweep points x seeds. Expansion only builds
and validates specs, so any executor can run them and the run store resumes a grid that was
interrupted. Example (see leaderboards/ for the committed grids)::

    title = "AUC against k"
    methods = ["rtfm"]                 # registered names, presets included
    datasets = ["synthetic"]           # default ["synthetic"]
    seeds = [0, 1, 2]                  # default [0, 1, 2]
    protocols = ["last"]               # default ["last"]; see vadbench.plan.protocols
    steps = 300                        # optional: default the dataset's suggestion, else the method's
    save_model = true                  # optional: keep each run's trained weights (as run --save-model)

    [options]                          # fixed overrides, keys as in `vadbench run --set`
    dataset.mu = 6                     # kind-qualified, name-qualified (rtfm.margin) or bare (k)

    [sweep]                            # each key a list of values; the runs are their product
    k = [1, 2, 4, 8]

    [table]                            # how `vadbench grid` renders the results
    kind = "leaderboard"               # leaderboard | ablation | comparison (vadbench.report.tables)
    baseline = "sultani-mil"           # comparison: every other method is compared with this one
    reported = "reported.toml"         # the papers' numbers (relative to this file), shown in
    experiment = "rtfm-table5"         # "reported" columns: the records of this experiment

An option qualified by a dataset name (``shanghaitech.root``) applies to that dataset only, so one
grid can hold several datasets. A method without a swept option is run once, not once per value.

`expand` needs the plugins (it checks names and options and drops defaults from the run keys);
`stored_runs` finds a grid's runs among stored results without them, from what each result records,
so that tables and figures of a finished grid need no plugin, torch or data root.
"""

from __future__ import annotations

import dataclasses
import itertools
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vadbench.api.errors import UsageError
from vadbench.api.types import RunResult, RunSpec
from vadbench.plan.protocols import GIVEN, TRAINING_PROTOCOLS, parse_protocol
from vadbench.plan.specs import build_specs
from vadbench.plan.widths import FEATURE_DEFAULTS

if TYPE_CHECKING:
    from vadbench.plugins.manager import Plugins

TABLE_KINDS = ("leaderboard", "ablation", "comparison")
_TOP_LEVEL = {"title", "methods", "datasets", "seeds", "protocols", "steps", "save_model", "options", "sweep",
              "table"}
_TABLE_KEYS = {"kind", "baseline", "reported", "experiment"}


@dataclass(frozen=True)
class TableSpec:
    """How the results of a grid are rendered."""

    kind: str = "leaderboard"
    baseline: str | None = None
    reported: Path | None = None
    experiment: str | None = None


@dataclass(frozen=True)
class Grid:
    """A parsed, structurally valid grid file (names and options are checked by `expand`)."""

    path: Path
    title: str
    methods: tuple[str, ...]
    datasets: tuple[str, ...] = ("synthetic",)
    seeds: tuple[int, ...] = (0, 1, 2)
    protocols: tuple[str, ...] = ("last",)
    steps: int | None = None
    save_model: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    table: TableSpec = TableSpec()

    @property
    def sweep_options(self) -> list[str]:
        """The swept option names without their qualifier (``method.k`` -> ``k``)."""
        return [key.rpartition(".")[2] for key in self.sweep]

    def swept_value(self, key: str, config: dict[str, Any]) -> Any:
        """The value of swept option `key` in a run's flat config ("-" when its components lack it)."""
        scope, _, name = key.rpartition(".")
        kinds = ["dataset"] if scope == "dataset" or scope in self.datasets else ["method", "dataset"]
        if scope == "method" or scope in self.methods:
            kinds = ["method"]
        return next((config[f"{kind}.{name}"] for kind in kinds if f"{kind}.{name}" in config), "-")


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed TOML file `path`, or a one-line UsageError naming it (`what`: what the file holds).

    TOML is UTF-8 by definition, so the file is decoded as UTF-8 whatever the locale says.
    """
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise UsageError(f"{path}: cannot read the {what} ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{path}: the {what} is not UTF-8 text (invalid byte at offset {error.start}); "
                         "save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML ({error})") from None


def load_grid(path: str | Path) -> Grid:
    """Read and check a grid file; every problem is a UsageError naming the file and the field."""
    path = Path(path)
    data = read_toml(path, "grid file")
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise UsageError(f"{path}: unknown field {unknown[0]!r}; fields are: {', '.join(sorted(_TOP_LEVEL))}")
    check = _Checker(path)
    table = check.table(data.get("table", {}))
    return Grid(
        path=path,
        title=check.string(data, "title", default=path.stem),
        methods=check.names(data, "methods", required=True),
        datasets=check.names(data, "datasets", default=("synthetic",)),
        seeds=check.seeds(data),
        protocols=check.protocols(data),
        steps=check.steps(data),
        save_model=check.boolean(data, "save_model"),
        options=check.mapping(data, "options"),
        sweep={key: check.values(f"sweep.{key}", value) for key, value in check.mapping(data, "sweep").items()},
        table=table,
    )


def override(
    grid: Grid,
    *,
    dataset: str | None = None,
    root: str | None = None,
    seeds: Sequence[int] | None = None,
    steps: int | None = None,
) -> Grid:
    """The grid with command-line choices applied: one dataset instead of the file's, its data root,
    other seeds, another schedule."""
    changes: dict[str, Any] = {}
    if dataset is not None:
        changes["datasets"] = (dataset,)
    if root is not None:
        targets = changes.get("datasets", grid.datasets)
        if len(targets) != 1:
            raise UsageError(f"--root: {grid.path} has several datasets ({', '.join(targets)}); "
                             "choose one with --dataset")
        changes["options"] = {**grid.options, f"{targets[0]}.root": root}
    if seeds is not None:
        changes["seeds"] = tuple(seeds)
    if steps is not None:
        changes["steps"] = steps
    return dataclasses.replace(grid, **changes)


def expand(grid: Grid, plugins: Plugins, *, device: str = "auto") -> list[RunSpec]:
    """The validated (`vadbench.plan.specs.validate`), de-duplicated RunSpecs of `grid`, ordered by dataset,
    protocol, method, sweep point, seed (each in file order), so that a table lists a method's sweep together."""
    for name in grid.methods:
        _named(grid, "methods", lambda n=name: plugins.methods.get(n))
    for name in grid.datasets:
        _named(grid, "datasets", lambda n=name: plugins.datasets.get(n))
    if grid.table.baseline is not None and grid.table.baseline not in grid.methods:
        raise UsageError(f"{grid.path}: table.baseline {grid.table.baseline!r} is not one of the grid's methods")
    specs: dict[str, RunSpec] = {}
    for dataset in grid.datasets:
        for protocol in grid.protocols:
            for point in _points(grid):
                assignments = _assignments({**grid.options, **point}, dataset, set(plugins.datasets.names()))
                try:
                    built = build_specs(
                        plugins, list(grid.methods), dataset, assignments, list(grid.seeds), grid.steps,
                        device, protocol,
                    )
                except UsageError as error:
                    raise UsageError(f"{grid.path}: options/sweep: {error}") from None
                for spec in built:
                    specs.setdefault(spec.key, spec)
    order = {name: index for index, name in enumerate(grid.methods)}
    # Stable: within a method the sweep points and seeds keep their file order.
    return sorted(specs.values(), key=lambda s: (grid.datasets.index(s.dataset), grid.protocols.index(s.protocol),
                                                 order[s.method]))


def stored_runs(
    grid: Grid, results: Sequence[RunResult], store: str | Path, *, precision: str = "fp32", compile: bool = False,
    threads: int | None = None,
) -> list[RunResult]:
    """The grid's runs among `results` (read from the run store `store`), in `expand`'s order, found without
    plugins from what each result records.

    A stored run is the run of a grid point (method, dataset, protocol, seed, and the grid's and the sweep
    point's options) when each of the point's options that it has is recorded in its config with the
    point's value (options that only locate the data aside), when every option its key names (stored keys
    name only options that differ from the defaults) is one of the point's, and when its schedule is the
    grid's. Only runs of `precision` and `compile` count, and no run trained in a stacked group (as
    `vadbench grid` without ``--executor stacked``). The CPU thread count is part of a run's key: with
    `threads`, only runs of that count (or of a GPU) count; without, a point must not have runs of several
    counts (which one to show is the user's choice). A point without a stored run, or with runs on two
    versions of the data (a feature file edited between them), is a usage error that says what to run.
    """
    candidates = [r for r in results if (r.spec.precision, r.spec.compile, r.spec.stacked) == (precision, compile, ())
                  and (threads is None or r.spec.threads in (None, threads))]
    chosen: dict[str, RunResult] = {}
    missing: list[str] = []
    for dataset in grid.datasets:
        for protocol in grid.protocols:
            for method in grid.methods:
                for point in _points(grid):
                    options = {**grid.options, **point}
                    for seed in grid.seeds:
                        found = [r for r in candidates if (r.spec.method, r.spec.dataset, r.spec.protocol, r.spec.seed)
                                 == (method, dataset, protocol, seed) and _is_run_of(grid, r, options)]
                        where = " ".join([f"{method} on {dataset} [{protocol}] seed {seed}",
                                          *(f"{k}={v}" for k, v in point.items())])
                        counts = sorted({r.spec.threads for r in found if r.spec.threads is not None})
                        if len(counts) > 1:
                            raise UsageError(f"{store}: runs of {grid.path} with {' and '.join(map(str, counts))} CPU "
                                             f"threads ({where}); choose one with --cpus-per-run N")
                        if len({r.spec.data for r in found}) > 1:
                            raise UsageError(f"{store}: runs of {grid.path} on {len({r.spec.data for r in found})} "
                                             f"versions of the data ({where}); run `vadbench grid {grid.path} --root "
                                             "DIR` to render the runs of the data under DIR")
                        missing += [] if found else [where]
                        chosen.update({r.spec.key: r for r in found if r.spec.key not in chosen})
    if missing:
        raise UsageError(f"runs of {grid.path} are not finished in {store} ({len(missing)} grid points without a "
                         f"stored run, e.g. {missing[0]}); run `vadbench grid {grid.path} --out {store}` first")
    return list(chosen.values())


def _is_run_of(grid: Grid, result: RunResult, options: dict[str, Any]) -> bool:
    """Whether `result` is the run of a grid point with `options` (`stored_runs`)."""
    spec, config = result.spec, result.config
    if "method" not in config:
        return False  # no recorded config (a run failed in its worker): its options cannot be compared
    expected: dict[str, Any] = {}
    for key, value in options.items():
        scope, _, name = key.rpartition(".")
        for kind in _kinds(grid, scope, spec):
            recorded = f"{kind}.{name}"
            if recorded in config and not (kind == "dataset" and name in spec.dataset_access):
                expected[recorded] = value  # a later key overrides an earlier one, as in `--set` and `expand`
    for name, value in config.get(FEATURE_DEFAULTS, {}).items():
        expected.setdefault(f"method.{name}", value)  # what `expand` gives an option the point leaves
    if any(config[k] != v and _text(config[k]) != _text(v) for k, v in expected.items()):
        return False
    names = [f"method.{k}" for k in spec.method_options] + [f"dataset.{k}" for k in spec.dataset_options]
    steps = spec.steps is None if grid.steps is None else config.get("steps") == grid.steps
    return steps and all(name in expected for name in names)


def _kinds(grid: Grid, scope: str, spec: RunSpec) -> list[str]:
    """Which of a run's components an option key qualified by `scope` sets (`vadbench.plugins.overrides`)."""
    if scope in ("", "method", "dataset"):
        return [scope] if scope else ["method", "dataset"]
    return ["method"] if scope == spec.method else ["dataset"] if scope == spec.dataset else []


def _points(grid: Grid) -> list[dict[str, Any]]:
    """The sweep points: each a mapping of swept option key -> value, in file order."""
    return [dict(zip(grid.sweep, values, strict=True)) for values in itertools.product(*grid.sweep.values())]


def _assignments(options: dict[str, Any], dataset: str, datasets: set[str]) -> list[str]:
    """``key=value`` texts for one dataset's runs, leaving out options qualified by another dataset."""
    texts = []
    for key, value in options.items():
        scope = key.rpartition(".")[0]
        if scope in datasets and scope != dataset:
            continue
        texts.append(f"{key}={_text(value)}")
    return texts


def _text(value: Any) -> str:
    """A TOML value as `--set` text (the registry parses it back to the option's type)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(_text, value))
    return str(value)


def _named(grid: Grid, field_name: str, lookup: Any) -> None:
    try:
        lookup()
    except UsageError as error:
        raise UsageError(f"{grid.path}: {field_name}: {error}") from None


class _Checker:
    """Type checks of grid fields; each error names the file and the field."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field_name: str, message: str) -> UsageError:
        return UsageError(f"{self.path}: {field_name}: {message}")

    def string(self, data: dict[str, Any], key: str, default: str) -> str:
        value = data.get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        return value

    def names(
        self, data: dict[str, Any], key: str, *, required: bool = False, default: tuple[str, ...] = ()
    ) -> tuple[str, ...]:
        if key not in data:
            if required:
                raise self.fail(key, "missing; list the registered names to run, e.g. methods = [\"rtfm\"]")
            return default
        value = data[key]
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise self.fail(key, f"expected a non-empty list of names, got {value!r}")
        return tuple(dict.fromkeys(value))

    def seeds(self, data: dict[str, Any]) -> tuple[int, ...]:
        value = data.get("seeds", [0, 1, 2])
        if not (isinstance(value, list) and value and all(_is_int(v) and v >= 0 for v in value)):
            raise self.fail("seeds", f"expected a non-empty list of non-negative integers, got {value!r}")
        return tuple(dict.fromkeys(value))

    def protocols(self, data: dict[str, Any]) -> tuple[str, ...]:
        value = data.get("protocols", ["last"])
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise self.fail("protocols", f"expected a non-empty list of protocol names, got {value!r}")
        try:
            protocols = tuple(dict.fromkeys(parse_protocol(v).text for v in value))
        except UsageError as error:
            raise self.fail("protocols", str(error)) from None
        if GIVEN in protocols:
            raise self.fail("protocols", f"{GIVEN!r} is the protocol of vadbench evaluate (weights from a file), not "
                            f"of a grid; known: {', '.join(TRAINING_PROTOCOLS)}")
        return protocols

    def boolean(self, data: dict[str, Any], key: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def steps(self, data: dict[str, Any]) -> int | None:
        value = data.get("steps")
        if value is not None and not (_is_int(value) and value >= 1):
            raise self.fail("steps", f"expected a positive integer, got {value!r}")
        return value

    def mapping(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        """A table of options; TOML dotted keys (``dataset.mu = 6``) are flattened back to ``"dataset.mu"``."""
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table of option = value, got {value!r}")
        return flatten(value)

    def values(self, key: str, value: Any) -> tuple[Any, ...]:
        if not (isinstance(value, list) and value):
            raise self.fail(key, f"expected a non-empty list of values to sweep, got {value!r}")
        return tuple(value)

    def table(self, value: Any) -> TableSpec:
        if not isinstance(value, dict):
            raise self.fail("table", f"expected a table, got {value!r}")
        unknown = sorted(set(value) - _TABLE_KEYS)
        if unknown:
            raise self.fail(f"table.{unknown[0]}", f"unknown; keys are: {', '.join(sorted(_TABLE_KEYS))}")
        kind = value.get("kind", "leaderboard")
        if kind not in TABLE_KINDS:
            raise self.fail("table.kind", f"must be one of {', '.join(TABLE_KINDS)}, got {kind!r}")
        baseline = value.get("baseline")
        if kind == "comparison" and not isinstance(baseline, str):
            raise self.fail("table.baseline", "a comparison table needs the name of the baseline method")
        reported, experiment = value.get("reported"), value.get("experiment")
        if reported is not None and not isinstance(reported, str):
            raise self.fail("table.reported", f"expected a path, got {reported!r}")
        if (reported is None) != (experiment is None) or not isinstance(experiment, str | None):
            raise self.fail("table.experiment", "table.reported and table.experiment (a name) go together")
        return TableSpec(kind, baseline, self.path.parent / reported if reported else None, experiment)


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as one mapping of dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
