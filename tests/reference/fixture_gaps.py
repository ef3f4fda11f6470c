"""How the unit tests compare vadbench with a group of entries of the RTFM or MGFN fixture (forward outputs,
loss terms, BatchNorm statistics, gradients, updates or test scores; see fixture_rule.record).

The reference is always the public code's float64 value. The gap of a tensor is
max |ours - reference| / max |reference| over its stored entries (the whole tensor, or samples of it
with the largest |entry| among them), and for a sampled tensor also |norm(ours) - norm(reference)| /
norm(reference). The denominator is the whole reference tensor's largest |entry|, except for a tensor
that is zero up to rounding (largest |entry| below 1e-12 of the group's largest, as the gradient of a
bias feeding a training-mode BatchNorm): both its gaps are measured against the group's largest entry.

- vadbench in float64: every gap <= 1e-12.
- vadbench in float32: every gap <= max(10 x the public code's own float32 noise in the group, 1e-6),
  the noise being the largest gap of the public float32 values to the float64 ones among the group's
  tensors. Measured per tensor, the public noise is one draw: with torch's AVX-512, AVX2 and SSE
  kernels (chosen by ATEN_CPU_CAPABILITY, DNNL_MAX_CPU_ISA and MKL_ENABLE_INSTRUCTIONS on one machine;
  the fixtures were written with AVX-512), vadbench's float32 gaps were up to 76 times the public gap of
  the same tensor (a bias gradient that the public float32 run happened to get within 1.4e-8), but at
  most 3.8 times the largest public gap of its group.
"""

from __future__ import annotations

import torch

FLOAT64_LIMIT = 1e-12
FLOAT32_FACTOR = 10.0
FLOAT32_FLOOR = 1e-6
#: A tensor whose largest |entry| is below this fraction of its group's largest is zero up to rounding.
ZERO = 1e-12


def _denominator(entry: dict, group_scale: float) -> float:
    if entry["absmax"] < ZERO * group_scale:
        return group_scale
    return entry["absmax"] or 1.0


def _gap(values: torch.Tensor, norm: float | None, entry: dict, group_scale: float) -> float:
    denominator = _denominator(entry, group_scale)
    reference = torch.tensor(entry["fp64"], dtype=torch.float64)
    gap = float((values - reference).abs().max()) / denominator
    if "norm" in entry:
        reference_norm = entry["norm"]["fp64"]
        gap = max(gap, abs(norm - reference_norm) / max(reference_norm, denominator))
    return gap


def gap(ours: torch.Tensor, entry: dict, group_scale: float) -> float:
    """vadbench's gap to the public float64 value; `group_scale` is the group's largest |entry|."""
    assert list(ours.shape) == entry["shape"], f"shape {list(ours.shape)}, the fixture's {entry['shape']}"
    flat = ours.detach().double().reshape(-1)
    values = flat[entry["index"]] if "index" in entry else flat
    return _gap(values, float(flat.norm()), entry, group_scale)


def public_float32_gap(entry: dict, group_scale: float) -> float:
    """The public code's own float32 gap to its float64 value."""
    norm = entry["norm"]["fp32"] if "norm" in entry else None
    return _gap(torch.tensor(entry["fp32"], dtype=torch.float64), norm, entry, group_scale)


def limit(entries: dict, dtype: torch.dtype) -> float:
    """The largest gap allowed for vadbench in `dtype` in a group of entries (see the module docstring)."""
    if dtype == torch.float64:
        return FLOAT64_LIMIT
    scale = group_scale(entries)
    noise = max(public_float32_gap(entry, scale) for entry in entries.values())
    return max(FLOAT32_FACTOR * noise, FLOAT32_FLOOR)


def group_scale(entries: dict) -> float:
    return max(entry["absmax"] for entry in entries.values())


def failures(ours: dict, entries: dict, dtype: torch.dtype) -> list[str]:
    """The group's entries whose gap exceeds the limit, as readable lines (empty when all agree)."""
    allowed, scale = limit(entries, dtype), group_scale(entries)
    found = {name: gap(ours[name], entry, scale) for name, entry in entries.items()}
    return [f"{name}: gap {value:.2e} > {allowed:.2e}" for name, value in found.items() if not value <= allowed]
