"""Bounded memory: no path copies a whole training or test set, and where the features are never moves a number.

How memory is measured, without flakiness: the pages of a memory map that this process has mapped are
read from ``/proc/self/smaps`` (the resident size of that file's mappings, exactly), and numpy's own
allocations from `tracemalloc` (which traces them, not torch's). A path that copied the training set
(``np.require`` of the map) or kept the pages it read mapped would show the set's size in one of them.
"""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest
import torch
from conftest import TINY_SYNTHETIC

import vadbench.engine.runner as runner_module
import vadbench.engine.selection as selection_module
from vadbench.api.mapped import mapping_of, release
from vadbench.api.method import Sampling, TrainingInput
from vadbench.api.types import RunSpec, TestSet, TrainSet
from vadbench.data.pooling import pool_segments, pool_segments_sultani, segment_bounds, sultani_ranges
from vadbench.engine.placement import HostRows, fits, training_rows
from vadbench.engine.runner import Runner
from vadbench.engine.sampling import Sampler
from vadbench.engine.scoring import VideoScorer
from vadbench.plugins.manager import load_plugins

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads the mapped pages from /proc (Linux)"),
]
CPU = torch.device("cpu")
PAGE = 4096
T = TypeVar("T")


def mapped_bytes(path: Path) -> int:
    """Resident bytes of this process's mappings of `path` (``Rss`` of its entries in /proc/self/smaps)."""
    total, current = 0, False
    target = str(path.resolve())
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:  # a mapping's header
            current = len(fields) >= 6 and fields[5] == target
        elif current and fields[0] == "Rss:":
            total += int(fields[1]) * 1024
    return total


