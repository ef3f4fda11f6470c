from dataclasses import dataclass
from typing import Literal

import pytest

from vadbench.api.errors import UsageError
from vadbench.plugins.registry import Registry, parse_value


class Base:
    def __init__(self, config):
        self.config = config


@dataclass(frozen=True)
class ToyConfig:
    k: int = 3
    margin: float = 100.0
    use_tsa: bool = True
    mode: Literal["l2", "sum"] = "l2"
    widths: tuple[int, ...] = (512, 128)
    limit: int | None = None

    def __post_init__(self):
        if self.k < 1:
            raise ValueError("k must be at least 1")


class Toy(Base):
    """A toy component."""

    Config = ToyConfig


def make_registry() -> Registry:
    registry = Registry("method", Base)
    registry.add("toy", Toy, source="plugin_a")
    return registry


def test_duplicate_names_are_refused_naming_both_sources():
    registry = make_registry()
    with pytest.raises(UsageError, match="plugin_a.*plugin_b"):
        registry.add("toy", Toy, source="plugin_b")


def test_bad_presets_are_refused_at_registration():
    registry = make_registry()
    with pytest.raises(UsageError, match="unknown option 'kk'"):
        registry.add("toy-typo", Toy, source="p", kk=2)
    with pytest.raises(UsageError, match="k must be at least 1"):
        registry.add("toy-zero", Toy, source="p", k=0)
    with pytest.raises(UsageError, match="expects int"):
        registry.add("toy-type", Toy, source="p", k="three")
    assert registry.names() == ["toy"]


def test_create_applies_preset_then_overrides_with_parsed_types():
    registry = make_registry()
    registry.add("toy-no-tsa", Toy, "Toy without TSA", source="p", use_tsa=False, k=5)
    made = registry.create("toy-no-tsa", {"margin": "50", "widths": "8,4", "limit": "none", "mode": "sum"})
    assert made.config == ToyConfig(k=5, margin=50.0, use_tsa=False, mode="sum", widths=(8, 4), limit=None)
    assert registry.get("toy-no-tsa").description == "Toy without TSA"
    assert registry.get("toy").description == "A toy component."
    assert registry.names() == ["toy", "toy-no-tsa"]


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown method 'rtfx'; known: toy"):
        make_registry().create("rtfx")


def test_non_subclass_is_refused():
    class Other:
        Config = ToyConfig

    with pytest.raises(UsageError, match="not a Base"):
        make_registry().add("other", Other, source="p")


@pytest.mark.parametrize(
    ("value", "hint", "expected"),
    [("true", bool, True), ("off", bool, False), ("4", int, 4), ("1e-3", float, 1e-3), ("7", int | None, 7)],
)
def test_parse_value(value, hint, expected):
    assert parse_value("x", value, hint) == expected


@pytest.mark.parametrize(("value", "hint"), [("maybe", bool), ("2.5", int), (2.5, int), (True, int)])
def test_parse_value_rejects(value, hint):
    with pytest.raises(UsageError, match="option 'x'"):
        parse_value("x", value, hint)


@pytest.mark.parametrize("hint", [list[int], dict[str, int], tuple[int, int], tuple[list[int], ...], object])
def test_an_option_type_set_cannot_parse_is_refused_at_registration_naming_plugin_and_option(hint):
    config = dataclass(frozen=True)(type("BadConfig", (), {"__annotations__": {"widths": hint}, "widths": None}))
    bad = type("Bad", (Base,), {"Config": config})
    with pytest.raises(UsageError, match=r"method 'bad' from plugin_c: Bad\.Config option 'widths' has type .*--set"):
        make_registry().add("bad", bad, source="plugin_c")


def test_every_parseable_option_type_is_accepted():
    make_registry().add("toy-again", Toy, source="p")  # int, float, bool, Literal, tuple[int, ...], int | None


def test_literal_choices_of_numbers_parse_from_their_text():
    """``--set crops=5`` reaches a ``Literal[5, 10]`` option as the number 5, and other text is refused."""
    assert parse_value("crops", "5", Literal[5, 10]) == 5
    assert parse_value("crops", 10, Literal[5, 10]) == 10
    with pytest.raises(UsageError, match="must be one of 5, 10"):
        parse_value("crops", "7", Literal[5, 10])
