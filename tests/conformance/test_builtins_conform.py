"""Every registered method (built-in, preset or installed plugin), the synthetic datasets, every built-in executor
and every registered extractor (at a reduced width) pass the conformance checks that plugin authors run
(`vadbench.testing`)."""

import importlib.util

import pytest

from vadbench.plugins.manager import get_plugins
from vadbench.testing import parametrize_with_checks

PLUGINS = get_plugins()
METHODS = [PLUGINS.methods.create(name) for name in PLUGINS.methods.names()]
#: The built-in methods themselves (presets only switch their parts), for the crop-count extremes.
BUILTIN_METHODS = [PLUGINS.methods.create(name) for name in ("rtfm", "sultani-mil")]
#: Small enough to load in a fraction of a second; the file-based adapters need data (tests/unit).
TINY = {"train_normal": 6, "train_abnormal": 6, "test_normal": 4, "test_abnormal": 4, "min_length": 8,
        "max_length": 16, "feature_dim": 16, "crops": 2, "mu": 4}
DATASETS = [PLUGINS.datasets.create("synthetic", TINY), PLUGINS.datasets.create("synthetic-ucsd-ped2")]
#: One CPU per run: the serial reference uses one torch thread, and CPU sums depend on the count.
EXECUTORS = [PLUGINS.executors.create("serial", {"cpus_per_run": 1}), PLUGINS.executors.create("stacked")]
#: The executors that start processes (worker processes, a Ray cluster), checked apart as ``slow``.
PROCESS_EXECUTORS = [PLUGINS.executors.create("local", {"workers": 2, "cpus_per_run": 1})]
#: Every extractor at the smallest width it offers (its tests-only option), else as registered.
NARROW_EXTRACTORS = {"i3d-r50": {"width": 4}, "i3d-wu": {"channel_divisor": 8}, "c3d": {"channel_divisor": 16}}
EXTRACTORS = [PLUGINS.extractors.create(name, NARROW_EXTRACTORS.get(name)) for name in PLUGINS.extractors.names()]
if importlib.util.find_spec("ray") is not None:  # the optional extra vadbench[ray]
    PROCESS_EXECUTORS.append(PLUGINS.executors.create("ray", {"workers": 2, "cpus_per_run": 1}))


@parametrize_with_checks(methods=METHODS, datasets=DATASETS, executors=EXECUTORS, extractors=EXTRACTORS)
def test_builtins_conform(component, check):
    check(component)


@pytest.mark.slow
@parametrize_with_checks(executors=PROCESS_EXECUTORS)
def test_process_executors_conform(component, check):
    check(component)


@parametrize_with_checks(methods=BUILTIN_METHODS, crops=1)
def test_builtin_methods_conform_with_one_crop(component, check):
    check(component)


@parametrize_with_checks(methods=BUILTIN_METHODS, crops=10)
def test_builtin_methods_conform_with_ten_crops(component, check):
    check(component)
