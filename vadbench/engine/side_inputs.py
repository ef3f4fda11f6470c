"""The side inputs a method declares (`Declarations.side_inputs`), checked against what the dataset supplies.

A method that reads class indices cannot train on a dataset without them (its loss would silently see
-1 everywhere): that is refused before any work. A method that reads class prompts gets the dataset's
(option ``prompts``: K rows, one per class, of the width P the method declares in `Declarations.prompt_width`;
a file of another width is refused before training), else the stand-in of `vadbench.data.prompts` at the
method's width, recorded as ``benchmark.prompts = stand-in`` in its result so that tables mark the row.
"""

from __future__ import annotations

import dataclasses

from vadbench.api.errors import UsageError
from vadbench.api.method import Method
from vadbench.api.types import Benchmark
from vadbench.data.prompts import STAND_IN_DIM, stand_in_prompts

#: The side inputs a method may declare.
KNOWN = frozenset({"classes", "prompts"})


def with_side_inputs(method_name: str, method: Method, benchmark: Benchmark) -> Benchmark:
    """`benchmark` with what `method` declares it reads, or a UsageError saying what is missing."""
    declared = method.declarations()
    unknown = set(declared.side_inputs) - KNOWN
    if unknown:
        raise UsageError(f"method {method_name!r} declares unknown side inputs {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(KNOWN))})")
    if "classes" in declared.side_inputs and (benchmark.train.classes is None or not benchmark.class_names):
        raise UsageError(f"method {method_name!r} needs the class of each training video, and dataset "
                         f"{benchmark.name!r} has no classes; choose a dataset with anomaly classes")
    if "prompts" not in declared.side_inputs:
        return benchmark
    width = declared.prompt_width
    if benchmark.prompts is None:
        return dataclasses.replace(benchmark, prompts=stand_in_prompts(benchmark.class_names, width or STAND_IN_DIM),
                                   meta={**benchmark.meta, "prompts": "stand-in"})
    found = benchmark.prompts.shape[1]
    if width is not None and found != width:
        raise UsageError(f"dataset option prompts: {benchmark.meta.get('prompts', 'the prompt file')} holds vectors "
                         f"of width {found}, but method {method_name!r} needs width {width}; expected a .npy of shape "
                         f"({len(benchmark.class_names)}, {width}), one row per class "
                         f"({', '.join(benchmark.class_names)})")
    return benchmark
