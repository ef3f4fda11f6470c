"""RTFM's and MGFN's public checkpoints load through their importers and score as the public test functions do.

The fixtures data/rtfm_checkpoint_reference.json and data/mgfn_checkpoint_reference.json were written by
tests/reference/rtfm_checkpoint_reference.py and mgfn_checkpoint_reference.py (their ``produced_by`` says
how): the unmodified public model at its pinned commit, with every parameter and buffer set by the rule of
tests/reference/fixture_rule.py, saved as the public training script saves it (``torch.save(
model.state_dict(), path)``), loaded back, and run through the public test function on three videos of
different lengths, in float32 and in float64. The public codes fix their input width (2048) and more, so their
files are tens of MB: each is rebuilt here from the rule, in the fixture's order, and checked against the
digest of the file the public code saved. vadbench loads it with `vadbench.engine.checkpoints.public_model`
(the method's declared importer, then the strict key and shape check) and scores each video with
`Method.score`; the snippet scores are compared with the public test function's (which repeats each one 16
times, one per frame, as vadbench's metrics do) as tests/reference/comparison.py says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from reference.comparison import failures, from_records
from reference.fixture_rule import snippet_features, state_digest, state_value

from vadbench.api.errors import UsageError
from vadbench.api.method import Method
from vadbench.engine.checkpoints import public_model
from vadbench.methods.mgfn.method import MGFN, MGFNConfig
from vadbench.methods.rtfm.method import RTFM, RTFMConfig

#: One torch thread: the equality checks compare sums whose order depends on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

DATA = Path(__file__).parent / "data"
PRECISIONS = [torch.float32, torch.float64]


@dataclass(frozen=True)
class Case:
    """A method whose public checkpoint the fixture describes, built at the fixture's widths."""

    method: Method
    fixture: dict

    @property
    def crops(self) -> int:
        return self.fixture["shape"]["crops"]

    @property
    def feature_dim(self) -> int:
        return self.fixture["shape"]["feature_dim"]


def fixture(name: str) -> dict:
    return json.loads((DATA / f"{name}_checkpoint_reference.json").read_text())


MGFN_FIXTURE = fixture("mgfn")
CASES = {
    "rtfm": Case(RTFM(RTFMConfig()), fixture("rtfm")),
    "mgfn": Case(MGFN(MGFNConfig(**dict(zip(("dim1", "dim2", "dim3"), MGFN_FIXTURE["shape"]["dims"], strict=True)))),
                 MGFN_FIXTURE),
}


def public_state(case: Case) -> dict[str, torch.Tensor]:
    """The state dict the public code saved: the rule's values under the public names, in the file's order."""
    return {name: state_value(kind, k, shape) for k, (name, shape, kind) in enumerate(case.fixture["public_state"])}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case's public checkpoint, written as the public training script writes it."""
    folder = tmp_path_factory.mktemp("public_checkpoints")
    paths = {}
    for name, case in CASES.items():
        paths[name] = folder / f"{name}final.pkl"
        torch.save(public_state(case), paths[name])
    return paths


def video(case: Case, n: int, dtype: torch.dtype) -> torch.Tensor:
    """Test video n of the fixture as vadbench scores it, (1, C, T, D)."""
    shape = case.fixture["shape"]
    stream = case.fixture["rule"]["test_stream"] + n
    return snippet_features(stream, [0], case.crops, shape["test_lengths"][n], case.feature_dim).to(dtype)


@pytest.mark.parametrize("name", CASES)
def test_the_rebuilt_checkpoint_holds_what_the_public_code_saved(name: str, checkpoints: dict[str, Path]) -> None:
    saved = torch.load(checkpoints[name], weights_only=True)
    assert state_digest(saved) == CASES[name].fixture["checkpoint"]["state_digest"]


@pytest.mark.parametrize("dtype", PRECISIONS, ids=["float32", "float64"])
@pytest.mark.parametrize("name", CASES)
def test_public_checkpoint_scores_as_the_public_test_function(
    name: str, dtype: torch.dtype, checkpoints: dict[str, Path]
) -> None:
    case = CASES[name]
    # The public scores are compared as they are: no post-processing to apply on vadbench's side.
    assert case.method.declarations().postprocess is None
    model = public_model(case.method, name, checkpoints[name], case.crops, case.feature_dim).to(dtype)
    lengths = case.fixture["shape"]["test_lengths"]
    with torch.inference_mode():
        scores = {n: case.method.score(model, video(case, n, dtype), torch.tensor([length]))[0]
                  for n, length in enumerate(lengths)}
    assert failures(scores, from_records(dict(enumerate(case.fixture["test_scores"]))), dtype) == []


@pytest.mark.parametrize(("name", "other"), [("rtfm", "mgfn"), ("mgfn", "rtfm")])
def test_the_other_methods_checkpoint_is_refused_in_one_line(
    name: str, other: str, checkpoints: dict[str, Path]
) -> None:
    case = CASES[name]
    with pytest.raises(UsageError) as refusal:
        public_model(case.method, name, checkpoints[other], case.crops, case.feature_dim)
    message = str(refusal.value)
    assert "\n" not in message
    assert f"not a checkpoint of {name}" in message
    assert "keys missing" in message and "unexpected keys" in message


def test_other_widths_are_refused_naming_the_shapes(checkpoints: dict[str, Path]) -> None:
    """MGFN at the published last stage (1024) refuses the fixture's checkpoint (256)."""
    with pytest.raises(UsageError, match=r"shapes differ: .*\(model \(1024") as refusal:
        public_model(MGFN(MGFNConfig()), "mgfn", checkpoints["mgfn"], CASES["mgfn"].crops, CASES["mgfn"].feature_dim)
    assert "\n" not in str(refusal.value) and "keys missing" not in str(refusal.value)


@pytest.mark.parametrize("options", [{"use_pdc": False}, {"use_tsa": False}, {"use_pdc": False, "use_tsa": False}])
def test_rtfm_ablations_without_a_public_model_declare_no_public_format(
    options: dict, checkpoints: dict[str, Path]
) -> None:
    """The public RTFM always has PDC and TSA; an ablation without one has no public checkpoint."""
    with pytest.raises(UsageError, match="declares no public checkpoint format"):
        public_model(RTFM(RTFMConfig(**options)), "rtfm-ablation", checkpoints["rtfm"], 10, 2048)


def test_rtfm_ablation_with_both_branches_loads_the_public_checkpoint(checkpoints: dict[str, Path]) -> None:
    """Without feature magnitudes (MIL ranking) the model is the public one: its checkpoints load."""
    model = public_model(RTFM(RTFMConfig(use_fm=False)), "rtfm-pdc-tsa", checkpoints["rtfm"], 10, 2048)
    assert not model.training
