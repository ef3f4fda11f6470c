"""The public checkpoints of UR-DMU, BN-WVAD and PEL4VAD load into vadbench's models and score as the public
test functions do.

Each checkpoint beside this file (``<method>_public_checkpoint.pkl``) was saved by the method's unmodified
public code as its training script saves its weights, from the public model at small widths with the weights
of tests/reference/checkpoint_videos.py; its fixture (``<method>_public_checkpoint.json``) holds the scores the
public test function gave each test video with it, in float32 as the code runs and in float64 (written by
tests/reference/<method>_checkpoint_reference.py, named in its ``produced_by``). Here the file goes through
`public_model` (weights_only read, the method's declared importer, the strict key and shape check), and
`Method.score` plus the declared ``postprocess`` must give the same scores under tests/reference/comparison.py's
rule: float64 within 1e-12 of the public float64 scores, float32 within ten times the public code's own
float32 rounding.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from reference.checkpoint_videos import feature_video
from reference.comparison import failures, group_at

from vadbench.api.errors import UsageError
from vadbench.api.method import Method
from vadbench.engine.checkpoints import public_model
from vadbench.methods.bn_wvad import BNWVAD, BNWVADConfig
from vadbench.methods.pel4vad import PEL4VAD, PEL4VADConfig
from vadbench.methods.ur_dmu import URDMU, URDMUConfig

#: One torch thread: the equality checks compare sums whose order depends on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

DATA = Path(__file__).parent / "data"
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


def ur_dmu(sizes: dict[str, Any]) -> Method:
    return URDMU(URDMUConfig(width=sizes["width"], heads=sizes["heads"], head_dim=sizes["head_dim"],
                             mlp_dim=sizes["mlp_dim"], slots=sizes["slots"], head_hidden=sizes["head_hidden"]))


def bn_wvad(sizes: dict[str, Any]) -> Method:
    return BNWVAD(BNWVADConfig(width=sizes["width"], heads=sizes["heads"], head_dim=sizes["head_dim"],
                               mlp_dim=sizes["mlp_dim"], ratios=tuple(sizes["ratios"]),
                               kernel_sizes=tuple(sizes["kernel_sizes"])))


def pel4vad(sizes: dict[str, Any]) -> Method:
    """configs.py's names -> PEL4VADConfig's; the public linear1 is D -> D / 2 (vadbench's prompt_dim)."""
    return PEL4VAD(PEL4VADConfig(
        hidden=sizes["hid_dim"], out_dim=sizes["out_dim"], prompt_dim=sizes["D"] // 2, window=sizes["win_size"],
        gamma=sizes["gamma"], beta=sizes["bias"], norm=sizes["norm"], t_step=sizes["t_step"],
        temperature=sizes["temp"], smoothing=sizes["smooth"], kappa=sizes["kappa"]))


#: Registered name -> (fixture stem, the method with the options of the fixture's public sizes).
METHODS: dict[str, tuple[str, Callable[[dict[str, Any]], Method]]] = {
    "ur-dmu": ("ur_dmu", ur_dmu),
    "bn-wvad": ("bn_wvad", bn_wvad),
    "pel4vad": ("pel4vad", pel4vad),
}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{METHODS[name][0]}_public_checkpoint.json").read_text())


def loaded(name: str, path: Path | None = None) -> tuple[Method, torch.nn.Module, dict[str, Any]]:
    """The method, its model loaded from the public checkpoint (or the file at `path`), and the fixture."""
    found = fixture(name)
    method = METHODS[name][1](found["sizes"])
    crops = found["videos"][0][0]
    model = public_model(method, name, path or DATA / found["checkpoint"], crops, found["sizes"]["D"])
    return method, model, found


def public_test_scores(method: Method, model: torch.nn.Module, found: dict[str, Any], dtype: torch.dtype) -> dict:
    """Each test video's scores: `Method.score` of the video alone, then the declared post-processing."""
    model = model.to(dtype)
    postprocess = method.declarations().postprocess
    scores = {}
    for n, (crops, steps) in enumerate(found["videos"]):
        video = feature_video(n, crops, steps, found["sizes"]["D"]).to(dtype)
        with torch.inference_mode():
            snippet_scores = method.score(model, video[None], torch.tensor([steps]))[0]
        scores[n] = snippet_scores if postprocess is None else postprocess(snippet_scores.numpy())
    return scores


@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("name", list(METHODS))
def test_public_checkpoint_scores_as_the_public_test_function(name, precision):
    method, model, found = loaded(name)
    ours = public_test_scores(method, model, found, PRECISIONS[precision])
    assert failures(ours, group_at(found, "scores"), PRECISIONS[precision]) == []


@pytest.mark.parametrize("name", list(METHODS))
def test_a_changed_weight_fails_the_comparison(name):
    method, model, found = loaded(name)
    with torch.no_grad():
        first = next(p for p in model.parameters() if p.dim() >= 2)
        first.mul_(1.01)
    ours = public_test_scores(method, model, found, torch.float64)
    assert failures(ours, group_at(found, "scores"), torch.float64) != []


@pytest.mark.parametrize("name", list(METHODS))
def test_the_importer_passes_unknown_keys_through(name):
    stranger = {"head.fc.weight": torch.zeros(2, 3), "selfatt": torch.ones(1)}
    importer = METHODS[name][1](fixture(name)["sizes"]).declarations().public_checkpoint
    assert importer is not None
    assert importer(stranger).keys() == stranger.keys()


@pytest.mark.parametrize(("name", "other"), [("ur-dmu", "bn-wvad"), ("bn-wvad", "pel4vad"), ("pel4vad", "ur-dmu")])
def test_a_checkpoint_of_another_method_is_refused_in_one_line(name, other):
    path = DATA / fixture(other)["checkpoint"]
    with pytest.raises(UsageError) as error:
        loaded(name, path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"--checkpoint {path}: not a checkpoint of {name}")
    assert "keys missing" in message and "unexpected keys" in message


def test_bn_wvad_running_statistics_are_imported():
    """The head's BatchNorm statistics, its detector at test time, come from the file (buffers, not only
    parameters): the public training-mode passes moved them and counted the batches."""
    _, model, found = loaded("bn-wvad")
    saved = torch.load(DATA / found["checkpoint"], weights_only=True)
    state = model.state_dict()
    for layer in ("bn1", "bn2"):
        for kind in ("running_mean", "running_var", "num_batches_tracked"):
            assert torch.equal(state[f"head.{layer}.{kind}"], saved[f"normal_head.{layer}.{kind}"])
    assert int(state["head.bn1.num_batches_tracked"]) == found["batchnorm_passes"]
