"""The helpers the built-in methods share (`vadbench.methods._shared`): hand-computed values of each, and
the rule that makes them the only shared code: no method package imports another method package."""

from __future__ import annotations

import ast
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import vadbench.methods
from vadbench.methods._shared.losses import binary_cross_entropy, ranking_hinge, score_sparsity, squared_differences
from vadbench.methods._shared.selection import dropout_mask, gather_top_k, top_k_indices
from vadbench.methods._shared.tensors import at_least_float32, crop_sequences
from vadbench.methods._shared.transformer import TransformerLayer, local_attention

pytestmark = pytest.mark.usefixtures("one_thread")

METHODS = Path(vadbench.methods.__file__).parent
SHARED = "_shared"


# --- no method package imports another ---------------------------------------------------------------


def imported_modules(path: Path, package: str) -> Iterator[str]:
    """The absolute names of the modules (and of the names from them) that the module `path` of `package`
    imports, relative imports resolved."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def foreign_method_imports(methods: Path) -> list[str]:
    """``file: module`` for each import, in a package under `methods`, of another method package than its
    own (`_shared`, imported by every method, imports none)."""
    prefix = "vadbench.methods."
    found = []
    for package_dir in sorted(path for path in methods.iterdir() if (path / "__init__.py").is_file()):
        own = package_dir.name
        for path in sorted(package_dir.rglob("*.py")):
            package = prefix + ".".join(path.relative_to(methods).parent.parts)
            for module in imported_modules(path, package):
                if module.startswith(prefix):
                    imported = module[len(prefix):].split(".")[0]
                    if imported != own and (own == SHARED or imported != SHARED):
                        found.append(f"{path.relative_to(methods)}: {module}")
    return found


def test_no_method_package_imports_another_method_package() -> None:
    """A method's numbers move only with its own code or `_shared`'s: the helpers another method needs
    live in `vadbench.methods._shared`, never in a method package it would import."""
    assert {path.name for path in METHODS.iterdir() if (path / "__init__.py").is_file()} >= {
        SHARED, "rtfm", "mgfn", "sultani_mil", "ur_dmu", "bn_wvad", "pel4vad"}
    assert foreign_method_imports(METHODS) == []


def test_the_import_check_sees_absolute_and_relative_imports(tmp_path: Path) -> None:
    for name, source in {
        "a": "from vadbench.methods.b.model import Net\n",
        "b": "from ..a import method\nimport vadbench.methods._shared.losses\n",
        "c": "from vadbench.methods import a\nfrom . import model\n",
        SHARED: "import vadbench.methods.c.model as m\n",
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(source)
    assert foreign_method_imports(tmp_path) == [
        "_shared/__init__.py: vadbench.methods.c.model",
        "a/__init__.py: vadbench.methods.b.model",
        "a/__init__.py: vadbench.methods.b.model.Net",
        "b/__init__.py: vadbench.methods.a",
        "b/__init__.py: vadbench.methods.a.method",
        "c/__init__.py: vadbench.methods.a",
    ]


# --- tensors ----------------------------------------------------------------------------------------


def test_at_least_float32_promotes_half_precision_and_keeps_wider() -> None:
    assert [at_least_float32(torch.zeros(1, dtype=dtype)).dtype for dtype in
            (torch.bfloat16, torch.float16, torch.float32, torch.float64)] == [
        torch.float32, torch.float32, torch.float32, torch.float64]


def test_crop_sequences_are_video_major() -> None:
    videos = torch.arange(6.0).reshape(2, 3, 1, 1)  # (B, C, T, D), training batches and scored videos: 3 b + c
    assert crop_sequences(videos).flatten().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert crop_sequences(videos).shape == (6, 1, 1)
    two_steps = torch.arange(8.0).reshape(2, 2, 2, 1)  # (B, C, T, D)
    assert crop_sequences(two_steps)[:, :, 0].tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]


# --- losses -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("saturated", ["clamp_log", "floor"])
def test_binary_cross_entropy_hand_value(saturated: str) -> None:
    value = binary_cross_entropy(torch.tensor([0.5, 0.8]), torch.tensor([0.0, 1.0]), saturated=saturated)
    assert value.item() == pytest.approx(-(math.log(0.5) + math.log(0.8)) / 2, rel=1e-6)


@pytest.mark.parametrize(("saturated", "expected"), [
    ("clamp_log", 100.0), ("floor", -math.log(torch.finfo(torch.float32).tiny))])
def test_binary_cross_entropy_of_saturated_probabilities_is_finite(saturated: str, expected: float) -> None:
    probabilities = torch.tensor([0.0, 1.0], requires_grad=True)  # both maximally wrong
    value = binary_cross_entropy(probabilities, torch.tensor([1.0, 0.0]), saturated=saturated)
    value.backward()
    assert value.item() == pytest.approx(expected, rel=1e-6)
    assert probabilities.grad is not None and torch.isfinite(probabilities.grad).all()


@pytest.mark.parametrize("saturated", ["clamp_log", "floor"])
def test_binary_cross_entropy_runs_in_the_working_precision(saturated: str) -> None:
    labels = torch.tensor([0.0, 1.0])
    for given, computed in [(torch.float64, torch.float64), (torch.float32, torch.float32),
                            (torch.bfloat16, torch.float32)]:
        probabilities = torch.tensor([0.25, 0.75], dtype=given)
        assert binary_cross_entropy(probabilities, labels, saturated=saturated).dtype == computed
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert binary_cross_entropy(probabilities, labels, saturated=saturated).dtype == computed


def test_binary_cross_entropy_names_an_unknown_treatment() -> None:
    with pytest.raises(ValueError, match="saturated"):
        binary_cross_entropy(torch.tensor([0.5]), torch.tensor([1.0]), saturated="clip")  # type: ignore[arg-type]


def test_ranking_hinge_hand_values() -> None:
    abnormal = torch.tensor([[0.2, 0.9, 0.1], [0.95, 0.3, 0.2], [2.0, 0.0, 0.0]])
    normal = torch.tensor([[0.3, 0.4, 0.1], [0.1, 0.0, 0.05], [0.5, 0.1, 0.0]])
    # 1 - 0.9 + 0.4 = 0.5; 1 - 0.95 + 0.1 = 0.15; max(0, 1 - 2 + 0.5) = 0
    assert ranking_hinge(abnormal, normal).tolist() == pytest.approx([0.5, 0.15, 0.0])
    assert ranking_hinge(abnormal, normal, margin=2.0).tolist() == pytest.approx([1.5, 1.15, 0.5])
    # Every abnormal bag against every normal bag (normal maxima 0.4, 0.1, 0.5).
    every_pair = ranking_hinge(abnormal[:, None], normal[None, :])
    expected = [[0.5, 0.2, 0.6], [0.45, 0.15, 0.55], [0.0, 0.0, 0.0]]
    assert every_pair.shape == (3, 3) and every_pair.tolist() == [pytest.approx(row) for row in expected]


def test_squared_differences_within_each_video_and_across_the_flattened_batch() -> None:
    scores = torch.tensor([[0.1, 0.5, 0.2], [0.9, 0.9, 0.0]])
    assert squared_differences(scores).tolist() == [pytest.approx([0.16, 0.09]), pytest.approx([0.0, 0.81])]
    # within each video: 0.4^2 + 0.3^2 = 0.25 and 0 + 0.9^2 = 0.81 (no term between the videos)
    assert squared_differences(scores).sum(dim=1).tolist() == pytest.approx([0.25, 0.81])
    # flattened [0.1, 0.5, 0.2, 0.2]: 0.4^2 + 0.3^2 (across the boundary) + 0
    flattened = squared_differences(torch.tensor([[0.1, 0.5], [0.2, 0.2]]).reshape(-1))
    assert flattened.tolist() == pytest.approx([0.16, 0.09, 0.0])


def test_score_sparsity_l2_and_sum() -> None:
    scores = torch.tensor([[0.3], [0.4]])
    assert score_sparsity(scores, "l2").item() == pytest.approx(0.5)
    assert score_sparsity(scores, "sum").item() == pytest.approx(0.7)
    with pytest.raises(ValueError, match="sparsity"):
        score_sparsity(scores, "l1")  # type: ignore[arg-type]


# --- selection --------------------------------------------------------------------------------------


def test_top_k_picks_the_largest_values() -> None:
    values = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0], [9.0, 0.0, 8.0, 7.0, 1.0]])
    assert [sorted(row) for row in top_k_indices(values, 3).tolist()] == [[1, 2, 3], [0, 2, 3]]


def test_top_k_respects_a_fixed_mask() -> None:
    values = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    keep = torch.tensor([[1 / 0.3, 0.0, 1 / 0.3, 1 / 0.3, 1 / 0.3]])  # the largest one is dropped
    assert sorted(top_k_indices(values, 3, keep)[0].tolist()) == [2, 3, 4]


def test_top_k_clamps_k_to_short_sequences() -> None:
    index = top_k_indices(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), 3)
    assert index.shape == (2, 2)
    assert [sorted(row) for row in index.tolist()] == [[0, 1], [0, 1]]


def test_dropout_mask_values() -> None:
    torch.manual_seed(0)
    mask = dropout_mask(torch.rand(64, 32), 0.7)
    assert sorted(mask.unique().tolist()) == [0.0, pytest.approx(1 / 0.3)]
    assert torch.equal(dropout_mask(torch.rand(2, 3), 0.0), torch.ones(2, 3))


def test_gather_top_k_selects_the_same_snippets_in_every_crop() -> None:
    features = torch.arange(2 * 2 * 4 * 3, dtype=torch.float32).reshape(2, 2, 4, 3)  # (B, C, T, D)
    scores = torch.arange(8, dtype=torch.float32).reshape(2, 4)
    index = torch.tensor([[2, 0], [3, 1]])
    selected, selected_scores = gather_top_k(features, scores, index)
    assert selected.shape == (2, 2, 2, 3)
    for b in range(2):
        for c in range(2):
            assert torch.equal(selected[b, c], features[b, c, index[b]])
    assert selected_scores.tolist() == [[2.0, 0.0], [7.0, 5.0]]


# --- transformer ------------------------------------------------------------------------------------


def test_local_attention_hand_value() -> None:
    # T = 2: weights [[1, a], [a, 1]] with a = exp(-1/e), each column divided by its sum 1 + a.
    a = math.exp(-1 / math.e)
    expected = torch.tensor([[1, a], [a, 1]], dtype=torch.float64) / (1 + a)
    assert torch.allclose(local_attention(2, dtype=torch.float64), expected, rtol=1e-12, atol=0)


def test_local_attention_is_column_normalised() -> None:
    g = local_attention(200)
    assert torch.allclose(g.sum(dim=0), torch.ones(200))
    assert g.sum(dim=1)[0].item() == pytest.approx(0.81, abs=0.01)
    assert torch.equal(local_attention(1), torch.ones(1, 1))


def test_local_attention_runs_in_the_given_precision() -> None:
    exact = local_attention(50, dtype=torch.float64)
    assert exact.dtype == torch.float64 and local_attention(50).dtype == torch.float32
    assert torch.allclose(local_attention(50).double(), exact, rtol=1e-5, atol=0)


def test_transformer_layer_with_zero_output_projections_is_the_identity() -> None:
    """Both sub-blocks are residual: with their last linear layers zero, the layer passes its input."""
    layer = TransformerLayer(width=8, heads=2, head_dim=4, mlp_dim=16, dropout=0.0)
    for linear in (layer.attention.out, layer.feedforward[3]):
        torch.nn.init.zeros_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
    x = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(layer(x), x)
