"""How the equality tests compare vadbench with a public code's reference fixture: one rule for every method.

Each fixture beside the unit tests was written by a script of this folder from the unmodified public code, run
twice: in float32, and in float64 from the same float32 parameters and inputs. vadbench runs the same
computation in float32 and in float64, and both are compared with the public FLOAT64 values.

Tensors are compared in GROUPS of one kind: tensors computed alike from the same inputs, so that their rounding
errors share one scale. The gradients of one backward pass are a group, as are the updates of one optimiser
step, the parameters after it, a model's BatchNorm running means (its running variances another), the scores
of one forward pass, the features it selects, the loss terms in the units of the total loss (a term entering
the total through a small weight, such as RTFM's feature-magnitude term before its 1e-4, is a group of its
own), test scores. The scale of a group is the largest |public float64 entry| among its tensors, and a
tensor's gap is

    max |ours - public float64| / the scale of its group

over the tensor's entries (all of them, or those the fixture sampled from it). The norm of a sampled tensor is
compared too, in the group of its group's norms.

- vadbench in float64: every gap <= 1e-12 (`FLOAT64_LIMIT`): the same computation up to float64 rounding.
- vadbench in float32: every gap <= max(10 x the public code's own float32 noise in the group, 1e-6)
  (`FLOAT32_FACTOR`, `FLOAT32_FLOOR`), the noise being the largest gap of the public float32 values to the
  public float64 values among the group's tensors.

Why the group's scale and not the tensor's own largest entry: the rounding error of a computed value scales
with the magnitudes summed to get it, not with the result. A gradient that is a small difference of large
terms (the gradient of PEL4VAD's distance prior, 6e-12 of itself apart in float64; BN-WVAD's first triplet
term, a hinge mean of 0.0016 over distances near 5) or zero up to rounding (the gradient of a bias feeding a
training-mode BatchNorm, or of PEL4VAD's key bias, which the softmax ignores) is within 2e-16 of its group's
scale.

Why the group's noise and not the tensor's own: the public code's float32 gap of one tensor is one draw of its
rounding error, and a draw can be lucky. Under other summation orders than the fixtures' (one thread with
torch's AVX-512 kernels: two threads, ATEN_CPU_CAPABILITY=avx2 or default, oneDNN off), vadbench's float32 gap
of a tensor reached 400 times the public code's gap of the same tensor (an MGFN gradient norm the public
float32 run got within 2e-9), but at most 3.4 times the public noise of its group; float64 gaps stayed below
1.4e-13. A changed loss weight or a wrong term moves its group by far more than ten times its rounding.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import torch

FLOAT64_LIMIT = 1e-12
FLOAT32_FACTOR = 10.0
FLOAT32_FLOOR = 1e-6


@dataclass(frozen=True)
class Public:
    """One tensor (or number) of the public code: its float64 and float32 entries (flat, float64), the flat
    indices they were sampled at (None: all entries), the largest |float64 entry| of the whole tensor, its
    shape where the fixture holds it, and the (float32, float64) norms of the whole tensor where sampled."""

    float64: torch.Tensor
    float32: torch.Tensor
    scale: float
    index: list[int] | None = None
    shape: list[int] | None = None
    norms: tuple[float, float] | None = None


def flat(values: Any) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float64).detach().reshape(-1)


def from_record(entry: dict) -> Public:
    """A tensor as `fixture_rule.record` stores it (one dict holding both precisions)."""
    norms = (entry["norm"]["fp32"], entry["norm"]["fp64"]) if "norm" in entry else None
    return Public(flat(entry["fp64"]), flat(entry["fp32"]), entry["absmax"], entry.get("index"), entry["shape"], norms)


def from_pair(fp32: Any, fp64: Any) -> Public:
    """A tensor stored once per precision: a number, a (nested) list, or a dict of its entries ("value" or
    "values") with their "index" if sampled, and optionally its "shape", "norm" and largest |entry| ("max_abs";
    if absent, the largest stored one)."""
    if not isinstance(fp64, dict):
        return from_pair({"value": fp32}, {"value": fp64, "shape": list(torch.as_tensor(fp64).shape)})
    key = "value" if "value" in fp64 else "values"
    values64 = flat(fp64[key])
    scale = fp64.get("max_abs", float(values64.abs().max()))
    norms = (fp32["norm"], fp64["norm"]) if "norm" in fp64 else None
    return Public(values64, flat(fp32[key]), scale, fp64.get("index"), fp64.get("shape"), norms)


def from_records(entries: Mapping[Any, dict]) -> dict[Any, Public]:
    """A group of tensors as `fixture_rule.record` stores them, by name."""
    return {name: from_record(entry) for name, entry in entries.items()}


def stored_at(node: Any, path: tuple) -> Any:
    for key in path:
        node = node[key]
    return node


def public_at(node: Mapping[str, Any], *path: Any) -> Public:
    """The tensor at `path` of a fixture node that holds its values under "float32" and "float64"."""
    return from_pair(stored_at(node["float32"], path), stored_at(node["float64"], path))


def group_at(node: Mapping[str, Any], *path: Any) -> dict[Any, Public]:
    """The group at `path` of a fixture node that holds its values under "float32" and "float64": its tensors by
    name (by position where the fixture lists them)."""
    fp64 = stored_at(node["float64"], path)
    return {name: public_at(node, *path, name) for name in (range(len(fp64)) if isinstance(fp64, list) else fp64)}


def split(group: Mapping[Any, Public], *kinds: Collection) -> list[dict[Any, Public]]:
    """`group` as groups of one kind each: the tensors named in each of `kinds`, then the others together."""
    named = set().union(*kinds)
    parts = [{name: group[name] for name in kind} for kind in kinds]
    rest = {name: public for name, public in group.items() if name not in named}
    return [*parts, rest] if rest else parts


def group_scale(group: Mapping[Any, Public]) -> float:
    return max(public.scale for public in group.values())


def public_noise(group: Mapping[Any, Public]) -> float:
    """The largest gap of the public float32 values to the float64 ones among the group's tensors."""
    scale = group_scale(group)
    return max(float((public.float32 - public.float64).abs().max()) / scale for public in group.values())


