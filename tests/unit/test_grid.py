"""Grid files: parsing, validation errors naming file and field, expansion to RunSpecs, resume, and
finding a grid's runs in a store without plugins."""

import dataclasses

import pytest
from conftest import TINY_SYNTHETIC

from vadbench.api.errors import UsageError
from vadbench.executors.driver import run_specs
from vadbench.executors.serial import SerialExecutor
from vadbench.executors.stacked import StackedExecutor
from vadbench.plan.grid import expand, load_grid, override, stored_runs
from vadbench.plan.specs import build_specs
from vadbench.plugins.manager import get_plugins
from vadbench.report.store import RunStore

TINY_OPTIONS = "\n".join(f"dataset.{key} = {value}" for key, value in TINY_SYNTHETIC.items() if key != "steps")


def write(tmp_path, text, name="grid.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_minimal_grid_gets_the_defaults(tmp_path):
    grid = load_grid(write(tmp_path, 'methods = ["rtfm"]'))
    assert grid.title == "grid" and grid.datasets == ("synthetic",) and grid.seeds == (0, 1, 2)
    assert grid.protocols == ("last",) and grid.steps is None and grid.table.kind == "leaderboard"


def test_dotted_and_quoted_option_keys_are_the_same(tmp_path):
    dotted = load_grid(write(tmp_path, 'methods = ["rtfm"]\n[options]\ndataset.mu = 4\nrtfm.k = 2', "a.toml"))
    quoted = load_grid(write(tmp_path, 'methods = ["rtfm"]\n[options]\n"dataset.mu" = 4\n"rtfm.k" = 2', "b.toml"))
    assert dotted.options == quoted.options == {"dataset.mu": 4, "rtfm.k": 2}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('methods = ["rtfm"', "not valid TOML"),
        ('seeds = [0]', "methods: missing"),
        ('methods = "rtfm"', "methods: expected a non-empty list"),
        ('methods = ["rtfm"]\nseeds = "0,1"', "seeds: expected a non-empty list of non-negative integers"),
        ('methods = ["rtfm"]\nsteps = 0', "steps: expected a positive integer"),
        ('methods = ["rtfm"]\nprotocols = ["best"]', "protocols: unknown protocol 'best'"),
        ('methods = ["rtfm"]\nmethod = ["rtfm"]', "unknown field 'method'"),
        ('methods = ["rtfm"]\n[sweep]\nk = 3', "sweep.k: expected a non-empty list"),
        ('methods = ["rtfm"]\n[table]\nkind = "plot"', "table.kind: must be one of"),
        ('methods = ["rtfm"]\n[table]\nkind = "comparison"', "table.baseline"),
        ('methods = ["rtfm"]\n[table]\nreported = "r.toml"', "table.experiment"),
    ],
)
def test_structural_errors_name_the_file_and_the_field(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(UsageError, match=needle) as error:
        load_grid(path)
    assert str(error.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('methods = ["rtfx"]', "methods: unknown method 'rtfx'"),
        ('methods = ["rtfm"]\ndatasets = ["ucf"]', "datasets: unknown dataset 'ucf'"),
        ('methods = ["rtfm"]\n[sweep]\nk = ["three"]', "options/sweep: method 'rtfm': option 'k' expects int"),
        ('methods = ["rtfm"]\n[options]\nnonsense = 1', "no selected method or dataset has option"),
        ('methods = ["rtfm"]\n[table]\nkind = "comparison"\nbaseline = "sultani-mil"', "table.baseline"),
    ],
)
def test_names_and_options_are_checked_when_expanding(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(UsageError, match=needle) as error:
        expand(load_grid(path), get_plugins())
    assert str(error.value).startswith(f"{path}: ")


def test_expansion_is_the_product_without_duplicates_in_method_order(tmp_path):
    grid = load_grid(write(tmp_path, """
methods = ["sultani-mil", "rtfm"]
seeds = [0, 1]
protocols = ["last", "oracle-test:every=5"]
steps = 7
[options]
dataset.mu = 4
[sweep]
k = [1, 2, 3]
"""))
    specs = expand(grid, get_plugins())
    # sultani-mil has no k, so it runs once per seed and protocol; rtfm once per k, seed and protocol.
    assert len(specs) == 2 * (2 + 3 * 2) and len({s.key for s in specs}) == len(specs)
    assert [s.protocol for s in specs[:8]] == ["last"] * 8 and specs[8].protocol == "oracle-test"
    assert [(s.method, s.method_options.get("k"), s.seed) for s in specs[:8]] == [
        ("sultani-mil", None, 0), ("sultani-mil", None, 1),
        ("rtfm", 1, 0), ("rtfm", 1, 1), ("rtfm", 2, 0), ("rtfm", 2, 1), ("rtfm", None, 0), ("rtfm", None, 1),
    ]  # k = 3 is rtfm's default, so that run is the plain rtfm run (see the next test)
    assert all(s.steps == 7 and s.dataset_options == {"mu": 4} for s in specs)


def test_a_swept_default_is_the_same_run_as_no_override(tmp_path):
    swept = load_grid(write(tmp_path, 'methods = ["rtfm"]\nseeds = [0]\n[sweep]\nk = [3]\nmargin = [100.0]', "a.toml"))
    plain = load_grid(write(tmp_path, 'methods = ["rtfm"]\nseeds = [0]\n[options]\ndataset.mu = 6', "b.toml"))
    assert [s.key for s in expand(swept, get_plugins())] == [s.key for s in expand(plain, get_plugins())]
    assert swept.swept_value("k", {"method.k": 3, "dataset.mu": 6}) == 3
    assert swept.swept_value("dataset.mu", {"method.mu": 1, "dataset.mu": 6}) == 6
    assert swept.swept_value("k", {"dataset.mu": 6}) == "-"


def test_a_value_equal_to_the_default_gives_the_same_key_on_every_path(tmp_path):
    """run, grid, stacked executor and presets: k = 3 (RTFM's default), 200 steps (the synthetic benchmark's
    suggestion) and a preset's own value are the runs without them."""
    plugins = get_plugins()

    def keys(method, assignments=(), steps=None, seeds=(0,)):
        return [s.key for s in build_specs(plugins, [method], "synthetic", list(assignments), list(seeds), steps)]

    assert keys("rtfm", ["k=3"]) == keys("rtfm", steps=200) == keys("rtfm", ["rtfm.k=3", "dataset.mu=6"], 200) \
        == keys("rtfm")
    assert keys("rtfm", steps=201) != keys("rtfm") and keys("rtfm", ["dataset.steps=300"], 300) != keys("rtfm")
    assert keys("rtfm-fm", ["use_fm=true", "use_pdc=false", "k=3"], 200) == keys("rtfm-fm") != keys("rtfm")
    assert keys("rtfm-fm", ["use_fm=false"]) != keys("rtfm-fm")
    grid = load_grid(write(tmp_path, 'methods = ["rtfm"]\nseeds = [0]\nsteps = 200\n[options]\nk = 3'))
    assert [s.key for s in expand(grid, plugins)] == keys("rtfm")
    stacked = StackedExecutor(StackedExecutor.Config())
    as_run = stacked.specs_as_run(build_specs(plugins, ["rtfm"], "synthetic", ["k=3"], [0, 1], 200), plugins)
    assert [s.key for s in as_run] == [
        s.key for s in stacked.specs_as_run(build_specs(plugins, ["rtfm"], "synthetic", [], [0, 1]), plugins)]


def test_dataset_qualified_options_apply_to_that_dataset_only(tmp_path):
    grid = load_grid(write(tmp_path, """
methods = ["rtfm"]
datasets = ["synthetic", "ucsd-ped2"]
seeds = [0]
[options]
synthetic.mu = 4
ucsd-ped2.root = "/nowhere"
"""))
    by_dataset = {s.dataset: s.dataset_options for s in expand(grid, get_plugins())}
    assert by_dataset == {"synthetic": {"mu": 4}, "ucsd-ped2": {"root": "/nowhere"}}


def test_command_line_overrides(tmp_path):
    grid = load_grid(write(tmp_path, 'methods = ["rtfm"]\ndatasets = ["synthetic", "ucsd-ped2"]'))
    with pytest.raises(UsageError, match="choose one with --dataset"):
        override(grid, root="/data")
    chosen = override(grid, dataset="ucsd-ped2", root="/data", seeds=[5], steps=3)
    assert chosen.datasets == ("ucsd-ped2",) and chosen.seeds == (5,) and chosen.steps == 3
    assert chosen.options == {"ucsd-ped2.root": "/data"}


def test_an_interrupted_grid_resumes_without_redoing_finished_runs(tmp_path):
    grid = load_grid(write(tmp_path, f'methods = ["rtfm-baseline", "sultani-mil"]\nseeds = [0, 1]\nsteps = 3\n'
                                     f"[options]\n{TINY_OPTIONS}"))
    serial = SerialExecutor(SerialExecutor.Config())  # as the driver runs them: with their threads in the key
    specs = serial.specs_as_run(expand(grid, get_plugins(), device="cpu"), get_plugins())
    first = run_specs(specs[:2], tmp_path / "runs", progress=False)  # "interrupted" after two runs
    store = RunStore(tmp_path / "runs")
    assert [store.is_finished(s) for s in specs] == [True, True, False, False]
    # Expanding the same file again gives the same keys, so the finished runs are reused as stored.
    again = serial.specs_as_run(expand(load_grid(grid.path), get_plugins(), device="cpu"), get_plugins())
    assert [s.key for s in again] == [s.key for s in specs]
    results = run_specs(again, tmp_path / "runs", progress=False)
    assert all(store.is_finished(s) for s in specs)
    assert [r.metrics["auc"] for r in results[:2]] == [r.metrics["auc"] for r in first]
    assert results[0].timings == first[0].timings  # read back from the store, not trained again


def stored(specs, plugins):
    """Results of `specs` with the config the runner records (the flat options and the schedule) and the
    report metadata the driver adds."""
    from vadbench.api.types import RunResult
    from vadbench.engine.runner import flat_config
    from vadbench.plan.specs import schedule
    from vadbench.report.aggregate import recorded

    results = []
    for spec in specs:
        method = plugins.methods.create(spec.method, spec.method_options)
        dataset = plugins.datasets.config(spec.dataset, spec.full_dataset_options())
        config = {**flat_config(spec, method, dataset), "steps": schedule(plugins, spec), **recorded(plugins, spec)}
        results.append(RunResult(spec, "ok", metrics={"auc": 0.5, "ap": 0.5, "ap_trapz": 0.5}, config=config))
    return results


@pytest.mark.parametrize("text", [
    'methods = ["rtfm", "sultani-mil"]\nseeds = [0, 1]\n[sweep]\nk = [1, 3]',  # 3: RTFM's default
    'methods = ["rtfm"]\nsteps = 200\n[options]\ndataset.mu = 6\nrtfm.margin = 100.0',  # defaults, given
    'methods = ["rtfm-fm", "rtfm"]\nseeds = [2]\n[options]\nuse_fm = true\n[sweep]\n"dataset.abnormal_subset" = [8, 0]',
    # A name-qualified key after a bare one overrides it for that method (as `--set` routes them).
    'methods = ["rtfm", "sultani-mil"]\nseeds = [0]\n[options]\nbatch_size = 8\n"sultani-mil.batch_size" = 16',
])
def test_a_grids_stored_runs_are_found_without_plugins_exactly_as_expanded(tmp_path, text):
    """`stored_runs` (the report path, no plugins) finds the runs `expand` (the run path) keys, and no
    other run of the store: not the same method with another option, schedule, precision or stacking."""
    plugins = get_plugins()
    grid = load_grid(write(tmp_path, text))
    ours = stored(expand(grid, plugins), plugins)
    other = load_grid(write(tmp_path, 'methods = ["rtfm", "sultani-mil", "rtfm-fm"]\nseeds = [0, 1, 2]\n'
                                      "steps = 7\n[sweep]\nk = [4]\nmargin = [50.0, 200.0]\n", "other.toml"))
    others = stored(expand(other, plugins), plugins)
    others += stored([dataclasses.replace(r.spec, precision="bf16") for r in ours], plugins)
    others += stored([dataclasses.replace(r.spec, stacked=(0, 1)) for r in ours], plugins)
    found = stored_runs(grid, others + ours, tmp_path)
    assert [r.spec.key for r in found] == [r.spec.key for r in ours]


#: UR-DMU's published widths: on the 64-d synthetic features its defaults are narrower (`Config.for_data`).
PUBLISHED_URDMU = '"ur-dmu.width" = 512\n"ur-dmu.heads" = 4\n"ur-dmu.head_dim" = 128\n"ur-dmu.mlp_dim" = 512\n' \
    '"ur-dmu.head_hidden" = 128\n'
#: UR-DMU's published segments: on the synthetic default (videos of at most 96 snippets) its default is 96.
PUBLISHED_SEGMENTS = '"ur-dmu.segments" = 200\n'


@pytest.mark.parametrize(("text", "other"), [
    ('methods = ["ur-dmu", "rtfm"]\nseeds = [0]\n', f'methods = ["ur-dmu"]\nseeds = [0]\n[options]\n{PUBLISHED_URDMU}'),
    (f'methods = ["ur-dmu", "rtfm"]\nseeds = [0]\n[options]\n{PUBLISHED_URDMU}', 'methods = ["ur-dmu"]\nseeds = [0]\n'),
    ('methods = ["ur-dmu"]\nseeds = [0]\n[sweep]\nwidth = [16, 48]\n', 'methods = ["ur-dmu"]\nseeds = [0]\n'),
    (f'methods = ["ur-dmu"]\nseeds = [0]\n[options]\n{PUBLISHED_URDMU}',
     f'methods = ["ur-dmu"]\nseeds = [0]\n[options]\n{PUBLISHED_URDMU}{PUBLISHED_SEGMENTS}'),
    (f'methods = ["ur-dmu"]\nseeds = [0]\n[options]\n{PUBLISHED_URDMU}{PUBLISHED_SEGMENTS}',
     f'methods = ["ur-dmu"]\nseeds = [0]\n[options]\n{PUBLISHED_URDMU}'),
])
def test_runs_at_the_widths_of_their_features_are_told_from_published_ones_without_plugins(tmp_path, text, other):
    """A grid that leaves the widths (or the segments) to the data finds the runs it made at those values, not
    the runs at the published ones of the same store, and a grid that pins the published values the reverse."""
    plugins = get_plugins()
    grid, other_grid = load_grid(write(tmp_path, text)), load_grid(write(tmp_path, other, "other.toml"))
    ours, others = stored(expand(grid, plugins), plugins), stored(expand(other_grid, plugins), plugins)
    assert {r.spec.key for r in ours}.isdisjoint(r.spec.key for r in others)
    assert [r.spec.key for r in stored_runs(grid, others + ours, tmp_path)] == [r.spec.key for r in ours]


def test_missing_runs_and_two_versions_of_the_data_are_errors_naming_the_point(tmp_path):
    plugins = get_plugins()
    grid = load_grid(write(tmp_path, 'methods = ["rtfm"]\nseeds = [0, 1]\n[sweep]\nk = [1, 2]'))
    results = stored(expand(grid, plugins), plugins)
    with pytest.raises(UsageError, match=r"not finished in .*rtfm on synthetic \[last\] seed 1 k=2\); run `vadbench"):
        stored_runs(grid, results[:-1], tmp_path)
    edited = stored([dataclasses.replace(results[0].spec, data="edited")], plugins)
    with pytest.raises(UsageError, match="2 versions of the data"):
        stored_runs(grid, [*results, *edited], tmp_path)


def test_a_grid_file_may_keep_the_weights_of_its_runs(tmp_path):
    from vadbench.plan.grid import load_grid

    path = tmp_path / "g.toml"
    path.write_text('methods = ["rtfm"]\nsave_model = true\n')
    assert load_grid(path).save_model is True
    path.write_text('methods = ["rtfm"]\nsave_model = "yes"\n')
    with pytest.raises(UsageError, match="save_model.*true or false"):
        load_grid(path)
    path.write_text('methods = ["rtfm"]\nprotocols = ["given"]\n')
    with pytest.raises(UsageError, match="protocol of vadbench evaluate"):
        load_grid(path)
