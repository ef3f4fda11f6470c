"""A benchmark assembled through the preparation cache: its test and training parts read from their cache
entries, the missing ones assembled once and written there.

The test part depends on the dataset's configuration alone and the training part also on the reduction, so a
run with a new reduction reads the training files only. A cache that cannot be written (a read-only root) does
not stop a run: the part is assembled in memory, with a warning.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vadbench.api.reduction import Reduction
from vadbench.api.types import Benchmark
from vadbench.data.assembly import benchmark_of, build_test_part, build_train_part, in_memory, measure
from vadbench.data.check import Problems
from vadbench.data.manifest import Manifest
from vadbench.data.npy import VideoFiles
from vadbench.data.prepcache import Allocate, P, PrepCache, Slot, TestPart, TrainPart


def assemble_through_cache(
    cache: PrepCache, name: str, primary_metric: str, identity: dict[str, Any], manifest: Manifest,
    problems: Problems, reduction: Reduction,
) -> Benchmark | None:
    """The benchmark from its cached test and training parts, preparing (and caching) the missing ones; None
    (with `problems` filled) when something is wrong. `identity`: the adapter's options that shape the data,
    part of each entry's key with the source files."""
    train_slot = cache.slot(name, f"train-{reduction.key}", identity, _source_files(manifest, manifest.train))
    test_slot = cache.slot(name, "test", identity, _source_files(manifest, [t.files for t in manifest.test]))
    train, test = cache.load(train_slot, TrainPart), cache.load(test_slot, TestPart)
    if train is None or test is None:
        shapes = measure(name, manifest, problems, train, test)
        if train is None:
            train = _prepare(cache, train_slot, problems,
                             lambda allocate: build_train_part(manifest, shapes, problems, allocate, reduction))
        if test is None:
            test = _prepare(cache, test_slot, problems,
                            lambda allocate: build_test_part(manifest, shapes, problems, allocate))
    if train is None or test is None:
        return None
    benchmark = benchmark_of(name, primary_metric, manifest, train, test)
    meta = {**benchmark.meta, "cache": str(cache.directory)}
    if train.digest and test.digest:  # both from the cache: their fingerprint without hashing them again
        meta["fingerprint"] = benchmark.fingerprint_of(train.digest, test.digest)
    return dataclasses.replace(benchmark, meta=meta)


def _source_files(manifest: Manifest, videos: list[VideoFiles]) -> list[Path]:
    """The files a part made of `videos` is read from: theirs, and the lists, annotations and ground truth
    (which say which videos there are and how they are labelled)."""
    files = [*manifest.sources, *([manifest.prebuilt] if manifest.prebuilt else [])]
    for video in videos:
        files.extend(video.files)
        if video.audio is not None:
            files.append(video.audio)
    return files


def _prepare(cache: PrepCache, slot: Slot, problems: Problems, build: Callable[[Allocate], P | None]) -> P | None:
    """The part `build` prepares, written into the cache; in memory when the cache cannot be written (a
    read-only root must not stop a run)."""
    known = len(problems)
    try:
        return cache.write(slot, build)
    except OSError as error:
        warnings.warn(f"cannot write the preparation cache in {cache.directory}: {error}", stacklevel=3)
        del problems.messages[known:]  # found again by the second attempt
        return build(in_memory)
