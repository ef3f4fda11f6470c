"""Where a run's features are while it trains and scores: on the device when they fit, else on the host.

A prepared benchmark's features are read-only memory maps of the preparation cache (or arrays in memory,
for data built without it). Nothing here copies a whole set into the host's memory:

- On the CPU, batches are gathered from the map itself, step by step (`HostRows`), and the pages read are
  released after each batch (`vadbench.api.mapped`): a run holds one batch, not the training set (26 GB for
  PEL4VAD's 200-snippet crops of UCF-Crime), and the workers of a local grid share one copy of it in the
  OS page cache. Test videos are read the same way, one padded batch at a time (`VideoScorer`).
- On an accelerator, a set is copied to the device once when it fits in the device's free memory with a
  margin (`fits`), a piece at a time, so that the host never holds it whole; else it stays on the host and
  each batch is gathered there and copied to the device when it is needed.

The bytes gathered are the same either way, so where the features are never changes a run's numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from vadbench.api.mapped import Rows, release

#: Share of an accelerator's total memory kept free, when deciding where features go, for the model, its
#: optimiser state and the activations of a training or scoring batch.
MARGIN = 0.25
#: Bytes copied to the device at a time when a set moves there.
PIECE_BYTES = 1 << 26


def fits(nbytes: int, device: torch.device, memory: tuple[int, int] | None = None) -> bool:
    """Whether `nbytes` of features may stay on `device`: never on the CPU (they are read where they are);
    on an accelerator when they fit in its free memory less `MARGIN` of its total. `memory`: (free, total)
    bytes, by default what the device reports (`device_memory`)."""
    if device.type == "cpu":
        return False
    free, total = memory if memory is not None else device_memory(device)
    return nbytes <= free - MARGIN * total


def device_memory(device: torch.device) -> tuple[int, int]:
    """(free, total) bytes of an accelerator; blocks torch keeps cached but unused count as free (they serve
    the next allocation)."""
    free, total = torch.accelerator.get_memory_info(device)
    cached = torch.accelerator.memory_reserved(device) - torch.accelerator.memory_allocated(device)
    return free + cached, total


def float32_bytes(array: np.ndarray | Rows) -> int:
    """Bytes of `array` as float32 (as it is on the device)."""
    return 4 * int(array.size)


def to_device(array: np.ndarray | Rows, device: torch.device) -> torch.Tensor:
    """`array` as float32 on `device`, copied a piece of rows at a time (each piece's pages released after),
    so that the host holds one piece, never the whole array."""
    tensor = torch.empty(array.shape, dtype=torch.float32, device=device)
    rows = max(1, PIECE_BYTES // max(1, 4 * int(np.prod(array.shape[1:], dtype=np.int64))))
    for start in range(0, len(array), rows):
        piece = np.array(array[start : start + rows], dtype=np.float32)  # its own memory, as copy_ needs
        tensor[start : start + rows].copy_(torch.from_numpy(piece))
        release(array)
    return tensor


class HostRows:
    """An array's rows on the host, which a sampler gathers a batch at a time and moves to `device`.

    On the CPU a batch is read straight into its buffer on the device (which is the host); on an
    accelerator it is read into a pinned buffer and copied from there (blocking: the buffer is reused
    by the next batch). The memory map under `array`, if any, is released after each batch.
    """

    dtype = torch.float32

    def __init__(self, array: np.ndarray | Rows, device: torch.device) -> None:
        self.array, self.device = array, device
        self._pinned: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def reshape(self, *shape: int) -> HostRows:
        """The same rows seen with another shape (a view: independent crops make each crop a row)."""
        return HostRows(self.array.reshape(*shape), self.device)

    def gather(self, index: torch.Tensor, out: torch.Tensor) -> None:
        """``out[i] = array[index[i]]``, converted to float32."""
        rows = index.cpu().numpy()
        host = out if out.device.type == "cpu" else self._staging(len(rows))
        target = host.numpy()
        for row, source in enumerate(rows):
            target[row] = self.array[source]
        release(self.array)
        if host is not out:
            out.copy_(host)

    def _staging(self, count: int) -> torch.Tensor:
        """The first `count` rows of a pinned host buffer (grown when a larger batch comes)."""
        if self._pinned is None or len(self._pinned) < count:
            self._pinned = torch.empty((count, *self.shape[1:]), dtype=self.dtype, pin_memory=True)
        return self._pinned[:count]


def training_rows(
    array: np.ndarray | Rows, device: torch.device, memory: tuple[int, int] | None = None
) -> torch.Tensor | HostRows:
    """A training set's features as samplers gather them: copied to `device` when they fit there (`fits`),
    else gathered on the host per batch (`HostRows`; always on the CPU)."""
    if fits(float32_bytes(array), device, memory):
        return to_device(array, device)
    return HostRows(array, device)
