"""Option defaults that follow the features: a method's widths for the dataset a run is planned on.

A method's ``Config`` may give, as the classmethod ``for_features(feature_dim) -> dict``, the defaults
that differ from its published ones for features of that dimension (the built-in methods narrow their
widths below 1024-d features, as RTFM's network narrows with D). When a run is planned on a dataset that
knows its feature dimension without loading data (`vadbench.api.dataset.Dataset.feature_dim`), those
values join the run's options, unless the user (``--set``, a grid's options) or the method's preset set
the option. They are then options like any other: the run key names them (`vadbench.plan.specs.canonical`
drops only values equal to the published defaults), so runs at the published widths keep their keys and
their stored results, and ``--set width=512`` gives the published width back. Each result records the
defaults its method takes on its data (`FEATURE_DEFAULTS`), which a grid expects of a run for every option
its point leaves to them (a result stored before this record is matched by its options alone, as before).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vadbench.plugins.manager import Plugins

#: Config key under which each result records the defaults its method takes for its dataset's features
#: (`vadbench.report.aggregate.recorded`), so that a grid finds its runs without plugins
#: (`vadbench.plan.grid.stored_runs`).
FEATURE_DEFAULTS = "report.feature_defaults"


def feature_defaults(
    plugins: Plugins, method: str, dataset: str, dataset_options: Mapping[str, Any], chosen: Mapping[str, Any]
) -> dict[str, Any]:
    """The options `method`'s ``Config.for_features`` gives for `dataset`'s feature dimension, but those set
    in `chosen` (the run's own options) or in the method's preset; empty when either side has no rule."""
    entry = plugins.methods.get(method)
    follow = getattr(entry.cls.Config, "for_features", None)
    if follow is None:
        return {}
    dim = plugins.datasets.create(dataset, dict(dataset_options)).feature_dim()
    if dim is None:
        return {}
    return {name: value for name, value in follow(dim).items() if name not in chosen and name not in entry.preset}
