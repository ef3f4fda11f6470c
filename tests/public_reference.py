"""How a method's equality tests compare vadbench with a public code's reference fixture.

A fixture written by a script of tests/reference/ holds every quantity twice, from the public code run in
float32 and in float64 (the same float32 parameters and inputs cast to float64), under the keys "float32"
and "float64". A quantity is a number, or a dict whose "value" lists the tensor's entries (all of them, with
its "shape", or those at its flat "index").

The gap of a quantity is max |ours - public| / max |public| over its entries. vadbench is compared with the
public FLOAT64 value:

- a float64 vadbench run must agree to FLOAT64_GAP (1e-12): the same computation up to float64 rounding;
- a float32 vadbench run must agree to FLOAT32_FACTOR (100) times the public code's own float32-vs-float64 gap
  of that quantity, and never less than FLOAT32_FLOOR (1e-6, about 8 float32 ulps). vadbench's float32 run
  rounds the same computation in another order (and another CPU's kernels round it in yet another), so its
  distance from the exact value is of the size of the public code's own rounding, which each fixture
  measures per quantity: the tolerance follows from the fixture, not from one CPU's bits.

Why 100 and not 10: the public code's gap is one sample of its rounding error, and a small scalar can be
lucky. Measured on an AMD EPYC over UR-DMU's and BN-WVAD's 308 float32 quantities with other summation orders
(2 threads, oneDNN off): vadbench's gap reached 12.6 times the public code's own for BN-WVAD's first triplet
term (0.0016, a hinge mean of distances near 5, whose rounding cancellation amplifies), and at most 2.8 times
for any other quantity above the floor. A changed loss weight or a wrong term moves a quantity by far more.
"""

from __future__ import annotations

from typing import Any

import torch

FLOAT64_GAP = 1e-12
FLOAT32_FACTOR = 100.0
FLOAT32_FLOOR = 1e-6


def gap(ours: Any, public: Any) -> float:
    """max |ours - public| / max |public| over the entries (0 when both are all zeros)."""
    ours_t = torch.as_tensor(ours, dtype=torch.float64).detach().reshape(-1)
    public_t = torch.as_tensor(public, dtype=torch.float64).reshape(-1)
    assert ours_t.shape == public_t.shape, f"{ours_t.numel()} entries against {public_t.numel()}"
    scale = public_t.abs().max().item()
    difference = (ours_t - public_t).abs().max().item()
    return difference / scale if scale > 0 else difference


def entry(fixture: dict, precision: str, path: tuple[str | int, ...]) -> Any:
    node = fixture[precision]
    for key in path:
        node = node[key]
    return node


def values(quantity: Any) -> Any:
    return quantity["value"] if isinstance(quantity, dict) else quantity


def allowed_gap(fixture: dict, precision: str, path: tuple[str | int, ...]) -> float:
    """The largest gap from the public float64 value allowed to a vadbench run in `precision`."""
    if precision == "float64":
        return FLOAT64_GAP
    own = gap(values(entry(fixture, "float32", path)), values(entry(fixture, "float64", path)))
    return max(FLOAT32_FACTOR * own, FLOAT32_FLOOR)


def assert_matches(ours: torch.Tensor | float, fixture: dict, precision: str, *path: str | int) -> float:
    """Assert that `ours` (vadbench's value of the quantity at `path`, whole) agrees with the public float64
    value within `allowed_gap`; sampled quantities are compared at their index. Returns the gap."""
    public = entry(fixture, "float64", path)
    ours_t = torch.as_tensor(ours).detach()
    if isinstance(public, dict) and "index" in public:
        ours_t = ours_t.reshape(-1)[public["index"]]
    elif isinstance(public, dict) and "shape" in public:
        assert list(ours_t.shape) == public["shape"], f"{'/'.join(map(str, path))}: shape {list(ours_t.shape)}"
    found, limit = gap(ours_t, values(public)), allowed_gap(fixture, precision, path)
    assert found <= limit, f"{'/'.join(map(str, path))} ({precision}): gap {found:.2e} > {limit:.2e} allowed"
    return found
