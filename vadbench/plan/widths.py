"""Option defaults that follow the data: a method's widths and training segments for the dataset a run is
planned on.

A method's ``Config`` may give, as the classmethod ``for_data(shape) -> dict``, the defaults that differ from
its published ones for data of that `vadbench.api.dataset.DataShape` (the built-in methods narrow their
widths below 1024-d features, as RTFM's network narrows with D, and pool training videos shorter than their
published segment count to that many segments). When a run is planned on a dataset that knows its shape
without loading data (`vadbench.api.dataset.Dataset.shape`), those values join the run's options, unless the
user (``--set``, a grid's options) or the method's preset set the option. They are then options like any
other: the run key names them (`vadbench.plan.specs.canonical` drops only values equal to the published
defaults), so runs at the published options keep their keys and their stored results, and ``--set width=512``
gives the published width back. Each result records the defaults its method takes on its data
(`FEATURE_DEFAULTS`), which a grid expects of a run for every option its point leaves to them (a result
stored before this record is matched by its options alone, as before).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vadbench.plugins.manager import Plugins

#: Config key under which each result records the defaults its method takes for its dataset's data
#: (`vadbench.report.aggregate.recorded`), so that a grid finds its runs without plugins
#: (`vadbench.plan.grid.stored_runs`). (Named when only the widths followed the features; stored results hold it.)
FEATURE_DEFAULTS = "report.feature_defaults"


def data_defaults(
    plugins: Plugins, method: str, dataset: str, dataset_options: Mapping[str, Any], chosen: Mapping[str, Any]
) -> dict[str, Any]:
    """The options `method`'s ``Config.for_data`` gives for `dataset`'s shape, but those set in `chosen` (the
    run's own options) or in the method's preset; empty when either side has no rule."""
    entry = plugins.methods.get(method)
    follow = getattr(entry.cls.Config, "for_data", None)
    if follow is None:
        return {}
    shape = plugins.datasets.create(dataset, dict(dataset_options)).shape()
    return {name: value for name, value in follow(shape).items() if name not in chosen and name not in entry.preset}
