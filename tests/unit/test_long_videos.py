"""Scoring a long test video: the methods that attend over a whole video (PEL4VAD, UR-DMU, BN-WVAD, MGFN)
build their (T, T) weights a block of query rows at a time. The blocks give the numbers of one block (the
unblocked formula), and the memory scoring takes grows linearly with T for every method.

Narrow widths and 2 crops keep the videos of a few thousand snippets cheap; `blocks.BLOCK_ELEMENTS` is
made small so that such videos are cut into many blocks (huge: one block, the unblocked formula).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from vadbench.api.method import Method
from vadbench.methods._shared import blocks
from vadbench.methods.bn_wvad.method import BNWVAD, BNWVADConfig
from vadbench.methods.mgfn.method import MGFN, MGFNConfig
from vadbench.methods.pel4vad.method import PEL4VAD, PEL4VADConfig
from vadbench.methods.rtfm.method import RTFM, RTFMConfig
from vadbench.methods.sultani_mil.method import SultaniMIL, SultaniMILConfig
from vadbench.methods.ur_dmu.method import URDMU, URDMUConfig

#: Sums compared bit for bit depend on the thread count.
pytestmark = pytest.mark.usefixtures("one_thread")

CROPS, DIM = 2, 16
#: Each method at narrow widths (two heads where it has heads).
NARROW: dict[str, Callable[[], Method]] = {
    "pel4vad": lambda: PEL4VAD(PEL4VADConfig(hidden=8, out_dim=8, prompt_dim=8)),
    "ur-dmu": lambda: URDMU(URDMUConfig(width=16, heads=2, head_dim=8, mlp_dim=16, slots=16, head_hidden=8)),
    "bn-wvad": lambda: BNWVAD(BNWVADConfig(width=32, heads=2, head_dim=8, mlp_dim=16, ratios=(4, 8))),
    "mgfn": lambda: MGFN(MGFNConfig(dim1=16, dim2=16, dim3=16, depth1=1, depth2=1, depth3=1, head_dim=8)),
    "rtfm": lambda: RTFM(RTFMConfig(hidden1=8, hidden2=8)),
    "sultani-mil": lambda: SultaniMIL(SultaniMILConfig(hidden1=8, hidden2=8)),
}
ATTENDING = ["pel4vad", "ur-dmu", "bn-wvad", "mgfn"]


def video(steps: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """One test video (1, C, T, D) of random features and its length."""
    features = torch.randn(1, CROPS, steps, DIM, generator=torch.Generator().manual_seed(steps), dtype=dtype)
    return features, torch.tensor([steps])


def built(name: str, dtype: torch.dtype = torch.float32) -> tuple[Method, nn.Module]:
    torch.manual_seed(0)
    method = NARROW[name]()
    return method, method.build(CROPS, DIM).to(dtype).eval()


def scores(method: Method, model: nn.Module, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return method.score(model, features, lengths)


@pytest.mark.parametrize(("steps", "per_row"), [(1, 5), (8, 5), (9, 5), (17, 5), (2000, 1), (1999, 4000), (300, 1)])
def test_row_blocks_cover_the_rows_in_equal_blocks_of_at_least_four_rows(
    steps: int, per_row: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 2**18)
    cut = blocks.row_blocks(steps, per_row)
    heights = [block.stop - block.start for block in cut]
    assert cut[0].start == 0 and cut[-1].stop == steps
    assert all(a.stop == b.start for a, b in zip(cut, cut[1:], strict=False))
    assert max(heights) - min(heights) <= 1
    assert max(heights) <= max(blocks.FEWEST_ROWS, 2**18 // per_row)
    assert len(cut) == 1 or min(heights) >= 4


def test_one_block_while_autograd_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training keeps the unblocked formula (its backward would sum the gradients in another order)."""
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 1)
    seen: list[slice] = []

    def rows_seen(rows: slice) -> torch.Tensor:
        seen.append(rows)
        return torch.zeros(1)

    blocks.by_row_blocks(rows_seen, 100, per_row=100, dim=0)
    assert seen == [blocks.ALL_ROWS]
    with torch.no_grad():
        blocks.by_row_blocks(rows_seen, 100, per_row=100, dim=0)
    assert len(seen) == 1 + 13


@pytest.mark.parametrize("name", ATTENDING)
@pytest.mark.parametrize(("steps", "budget"), [(300, 1), (1999, 1), (1999, 2**20)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_blocked_scores_equal_the_unblocked_formula(
    name: str, steps: int, budget: int, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """float32 (this CPU's BLAS): bit for bit; float64: within 1e-12 relative (the products of a block sum
    in another order there). Budget 1 cuts the video into blocks of 7 or 8 rows."""
    method, model = built(name, dtype)
    features, lengths = video(steps, dtype)
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 2**62)
    whole = scores(method, model, features, lengths)
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", budget)
    blocked = scores(method, model, features, lengths)
    if dtype == torch.float32:
        assert torch.equal(blocked, whole)
    else:
        assert ((blocked - whole).abs().max() / whole.abs().max()).item() <= 1e-12


class PeakTensorBytes(TorchDispatchMode):
    """The most bytes that the tensors created while active held at once (storages counted once, until
    freed). Tensors that exist before (features, parameters) are not counted, nor are views of them."""

    def __init__(self, existing: Iterator[torch.Tensor]) -> None:
        super().__init__()
        self.existing = {StorageWeakRef(tensor.untyped_storage()).cdata for tensor in existing}
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        self.live = {key: (ref, size) for key, (ref, size) in self.live.items() if not ref.expired()}
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                ref = StorageWeakRef(tensor.untyped_storage())
                if ref.cdata not in self.existing:
                    self.live.setdefault(ref.cdata, (ref, tensor.untyped_storage().nbytes()))
        self.peak = max(self.peak, sum(size for _, size in self.live.values()))
        return out


def scoring_peak(name: str, steps: int) -> int:
    """Peak bytes of the tensors that scoring one video of `steps` snippets creates."""
    method, model = built(name)
    features, lengths = video(steps)
    with torch.inference_mode():
        tracker = PeakTensorBytes(iter([features, *model.parameters(), *model.buffers()]))
        with tracker:
            method.score(model, features, lengths)
    return tracker.peak


@pytest.mark.parametrize("name", list(NARROW))
def test_scoring_memory_grows_linearly_with_the_video(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Doubling T at most doubles the peak (the (T, T) weights of one video would quadruple it: 3.5x and
    more at these widths); blocks of 2^16 weights make 1,000 snippets long enough to be cut."""
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 2**16)
    short, long = scoring_peak(name, 1000), scoring_peak(name, 2000)
    assert long <= 2.2 * short, f"{name}: {short} -> {long} bytes"


def test_compiled_scoring_compiles_no_graph_per_length_of_long_videos(monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocks run eagerly under torch.compile (aot_eager here: dynamo's tracing without code generation),
    so a loop over a length-dependent number of blocks is never unrolled into a graph per length."""
    monkeypatch.setattr(blocks, "BLOCK_ELEMENTS", 2**16)
    method, model = built("pel4vad")
    torch._dynamo.reset()
    compiled = torch.compile(method.score, dynamic=True, backend="aot_eager")
    graphs = []
    for steps in (700, 900, 1003):
        features, lengths = video(steps)
        with torch.inference_mode():
            assert torch.equal(compiled(model, features, lengths), method.score(model, features, lengths))
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[1] == graphs[2] == graphs[0]