def numpy_peak(call: Callable[[], T]) -> tuple[T, int]:
    """What `call` returns, and the most memory numpy (and Python) held at once during it, in bytes."""
    tracemalloc.start()
    try:
        return call(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def saved_map(path: Path, array: np.ndarray) -> np.ndarray:
    """`array` saved as ``.npy`` and memory-mapped read-only, as the preparation cache hands it over."""
    np.save(path, array)
    return np.load(path, mmap_mode="r")


def test_release_unmaps_the_pages_read_and_keeps_the_bytes(tmp_path):
    values = np.random.default_rng(0).random((256, 1024), dtype=np.float32)  # 1 MiB
    mapped = saved_map(tmp_path / "a.npy", values)
    assert mapping_of(mapped[3:7].T) is mapping_of(mapped) is not None and mapping_of(values) is None
    assert float(np.asarray(mapped).sum()) == float(values.sum())
    assert mapped_bytes(tmp_path / "a.npy") >= values.nbytes
    release(mapped[10:20])  # any view releases its whole map
    assert mapped_bytes(tmp_path / "a.npy") <= PAGE
    np.testing.assert_array_equal(mapped, values)
    release(values)  # ordinary memory: nothing to do


def test_a_written_map_keeps_its_bytes_when_released(tmp_path):
    written = np.lib.format.open_memmap(tmp_path / "w.npy", mode="w+", dtype=np.float32, shape=(64, 1024))
    for row in range(len(written)):
        written[row] = row
        release(written)
    del written
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy")[:, 0], np.arange(64, dtype=np.float32))


def mapped_training_set(tmp_path: Path, videos: int = 64, crops: int = 2, segments: int = 32, dim: int = 512):
    """A memory-mapped training set of `videos` videos, half of them abnormal (8 MiB by default)."""
    features = np.random.default_rng(1).random((videos, crops, segments, dim), dtype=np.float32)
    labels = np.arange(videos) % 2
    train = TrainSet(saved_map(tmp_path / "train.npy", features), labels, tuple(f"v{i}" for i in range(videos)))
    return train, features


@pytest.mark.parametrize("declared", [
    TrainingInput(sampling=Sampling("per_step")),
    TrainingInput(crops="independent", batch="mixed", sampling=Sampling("epochs", drop_last=False)),
    TrainingInput(crops="independent", sampling=Sampling("epochs", drop_last=True)),
], ids=["joint-per-step", "independent-mixed-epochs", "independent-balanced-epochs"])
def test_batches_gathered_from_the_map_equal_those_of_a_copy_and_hold_one_batch(tmp_path, declared):
    train, features = mapped_training_set(tmp_path)
    copied = Sampler.create(train, torch.from_numpy(features.copy()), declared, 4, seed=3)
    mapped = Sampler.create(train, training_rows(train.features, CPU), declared, 4, seed=3)
    assert isinstance(mapped.samples, HostRows)
    expected, found = copied.empty_batch(), mapped.empty_batch()
    batch_bytes = expected.features.numel() * 4
    peak = 0
    for _ in range(3 * len(train) // 4):  # several passes: every sample is read
        a = copied.draw_into(expected)
        b, allocated = numpy_peak(lambda: mapped.draw_into(found))
        peak = max(peak, allocated)
        assert a.ends_epoch == b.ends_epoch
        for x, y in zip(a.batch, b.batch, strict=True):
            assert torch.equal(x, y)
    assert peak < batch_bytes / 4, f"gathering a batch allocated {peak} bytes in numpy; one batch is {batch_bytes}"
    assert mapped_bytes(tmp_path / "train.npy") <= PAGE, "the pages read stay mapped: the set would end up resident"


def test_features_go_to_an_accelerator_only_when_they_fit_with_the_margin(tmp_path):
    """The decision with a made-up device memory (no GPU here; "meta" stands for the accelerator)."""
    gib = 2**30
    device = torch.device("cuda")
    assert fits(10 * gib, device, memory=(40 * gib, 80 * gib))  # 40 free - 20 kept
    assert not fits(21 * gib, device, memory=(40 * gib, 80 * gib))
    assert not fits(1, CPU, memory=(40 * gib, 80 * gib))  # on the CPU features are read where they are
    train, features = mapped_training_set(tmp_path)
    meta = torch.device("meta")
    on_device = training_rows(train.features, meta, memory=(features.nbytes + 80 * gib, 80 * gib))
    assert isinstance(on_device, torch.Tensor) and on_device.device == meta and on_device.shape == features.shape
    assert isinstance(training_rows(train.features, meta, memory=(features.nbytes + 19 * gib, 80 * gib)), HostRows)
    assert mapped_bytes(tmp_path / "train.npy") <= PAGE  # copied to the device a piece at a time, released


def mapped_test_set(tmp_path: Path, lengths=(700, 300, 1200, 40, 900), crops: int = 2, dim: int = 256) -> TestSet:
    features = np.random.default_rng(2).random((sum(lengths), crops, dim), dtype=np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return TestSet(saved_map(tmp_path / "test.npy", features), offsets, np.array([1, 0, 1, 0, 0]),
                   np.zeros(16 * sum(lengths), np.int8), tuple(f"t{i}" for i in range(len(lengths))),
                   ("a", "Normal", "a", "Normal", "Normal"))


def test_scoring_reads_the_test_set_a_padded_batch_at_a_time(tmp_path):
    method = load_plugins().methods.create("rtfm")
    test = mapped_test_set(tmp_path)
    model = method.build(test.features.shape[1], test.features.shape[2]).eval()
    budget = 2 * 1200  # one long video's rows: several batches
    scorer = VideoScorer(method, test, CPU, budget=budget)
    assert scorer.resident is None and len(scorer.batches) > 2
    streamed, peak = numpy_peak(lambda: scorer(model, magnitudes=True))
    batch_bytes = max(len(chosen) * int(test.lengths[chosen].max()) for chosen in scorer.batches) * 2 * 256 * 4
    assert batch_bytes < test.features.nbytes / 2
    assert peak < 1.2 * batch_bytes, f"a pass allocated {peak} bytes; its largest padded batch is {batch_bytes}"
    assert mapped_bytes(tmp_path / "test.npy") <= PAGE
    in_memory = VideoScorer(method, dataclasses.replace(test, features=np.array(test.features)), CPU,
                            budget=budget, resident=True)(model, magnitudes=True)
    for a, b in zip(streamed.scores + streamed.magnitudes, in_memory.scores + in_memory.magnitudes, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_test_set_stays_on_an_accelerator_only_when_it_fits(tmp_path):
    method = load_plugins().methods.create("rtfm")
    test = mapped_test_set(tmp_path)
    gib = 2**30
    assert VideoScorer(method, test, CPU, memory=(80 * gib, 80 * gib)).resident is None  # never on the CPU
    scorer = VideoScorer(method, test, torch.device("meta"), memory=(test.features.nbytes, 80 * gib))
    assert scorer.resident is None, "it does not fit with the margin: padded per pass"
    resident = VideoScorer(method, test, torch.device("meta"), memory=(21 * gib, 80 * gib))
    assert resident.resident is not None and scorer.padded_bytes >= test.features.nbytes
    assert mapped_bytes(tmp_path / "test.npy") <= PAGE


def test_a_scorer_under_another_acceleration_shares_the_prepared_batches(tmp_path):
    from vadbench.engine.acceleration import Acceleration

    method = load_plugins().methods.create("rtfm")
    scorer = VideoScorer(method, mapped_test_set(tmp_path), CPU, resident=True, acceleration=Acceleration("bf16"))
    other = scorer.with_acceleration(Acceleration())
    assert other.resident is scorer.resident and other.acceleration == Acceleration()
    assert scorer.with_acceleration(Acceleration("bf16")) is scorer


def ucf_root(root: Path, dim: int = 128) -> Path:
    """A UCF-Crime root in RTFM's layout: 40 abnormal and 40 normal training videos of 20 to 60 snippets,
    6 test videos of 50 to 150, 2 crops."""
    rng = np.random.default_rng(4)
    train = [f"Abuse{i:03d}_x264" for i in range(40)] + [f"Normal_Videos{i:03d}_x264" for i in range(40)]
    notes = {f"Abuse9{i:02d}_x264": "Abuse  160  480  -1  -1" for i in range(3)}
    notes.update({f"Normal_Videos_9{i:02d}_x264": "Normal  -1  -1  -1  -1" for i in range(3)})
    for folder, videos, low, high in (("train", train, 20, 60), ("test", list(notes), 50, 150)):
        (root / folder).mkdir(parents=True)
        for video in videos:
            snippets = int(rng.integers(low, high + 1))
            np.save(root / folder / f"{video}_i3d.npy", rng.random((snippets, 2, dim), dtype=np.float32))
    (root / "ucf-i3d.list").write_text("".join(f"train/{video}_i3d.npy\n" for video in train))
    (root / "ucf-i3d-test.list").write_text("".join(f"test/{video}_i3d.npy\n" for video in notes))
    (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text(
        "".join(f"{video}.mp4  {note}\n" for video, note in notes.items()))
    return root


def cached_features(root: Path) -> tuple[Path, Path]:
    """The training and test feature files of the root's preparation cache (one training reduction)."""
    (train,) = (root / ".vadbench-cache").glob("*/train_features.npy")
    (test,) = (root / ".vadbench-cache").glob("*/test_features.npy")
    return train, test


def test_a_run_on_a_new_root_holds_neither_set(tmp_path):
    """A whole run (preparation, training, evaluation) allocates less than half the training set in numpy,
    and keeps none of the cache's pages mapped: it never held a copy of either set."""
    def spec(root: Path) -> RunSpec:
        return RunSpec("rtfm", "ucf-crime", method_options={"batch_size": 4}, dataset_options={"root": str(root)},
                       steps=30, device="cpu", threads=1)

    runner = Runner(progress=False)
    runner.run(dataclasses.replace(spec(ucf_root(tmp_path / "warm-up", dim=8)), steps=1))  # imports, first calls
    root = ucf_root(tmp_path / "root", dim=512)
    result, peak = numpy_peak(lambda: runner.run(spec(root)))  # 30 batches of 8 of the 80 videos: all read
    assert result.status == "ok"
    train, test = cached_features(root)
    size = np.load(train, mmap_mode="r").nbytes
    assert peak < size / 2, f"the run allocated {peak} bytes in numpy; the training set is {size}"
    assert mapped_bytes(train) <= PAGE and mapped_bytes(test) <= PAGE  # the runner still maps both


def copied_to_memory(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """What the runner did before: the whole training set copied into memory."""
    return torch.as_tensor(np.require(array, np.float32, ["C", "W"]), device=device)


@pytest.mark.parametrize("method, steps", [("rtfm", 8), ("pel4vad", 3)])
@pytest.mark.parametrize("data", ["synthetic", "ucf-crime"])
def test_runs_gathering_from_the_map_equal_runs_on_a_copy_bit_for_bit(tmp_path, monkeypatch, method, steps, data):
    options = {"root": str(ucf_root(tmp_path / "root"))} if data == "ucf-crime" else {}
    spec = RunSpec(method, data, dataset_options=options, steps=steps, device="cpu", threads=1)
    mapped = Runner(progress=False).run(spec)
    monkeypatch.setattr(runner_module, "training_rows", copied_to_memory)
    copied = Runner(progress=False).run(spec)
    assert mapped.status == copied.status == "ok"
    assert mapped.metrics == copied.metrics
    for video, scores in copied.scores.items():
        np.testing.assert_array_equal(mapped.scores[video], scores)


def test_oracle_test_and_the_final_evaluation_share_one_test_scorer(monkeypatch):
    """Built once per run (on an accelerator it holds the test set): oracle-test's checkpoints and the final
    evaluation use the same one."""
    built: list[object] = []

    class Counted(VideoScorer):
        def __init__(self, *args, **options) -> None:  # type: ignore[no-untyped-def]
            built.append(args[1])
            super().__init__(*args, **options)

    monkeypatch.setattr(runner_module, "VideoScorer", Counted)
    monkeypatch.setattr(selection_module, "VideoScorer", Counted)
    spec = RunSpec("rtfm", dataset_options=TINY_SYNTHETIC, steps=6, device="cpu",
                   protocol="oracle-test:every=2,after=0")
    result = Runner(progress=False).run(spec)
    assert result.status == "ok" and result.metrics["checkpoints_scored"] == 3
    assert len(built) == 1


@pytest.mark.parametrize("pool", [pool_segments, pool_segments_sultani])
def test_pooling_a_long_video_sums_it_a_block_at_a_time_with_the_same_numbers(pool):
    """Its float64 prefix sums over the whole video were 4 times the video's bytes (the longest UCF-Crime
    training video: 5 GB of features); summed block by block, in the same order, they are the same."""
    video = (np.random.default_rng(5).standard_normal((20_000, 2, 64)) * 10).astype(np.float32)  # 10 MB
    pooled, peak = numpy_peak(lambda: pool(video))
    assert peak < video.nbytes / 2, f"pooling allocated {peak} bytes; the video is {video.nbytes}"
    prefix = np.concatenate([np.zeros((1, 2, 64)), np.cumsum(video, axis=0, dtype=np.float64)])  # in one go
    starts, ends = (segment_ranges(len(video)) if pool is pool_segments else sultani_ranges(len(video)))
    means = (prefix[ends] - prefix[starts]) / (ends - starts)[:, None, None]
    if pool is pool_segments_sultani:
        means = means / np.maximum(np.linalg.norm(means, axis=-1, keepdims=True), np.finfo(np.float64).tiny)
    np.testing.assert_array_equal(pooled, means.transpose(1, 0, 2).astype(np.float32))


def segment_ranges(length: int) -> tuple[np.ndarray, np.ndarray]:
    """`pool_segments`' [start, end) ranges of a video of `length` snippets (all non-empty here)."""
    bounds = segment_bounds(length)
    return bounds[:-1], bounds[1:]


def test_a_subset_reads_its_rows_from_the_map_without_copying_the_set(tmp_path):
    """A held-out split or an abnormal subset (`TrainSet.subset`) is `Rows` of the memory map: numpy holds
    no copy of it, it reads what the copy held, and the sampler gathers the same batches from it."""
    values = np.random.default_rng(1).random((40, 3, 8, 64), dtype=np.float32)
    mapped = saved_map(tmp_path / "train.npy", values)
    train = TrainSet(mapped, np.arange(40) % 2, tuple(map(str, range(40))))
    index = np.array([3, 5, 8, 13, 21, 34])
    subset, peak = numpy_peak(lambda: train.subset(index).subset(np.array([1, 2, 4, 5])))
    assert peak < values[0].nbytes  # less than one video: nothing copied
    chosen = index[[1, 2, 4, 5]]
    np.testing.assert_array_equal(np.asarray(subset.features), values[chosen])
    np.testing.assert_array_equal(subset.features[2, :, :5], values[chosen[2], :, :5])
    np.testing.assert_array_equal(subset.features[1:3], values[chosen[1:3]])
    crops = subset.features.reshape(-1, 8, 64)  # independent crops: each crop a row
    np.testing.assert_array_equal(np.asarray(crops), values[chosen].reshape(-1, 8, 64))
    assert mapping_of(subset.features) is mapping_of(mapped) is not None
    declared = TrainingInput(crops="independent", sampling=Sampling("epochs"))
    from_rows = Sampler.create(subset, HostRows(subset.features, CPU), declared, 2, seed=0)
    copied = dataclasses.replace(subset, features=np.asarray(subset.features))
    from_copy = Sampler.create(copied, torch.from_numpy(copied.features), declared, 2, seed=0)
    for _ in range(5):
        ours, theirs = from_rows.empty_batch(), from_copy.empty_batch()
        from_rows.draw_into(ours)
        from_copy.draw_into(theirs)
        torch.testing.assert_close(ours.features, theirs.features, rtol=0, atol=0)


def test_val_and_abnormal_subsets_give_the_numbers_of_copied_subsets(monkeypatch):
    """`val` holds out a subset and `abnormal_subset` keeps one: reading them as `Rows` moves no number."""
    specs = [RunSpec("rtfm", dataset_options=dict(TINY_SYNTHETIC), steps=6, device="cpu", threads=1, protocol="val"),
             RunSpec("rtfm", dataset_options={**TINY_SYNTHETIC, "abnormal_subset": 4}, steps=6, device="cpu",
                     threads=1)]
    rows = [Runner(progress=False).run(spec) for spec in specs]

    def copying_subset(self: TrainSet, index: np.ndarray) -> TrainSet:
        return TrainSet(np.asarray(self.features)[index], self.labels[index], tuple(self.video_ids[i] for i in index),
                        None if self.lengths is None else self.lengths[index],
                        None if self.classes is None else self.classes[index],
                        None if self.class_sets is None else self.class_sets[index])

    monkeypatch.setattr(TrainSet, "subset", copying_subset)
    copies = [Runner(progress=False).run(spec) for spec in specs]
    for ours, theirs in zip(rows, copies, strict=True):
        assert ours.status == theirs.status == "ok"
        assert ours.metrics == theirs.metrics
