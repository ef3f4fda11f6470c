"""What the generator scripts share to run a public code unmodified (no vadbench import): the commit check, the
stand-in for the selection dropout, the wrappers that record loss terms, the fixture's ``produced_by`` and its
records of two runs, an extractor's feature record, and the per-snippet scores of a public test function."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from fixture_rule import WHOLE, WHOLE_STATE, record
from torch import nn


def checked_repository(path: Path, code: str, commit: str) -> Path:
    """`path`, refusing (exit 2) unless it is a checkout of `code` at `commit`."""
    head = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    found = head.stdout.strip() if head.returncode == 0 else ""
    if found != commit:
        print(f"--repo {path}: expected a checkout of {code} at {commit}, found {found or 'none'}", file=sys.stderr)
        sys.exit(2)
    return path


def state_kinds(model: nn.Module) -> dict[str, str]:
    """The fixture rule's kind of every state_dict entry of `model`, by name and holding module."""
    kinds = {}
    for prefix, module in model.named_modules():
        for name, _ in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            if name == "num_batches_tracked":
                kind = "count"
            elif name == "g" or (name == "weight" and isinstance(module, nn.BatchNorm1d | nn.LayerNorm)):
                kind = "norm_weight"  # normalisation scales ("g": the public codes' own channel norms)
            elif name == "b":
                kind = "bias"
            else:
                kind = name
            kinds[f"{prefix}.{name}" if prefix else name] = kind
    return kinds


class FixedSelection(nn.Module):
    """Stands in for a model's dropout module: features pass unchanged; in training mode the (B, T) tensors
    of ones that the model draws its selection masks from become the given masks, in the order given."""

    def __init__(self, masks: list[torch.Tensor]) -> None:
        super().__init__()
        self.masks = masks
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.dim() != 2:
            return x
        mask = self.masks[self.calls % len(self.masks)]
        self.calls += 1
        return mask.to(x.dtype)


class Recording(nn.Module):
    """Calls a loss module and keeps its (detached) outputs under `names`, one name per call in turn."""

    def __init__(self, inner: nn.Module, into: dict, *names: str) -> None:
        super().__init__()
        self.inner, self.into, self.names, self.calls = inner, into, names, 0

    def forward(self, *inputs):
        value = self.inner(*inputs)
        self.into[self.names[self.calls % len(self.names)]] = value.detach()
        self.calls += 1
        return value


def recorded(function: Callable, into: dict, name: str) -> Callable:
    """`function`, keeping its (detached) result under `name`."""

    def call(*inputs):
        value = function(*inputs)
        into[name] = value.detach()
        return value

    return call


def records(fp32, fp64, whole: int = WHOLE):
    """`fixture_rule.record` of every tensor of two runs (nested dicts and lists of the same structure)."""
    if isinstance(fp64, dict):
        return {name: records(fp32[name], value, whole) for name, value in fp64.items()}
    if isinstance(fp64, list):
        return [records(a, b, whole) for a, b in zip(fp32, fp64, strict=True)]
    return record(fp32, fp64, whole)


def fixture_groups(fp32: dict, fp64: dict, groups: tuple[str, ...]) -> dict:
    """The records of the named groups of two runs; the model's state (parameters, their gradients and
    updates, BatchNorm statistics) sampled more sparsely than outputs."""
    state = ("batchnorm", "grads", "updates")
    return {group: records(fp32[group], fp64[group], WHOLE_STATE if group in state else WHOLE) for group in groups}


def feature_record(fp32: torch.Tensor, fp64: torch.Tensor) -> dict:
    """`fixture_rule.record` of every entry, the float32 ones to 9 significant digits."""
    entry = record(fp32, fp64, whole=fp64.numel())
    entry["fp32"] = [float(f"{value:.9g}") for value in entry["fp32"]]
    return entry


def snippet_scores(frame_scores, lengths: list[int]) -> list[torch.Tensor]:
    """The per-snippet scores of the videos of `lengths` from a public test function's per-frame scores, which
    repeat each snippet's score 16 times (checked)."""
    frames = torch.as_tensor(frame_scores)
    scores = frames[::16]
    assert torch.equal(frames, scores.repeat_interleave(16)), "test() no longer repeats each score 16 times"
    return list(scores.split(lengths))


def write_json(path: Path, fixture: dict) -> None:
    """The fixture with one line per entry of its top two levels."""
    lines = []
    for key, value in fixture.items():
        if isinstance(value, dict) and value:
            inner = ",\n".join(f"  {json.dumps(name)}: {json.dumps(item)}" for name, item in value.items())
            lines.append(f"{json.dumps(key)}: {{\n{inner}\n }}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}")
    path.write_text("{\n " + ",\n ".join(lines) + "\n}\n")
    json.loads(path.read_text())  # well formed


def produced_by(script: str, code: str, commit: str, neutralised: list[str]) -> dict:
    return {
        "script": script,
        "code": f"{code}@{commit}",
        "torch": torch.__version__,
        "device": "cpu",
        "cpu": f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()}",
        "threads": torch.get_num_threads(),
        "neutralised": neutralised,
    }
