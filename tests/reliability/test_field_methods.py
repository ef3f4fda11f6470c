"""The methods since RTFM train and score on every kind of data vadbench reads: the synthetic default, a
5-crop XD-shaped synthetic set and fake roots of the real adapters in both published layouts (RTFM's one
file per video, Wu et al.'s one file per crop). Two steps with small batches: what is tested is that
every path runs and gives a finite, recorded result, not the numbers."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_SYNTHETIC
from fakeroots import sh_root, ucsd_root, xd_root

from vadbench.api.types import RunSpec
from vadbench.engine.runner import Runner

METHODS = ("ur-dmu", "mgfn", "pel4vad", "bn-wvad")
#: Small batches and narrow models (the same code paths at a fraction of the width), so that a run and the
#: scoring of every test video alone take seconds on any data; batch_size counts samples per class or batch.
SMALL = {
    "ur-dmu": {"batch_size": 2, "width": 32, "head_dim": 16, "mlp_dim": 32, "head_hidden": 16},
    "mgfn": {"batch_size": 2, "dim1": 16, "dim2": 32, "dim3": 64, "head_dim": 16},
    "pel4vad": {"batch_size": 4},
    "bn-wvad": {"batch_size": 2, "width": 32, "head_dim": 16, "mlp_dim": 32},
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    made = tmp_path_factory.mktemp
    return {
        "shanghaitech": sh_root(made("sh")),
        "xd-violence": xd_root(made("xd"), train_videos=4),
        "ucsd-ped2": ucsd_root(made("ucsd")),
    }


@pytest.fixture(scope="module")
def runner():
    return Runner(progress=False)  # one runner: each root is read once for all methods


def check(result, crops: int) -> None:
    assert result.status == "ok", result.error
    assert np.isfinite(result.metrics["auc"]) and 0 <= result.metrics["auc"] <= 1
    assert result.config["benchmark.crops"] == crops
    assert all(np.isfinite(scores).all() for scores in result.scores.values())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("dataset", "options", "crops"), [
    ("synthetic", TINY_SYNTHETIC, 2),
    ("synthetic-xd-violence", {"train_normal": 6, "train_abnormal": 6, "test_normal": 4, "test_abnormal": 4,
                               "max_length": 40}, 5),
])
def test_synthetic_sets(runner, method, dataset, options, crops):
    spec = RunSpec(method, dataset, method_options=SMALL[method], dataset_options=options, steps=2, device="cpu")
    check(runner.run(spec), crops)


#: Every method on the RTFM layout (10 crops); the Wu layout (one file per crop, XD's 5 crops, and its
#: classes) with PEL4VAD. Adapters hand every layout to methods as the same [T, C, D] arrays (their own
#: tests check the layouts), and scoring XD's 800 or UCF's 290 test videos one by one costs 40 to 90 s a
#: method on a busy 2-core machine, so the other methods' Wu-layout runs stay out of the CI suite.
LAYOUTS = [
    *((method, "shanghaitech", 10, "rtfm") for method in METHODS),
    *((method, "ucsd-ped2", 10, "rtfm") for method in METHODS),
    pytest.param("pel4vad", "xd-violence", 5, "wu", marks=pytest.mark.slow),  # 800 test videos: about 20 s
]


@pytest.mark.parametrize(("method", "dataset", "crops", "feature_set"), LAYOUTS)
def test_real_layouts(runner, roots, method, dataset, crops, feature_set):
    spec = RunSpec(method, dataset, method_options=SMALL[method], dataset_access={"root": str(roots[dataset])}, steps=2,
                   device="cpu")
    if method == "pel4vad" and dataset == "ucsd-ped2":  # UCSD has no anomaly classes: refused, said why
        with pytest.raises(Exception, match="needs the class of each training video"):
            runner.run(spec)
        return
    result = runner.run(spec)
    check(result, crops)
    assert result.config["benchmark.feature_set"] == feature_set
