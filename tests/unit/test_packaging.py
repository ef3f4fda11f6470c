"""The wheel holds every package of the source tree: setuptools ships only the packages pyproject.toml lists, so
a new subpackage missing from that list imports in an editable checkout but not from the installed wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def source_packages() -> set[str]:
    """Every folder with an ``__init__.py`` under the folders pyproject.toml maps to packages, by package name."""
    setuptools = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for package, folder in setuptools["package-dir"].items():
        for init in (REPOSITORY / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPOSITORY / folder).parts
            found.add(".".join((package, *relative)))
    return found


def test_every_source_package_is_listed_for_the_wheel():
    listed = set(tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert source_packages() - listed == set()
