"""Conformance checks for plugin authors: one pytest test per (component, check).

A plugin author runs them in the plugin's own test suite, in the style of scikit-learn's
``parametrize_with_checks``::

    from vadbench.testing import parametrize_with_checks

    @parametrize_with_checks(methods=[MyMethod(MyMethod.Config(hidden=16))])
    def test_conformance(component, check):
        check(component)

Each (component, check) pair is its own pytest id, such as ``MyMethod(hidden=16)-check_scores``,
so ``pytest -k check_scores`` selects one check. A check raises AssertionError naming the part of
the contract that broke. Components are instances: give them small options (a synthetic dataset of
a few videos, a small hidden width), because every check builds, trains or loads them.

One module per kind of component holds its checks: `vadbench.testing.methods` (`METHOD_CHECKS`; the
checks that apply only to what a method declares are skipped with the reason, `DECLARED`),
`vadbench.testing.datasets` (`DATASET_CHECKS`), `vadbench.testing.executors` (`EXECUTOR_CHECKS`) and
`vadbench.testing.extractors` (`EXTRACTOR_CHECKS`);
`vadbench.testing.parametrize` collects them. Every name is importable from here.
"""

from vadbench.testing.common import ATOL, SEED
from vadbench.testing.datasets import (
    DATASET_CHECKS,
    check_benchmark_types,
    check_deterministic_load,
    check_primary_metric,
    check_test_ground_truth,
    check_video_ids,
    check_weak_training_labels,
)
from vadbench.testing.executors import EXECUTOR_CHECKS, EXECUTOR_SPECS, check_same_results_as_serial
from vadbench.testing.extractors import (
    EXTRACTOR_CHECKS,
    check_deterministic,
    check_feature_shape,
    check_inference_network,
    check_preprocessing,
    check_weights_round_trip,
)
from vadbench.testing.methods import (
    DECLARED,
    METHOD_CHECKS,
    check_deterministic_under_seed,
    check_loss_terms_detached,
    check_padding_invariance,
    check_scores,
    check_short_videos,
    check_stacked_training,
    check_stored_magnitudes,
    check_training_step,
    check_val_scoring,
)
from vadbench.testing.parametrize import describe, parametrize_with_checks

__all__ = [
    "ATOL", "DATASET_CHECKS", "DECLARED", "EXECUTOR_CHECKS", "EXECUTOR_SPECS", "EXTRACTOR_CHECKS", "METHOD_CHECKS",
    "SEED", "check_benchmark_types", "check_deterministic", "check_deterministic_load",
    "check_deterministic_under_seed", "check_feature_shape", "check_inference_network", "check_loss_terms_detached",
    "check_padding_invariance", "check_preprocessing", "check_primary_metric", "check_same_results_as_serial",
    "check_scores", "check_short_videos", "check_stacked_training", "check_stored_magnitudes",
    "check_test_ground_truth", "check_training_step", "check_val_scoring", "check_video_ids",
    "check_weak_training_labels", "check_weights_round_trip", "describe", "parametrize_with_checks",
]
