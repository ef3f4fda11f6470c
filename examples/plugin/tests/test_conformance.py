"""The plugin passes vadbench's conformance checks: one pytest id per check, e.g.
``MagnitudeMLP(hidden=16)-check_padding_invariance``.

The checks need pytest beside vadbench (vadbench itself does not install it). From the repository root:

    pip install "./examples/plugin[test]"   # the plugin and its test extra, pytest
    cd examples/plugin && pytest

(``pip install pytest`` alone is enough too: pytest here imports the plugin straight from src/.)
"""

from vadbench_magnitude_mlp import MagnitudeMLP

from vadbench.testing import parametrize_with_checks

#: Small widths keep the checks fast; the second configuration probes a top-k of one snippet.
METHODS = [MagnitudeMLP(MagnitudeMLP.Config(hidden=16)), MagnitudeMLP(MagnitudeMLP.Config(hidden=16, k=1))]


@parametrize_with_checks(methods=METHODS)
def test_conformance(component, check):
    check(component)
