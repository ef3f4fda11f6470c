"""Defaults that follow the data: widths for narrow features, segments for short videos (`Config.for_data`,
`vadbench.plan.widths`)."""

from __future__ import annotations

import dataclasses

import pytest

from vadbench.api.dataset import DataShape
from vadbench.api.errors import UsageError
from vadbench.plan.specs import build_specs
from vadbench.plugins.manager import get_plugins

#: Every built-in method whose published widths are fixed (RTFM's and Sultani's follow D or are small).
FOLLOWING = ("ur-dmu", "mgfn", "pel4vad", "bn-wvad")
#: Their widths on the 64-d synthetic default (docs/methods.md).
AT_64 = {
    "ur-dmu": {"width": 32, "heads": 1, "head_dim": 32, "mlp_dim": 32, "head_hidden": 8},
    "mgfn": {"dim1": 4, "dim2": 8, "dim3": 64, "head_dim": 4},
    "pel4vad": {"prompt_dim": 32},
    "bn-wvad": {"width": 32, "heads": 1, "head_dim": 32, "mlp_dim": 32},
}
#: The methods that mean-pool every training video to 200 segments, and their segments on the synthetic
#: default (videos of 32 to 96 snippets). (PEL4VAD's step trains on its batch's longest video: it keeps 200.)
SEGMENTS_AT_96 = {"ur-dmu": {"segments": 96}, "bn-wvad": {"segments": 96}}


def config_class(name):
    return get_plugins().methods.get(name).cls.Config


@pytest.mark.parametrize("name", FOLLOWING)
def test_real_features_keep_the_published_widths_and_segments(name):
    """Real features: 1024-d or wider, videos of any length (none known before loading, or long ones)."""
    for shape in (DataShape(1024, None), DataShape(2048, None), DataShape(1024, 200), DataShape(2048, 5000)):
        assert config_class(name).for_data(shape) == {}


@pytest.mark.parametrize("name", FOLLOWING)
@pytest.mark.parametrize("dim", [1, 8, 16, 32, 64, 128, 512, 1000])
def test_narrow_features_get_valid_narrower_widths(name, dim):
    cls = config_class(name)
    narrowed = cls.for_data(DataShape(dim, None))
    published = dataclasses.asdict(cls())
    config = cls(**narrowed)  # valid: __post_init__ accepts it
    assert narrowed and all(getattr(config, k) <= published[k] for k in narrowed)


@pytest.mark.parametrize("name", FOLLOWING)
def test_the_synthetic_default_runs_at_its_features_widths_and_its_key_names_them(name):
    (spec,) = build_specs(get_plugins(), [name], "synthetic", [], [0])
    assert spec.method_options == {**AT_64[name], **SEGMENTS_AT_96.get(name, {})}


@pytest.mark.parametrize("name", SEGMENTS_AT_96)
@pytest.mark.parametrize(("longest", "segments"), [(8, 8), (96, 96), (199, 199), (200, None), (470, None)])
def test_the_segments_follow_the_longest_training_video_when_it_is_shorter_than_published(name, longest, segments):
    """200 segments of videos of at most T < 200 snippets repeat snippets: T segments instead."""
    lengths = [f"dataset.min_length={min(32, longest)}", f"dataset.max_length={longest}", "dataset.mu=1"]
    (spec,) = build_specs(get_plugins(), [name], "synthetic", lengths, [0])
    assert spec.method_options.get("segments") == segments
    assert spec.method_options.items() >= AT_64[name].items()


def test_segments_set_by_the_user_win_and_the_published_ones_keep_the_key():
    plugins = get_plugins()
    (chosen,) = build_specs(plugins, ["bn-wvad"], "synthetic", ["bn-wvad.segments=64"], [0])
    assert chosen.method_options == {**AT_64["bn-wvad"], "segments": 64}
    (published,) = build_specs(plugins, ["bn-wvad"], "synthetic", ["bn-wvad.segments=200"], [0])
    assert published.method_options == AT_64["bn-wvad"]


@pytest.mark.parametrize("dataset", ["ucf-crime", "xd-violence", "shanghaitech", "ucsd-ped2"])
@pytest.mark.parametrize("name", FOLLOWING)
def test_runs_on_real_features_are_planned_at_the_published_widths_and_segments(name, dataset):
    """The adapters of real features know neither D nor the video lengths before loading: no option follows."""
    (spec,) = build_specs(get_plugins(), [name], dataset, [], [0])
    assert spec.method_options == {}


def test_an_option_set_by_the_user_wins_and_the_others_follow_the_features():
    (spec,) = build_specs(get_plugins(), ["ur-dmu"], "synthetic", ["ur-dmu.width=48"], [0])
    assert spec.method_options == {**AT_64["ur-dmu"], **SEGMENTS_AT_96["ur-dmu"], "width": 48}


def test_published_widths_and_segments_set_explicitly_keep_the_key_of_a_published_run():
    """Pinning the published widths and segments (as leaderboards/field-cpu.toml does) gives the key a run at
    the published ones always had: no option named, so its stored results are found."""
    following = {**AT_64["ur-dmu"], **SEGMENTS_AT_96["ur-dmu"]}
    published = [f"ur-dmu.{k}={getattr(config_class('ur-dmu'), k)}" for k in following]
    (spec,) = build_specs(get_plugins(), ["ur-dmu"], "synthetic", published, [0])
    assert spec.method_options == {}
    (wide,) = build_specs(get_plugins(), ["ur-dmu"], "synthetic", ["feature_dim=1024", "max_length=200"], [0])
    assert wide.method_options == {}


def test_methods_without_a_rule_and_presets_keep_their_options():
    specs = build_specs(get_plugins(), ["rtfm", "sultani-mil", "mgfn-original"], "synthetic", [], [0])
    assert [s.method_options for s in specs] == [{}, {}, AT_64["mgfn"]]


def test_a_width_that_cannot_go_with_the_features_widths_is_a_usage_error():
    with pytest.raises(UsageError, match="head_dim"):
        build_specs(get_plugins(), ["mgfn"], "synthetic", ["mgfn.head_dim=64"], [0])
