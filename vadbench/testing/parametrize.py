"""One pytest test per (component, check), in the style of scikit-learn's ``parametrize_with_checks``."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from vadbench.api.dataset import Dataset
from vadbench.api.executor import Executor
from vadbench.api.extractor import Extractor
from vadbench.api.method import Method
from vadbench.testing.datasets import DATASET_CHECKS
from vadbench.testing.executors import EXECUTOR_CHECKS
from vadbench.testing.extractors import EXTRACTOR_CHECKS
from vadbench.testing.methods import DECLARED, METHOD_CHECKS


def parametrize_with_checks(
    *,
    methods: Sequence[Method] = (),
    datasets: Sequence[Dataset] = (),
    executors: Sequence[Executor] = (),
    extractors: Sequence[Extractor] = (),
    crops: int = 2,
    feature_dim: int = 16,
) -> Any:
    """A ``pytest.mark.parametrize`` over ``(component, check)``: one test id per component and check.

    Decorate ``def test_conformance(component, check): check(component)``. Ids read
    ``ClassName(changed options)-check_name``. Method checks probe models built for `crops` crops
    of `feature_dim` dimensions.
    """
    import pytest  # a test-time dependency only

    params = []
    for component, check in _pairs(methods, datasets, executors, extractors):
        bound = functools.partial(check, crops=crops, feature_dim=feature_dim) if check in METHOD_CHECKS else check
        reason = _not_declared(component, check)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(component, bound, id=f"{describe(component)}-{check.__name__}", marks=marks))
    return pytest.mark.parametrize(("component", "check"), params)


def _pairs(
    methods: Sequence[Method], datasets: Sequence[Dataset], executors: Sequence[Executor],
    extractors: Sequence[Extractor],
) -> Iterator[tuple[Any, Callable[..., None]]]:
    for checks, components in ((METHOD_CHECKS, methods), (DATASET_CHECKS, datasets), (EXECUTOR_CHECKS, executors),
                               (EXTRACTOR_CHECKS, extractors)):
        for component in components:
            for check in checks:
                yield component, check


def _not_declared(component: Any, check: Callable[..., None]) -> str | None:
    """Why `check` does not apply to `component` (by what it declares), else None."""
    reason = DECLARED.get(check)
    return None if reason is None else reason(component)


def describe(component: Any) -> str:
    """``ClassName(option=value,...)`` with the options that differ from their defaults: a readable id."""
    config = component.config
    changed = []
    for field in dataclasses.fields(config):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = dataclasses.MISSING
        value = getattr(config, field.name)
        if value != default:
            changed.append(f"{field.name}={value}")
    return f"{type(component).__name__}({','.join(changed)})" if changed else type(component).__name__
