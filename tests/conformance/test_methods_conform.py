"""Every registered method (built-in or installed plugin) honours the method contract."""

import pytest

from vadbench.plugins import get_plugins
from vadbench.testing import check_method

METHODS = get_plugins().methods.names()


@pytest.mark.parametrize("name", METHODS)
def test_method_conforms(name):
    check_method(get_plugins().methods.create(name), crops=2, feature_dim=16)


@pytest.mark.parametrize("crops", [1, 10])
@pytest.mark.parametrize("name", ["rtfm", "sultani-mil"])
def test_builtins_conform_for_one_and_ten_crops(name, crops):
    check_method(get_plugins().methods.create(name), crops=crops, feature_dim=16)
