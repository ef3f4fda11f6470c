"""Default widths that follow narrow features (`Config.for_features`, `vadbench.plan.widths`)."""

from __future__ import annotations

import dataclasses

import pytest

from vadbench.api.errors import UsageError
from vadbench.plan.specs import build_specs
from vadbench.plugins.manager import get_plugins

#: Every built-in method whose published widths are fixed (RTFM's and Sultani's follow D or are small).
FOLLOWING = ("ur-dmu", "mgfn", "pel4vad", "bn-wvad")
#: Their widths on the 64-d synthetic default (docs/methods.md).
AT_64 = {
    "ur-dmu": {"width": 32, "heads": 1, "dim_head": 32, "mlp_dim": 32, "head_hidden": 8},
    "mgfn": {"dim1": 4, "dim2": 8, "dim3": 64, "head_dim": 4},
    "pel4vad": {"prompt_dim": 32},
    "bn-wvad": {"width": 32, "heads": 1, "head_dim": 32, "mlp_dim": 32},
}


def config_class(name):
    return get_plugins().methods.get(name).cls.Config


@pytest.mark.parametrize("name", FOLLOWING)
def test_real_features_keep_the_published_widths(name):
    assert config_class(name).for_features(1024) == {}
    assert config_class(name).for_features(2048) == {}


@pytest.mark.parametrize("name", FOLLOWING)
@pytest.mark.parametrize("dim", [1, 8, 16, 32, 64, 128, 512, 1000])
def test_narrow_features_get_valid_narrower_widths(name, dim):
    cls = config_class(name)
    narrowed = cls.for_features(dim)
    published = dataclasses.asdict(cls())
    config = cls(**narrowed)  # valid: __post_init__ accepts it
    assert narrowed and all(getattr(config, k) <= published[k] for k in narrowed)


@pytest.mark.parametrize("name", FOLLOWING)
def test_the_synthetic_default_runs_at_its_features_widths_and_its_key_names_them(name):
    (spec,) = build_specs(get_plugins(), [name], "synthetic", [], [0])
    assert spec.method_options == AT_64[name]


def test_an_option_set_by_the_user_wins_and_the_others_follow_the_features():
    (spec,) = build_specs(get_plugins(), ["ur-dmu"], "synthetic", ["ur-dmu.width=48"], [0])
    assert spec.method_options == {**AT_64["ur-dmu"], "width": 48}


def test_published_widths_set_explicitly_keep_the_key_of_a_published_run():
    """Pinning the published widths (as leaderboards/field-cpu.toml does) gives the key a run at the published
    widths always had: no option named, so its stored results are found."""
    published = [f"ur-dmu.{k}={getattr(config_class('ur-dmu'), k)}" for k in AT_64["ur-dmu"]]
    (spec,) = build_specs(get_plugins(), ["ur-dmu"], "synthetic", published, [0])
    assert spec.method_options == {}
    (wide,) = build_specs(get_plugins(), ["ur-dmu"], "synthetic", ["feature_dim=1024"], [0])
    assert wide.method_options == {}


def test_methods_without_a_rule_and_presets_keep_their_options():
    specs = build_specs(get_plugins(), ["rtfm", "sultani-mil", "mgfn-original"], "synthetic", [], [0])
    assert [s.method_options for s in specs] == [{}, {}, AT_64["mgfn"]]


def test_a_width_that_cannot_go_with_the_features_widths_is_a_usage_error():
    with pytest.raises(UsageError, match="head_dim"):
        build_specs(get_plugins(), ["mgfn"], "synthetic", ["mgfn.head_dim=64"], [0])