def limit(group: Mapping[Any, Public], dtype: torch.dtype) -> float:
    """The largest gap the group allows a vadbench run in `dtype` (see the module docstring)."""
    if dtype == torch.float64:
        return FLOAT64_LIMIT
    return max(FLOAT32_FACTOR * public_noise(group), FLOAT32_FLOOR)


def norm_group(group: Mapping[Any, Public]) -> dict[str, Public]:
    """The norms of the group's sampled tensors, as a group of numbers."""
    return {f"norm of {name}": Public(flat(public.norms[1]), flat(public.norms[0]), abs(public.norms[1]))
            for name, public in group.items() if public.norms is not None}


def stored_entries(ours: Any, public: Public, name: str) -> torch.Tensor:
    """vadbench's entries of a whole tensor at the positions the fixture stores."""
    tensor = torch.as_tensor(ours).detach()
    if public.shape is not None:
        assert list(tensor.shape) == public.shape, f"{name}: shape {list(tensor.shape)}, the public {public.shape}"
    entries = flat(tensor)
    return entries[public.index] if public.index is not None else entries


def compared(
    ours: Mapping[Any, Any], group: Mapping[Any, Public], dtype: torch.dtype
) -> dict[Any, tuple[float, float]]:
    """(gap, limit) of every tensor of the group and of every sampled tensor's norm; `ours` holds vadbench's
    whole tensors (or numbers) under the group's names."""
    scale, allowed = group_scale(group), limit(group, dtype)
    found = {}
    for name, public in group.items():
        difference = (stored_entries(ours[name], public, name) - public.float64).abs().max()
        found[name] = (float(difference) / scale, allowed)
    norms = norm_group(group)
    if norms:
        our_norms = {f"norm of {name}": torch.linalg.vector_norm(flat(ours[name]))
                     for name, public in group.items() if public.norms is not None}
        found.update(compared(our_norms, norms, dtype))
    return found


def failures(ours: Mapping[Any, Any], group: Mapping[Any, Public], dtype: torch.dtype, *kinds: Collection) -> list[str]:
    """The tensors of the group whose gap exceeds its limit, as readable lines (empty when all agree); the
    tensors named in each of `kinds` are compared as a group of their own (see `split`)."""
    return [f"{name}: gap {gap:.2e} > {allowed:.2e}" for part in split(group, *kinds)
            for name, (gap, allowed) in compared(ours, part, dtype).items() if not gap <= allowed]
