"""Cutting a clip's frames into the non-overlapping fixed-length snippets a feature extractor sees.

The published feature files differ in what happens to the frames after the last full snippet, so the
rule is named, never implied:

- ``"ceil-loop"``: T = ceil(n / length); the last partial snippet is padded by looping its own frames
  from its first one (frame i of the padded snippet is frame i mod r of the r it has), as the
  ``LoopPad`` step of the pipeline RTFM's author posted does. RTFM's released ShanghaiTech test
  features have T = ceil(n / 16).
- ``"floor"``: T = floor(n / length); the last partial snippet is dropped (the community I3D extractors).
- ``"floor-minus-one"``: T = floor((n - 1) / length); the last frame is dropped first (Wu et al.'s RGB
  features, aligned with the n - 1 optical-flow frames), then the last partial snippet.

A clip that gives no full snippet under the rule (fewer than `length` frames; `length` frames under
``"floor-minus-one"``) is refused for every rule, loop-padding included: a feature of a few looped
frames would pass for a real snippet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import get_args

import numpy as np

from vadbench.api.errors import UsageError
from vadbench.api.extractor import SnippetRule

SNIPPET_RULES: tuple[SnippetRule, ...] = get_args(SnippetRule)


def snippet_count(frames: int, rule: SnippetRule, length: int = 16) -> int:
    """The number of snippets T that `rule` cuts from `frames` frames (0 when it gives no full snippet)."""
    if frames < minimum_frames(rule, length):
        return 0
    if rule == "ceil-loop":
        return -(-frames // length)
    if rule == "floor":
        return frames // length
    return (frames - 1) // length


def minimum_frames(rule: SnippetRule, length: int = 16) -> int:
    """The fewest frames from which `rule` cuts one snippet of `length` frames."""
    if rule not in SNIPPET_RULES:
        raise ValueError(f"unknown snippet rule {rule!r}; expected one of {', '.join(SNIPPET_RULES)}")
    return length + 1 if rule == "floor-minus-one" else length


def snippets(frames: Iterable[np.ndarray], rule: SnippetRule, length: int = 16, *, name: str) -> Iterator[np.ndarray]:
    """The ``[length, H, W, 3]`` snippets of `frames` under `rule`, each made as soon as its frames arrived.

    At most `length` + 1 frames are held at a time. A clip too short for one snippet is a UsageError
    naming `name` and its frame count (raised once its frames are exhausted, before anything is yielded).
    """
    needed = minimum_frames(rule, length)
    # "floor-minus-one" may only emit a snippet once a frame after it proves it is not the dropped last one.
    held = length + 1 if rule == "floor-minus-one" else length
    buffer: list[np.ndarray] = []
    seen = 0
    for frame in frames:
        buffer.append(frame)
        seen += 1
        if len(buffer) == held:
            yield np.stack(buffer[:length])
            del buffer[:length]
    if seen < needed:
        raise UsageError(f"{name}: {seen} frames, fewer than the {needed} one {length}-frame snippet needs ({rule})")
    if rule == "ceil-loop" and buffer:
        yield np.stack([buffer[index % len(buffer)] for index in range(length)])
