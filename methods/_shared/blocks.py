"""Attention over a whole video, computed in blocks of query rows: memory linear in the video's length.

A softmax attention row needs its own query and every key, so the T x T weights of a sequence can be
built a block of rows at a time and multiplied with the values at once: a block holds O(rows x T)
weights instead of O(T x T). Scoring a test video alone (UCF-Crime's longest have 6,749 snippets of 10
crops) would otherwise build gigabytes of weights per attention layer.

A call whose weights fit `BLOCK_ELEMENTS`, and every call while autograd records, is one block of all
rows: the very operations of the unblocked formula, so training and short videos give the numbers they
gave before. A longer video scored without autograd gets blocks of equal heights of at most
`BLOCK_ELEMENTS` weights each. Every operation inside a block is row by row (products, softmax, sums
along a row, elementwise maps), so the blocks give the rows that one block gives: bit for bit on the CPU
in float32 and bf16 when every block is at least 4 rows high (products of fewer rows take another path
in the BLAS), within rounding in float64 (measured).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

#: The most attention weights (over all sequences and heads of a call) one block of rows may hold:
#: 64 MiB of float32. Read at each call, so a test can make it small.
BLOCK_ELEMENTS = 2**24

#: The height a block may not be cut below, whatever the weights per row: equal blocks of more than
#: `FEWEST_ROWS` rows are then at least 4 rows high.
FEWEST_ROWS = 8

#: Every row: the default of the functions that build chosen rows of a (T, T) matrix.
ALL_ROWS = slice(None)


def block_height(per_row: int) -> int:
    """The most rows a block may have: max(`FEWEST_ROWS`, `BLOCK_ELEMENTS` // `per_row`), where `per_row` is
    the number of weights one query row has over all sequences and heads of the call."""
    return max(FEWEST_ROWS, BLOCK_ELEMENTS // max(1, per_row))


def row_blocks(steps: int, per_row: int) -> list[slice]:
    """`steps` query rows cut into the fewest blocks of at most `block_height(per_row)` rows, of equal heights
    give or take one row."""
    count = max(1, -(-steps // block_height(per_row)))
    bounds = [steps * i // count for i in range(count + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


def by_row_blocks(compute: Callable[[slice], torch.Tensor], steps: int, per_row: int, dim: int) -> torch.Tensor:
    """`compute(rows)` for each block of query rows (`row_blocks`), concatenated along `dim` (the rows' axis
    of its result); `compute(ALL_ROWS)` when the rows fit one block.

    While autograd records (training) it is one block of all rows: the backward pass would keep every
    block's weights anyway, and would sum the gradients of the keys and values block by block, in another
    order than the one product does.
    """
    if torch.is_grad_enabled() or steps <= block_height(per_row):
        return compute(ALL_ROWS)
    return in_row_blocks(compute, steps, per_row, dim)


@torch.compiler.disable
def in_row_blocks(compute: Callable[[slice], torch.Tensor], steps: int, per_row: int, dim: int) -> torch.Tensor:
    """`by_row_blocks` of more than one block. Eager under torch.compile: the number of blocks depends on the
    length, so a compiled loop would be a new graph for each length; the blocks are large products that
    compiling would not speed up."""
    return torch.cat([compute(rows) for rows in row_blocks(steps, per_row)], dim=dim)
