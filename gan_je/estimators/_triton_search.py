"""A fused distance-and-selection kernel for the CUDA brute force, written in Triton.

The torch brute force writes each chunk's ``(rows, N)`` float32 distances to memory and reads
them back to choose candidates: at N = 1,000,000 that is 4 MB per row, 4 TB per pass, and
the write and re-read cost about as much as the product itself. :func:`group_minima` computes
the same approximate squared distances tile by tile, in registers, and writes only the
minimum of every group of ``group`` consecutive columns: ``group`` times less memory traffic.

The values it minimises are ``|b_j|^2 - 2 a_i.b_j`` in float32, the quantity the torch path
gets from ``addmm``: with full-precision products (``input_precision="ieee"``) by default, or
on tensor cores (``"tf32"``, or ``"bf16"``: the inputs converted to bf16 in registers) when
:mod:`.neighbors` has rounded the points to that format already, so the conversion is exact.
Any float32 evaluation of it, in any summation order, is within the error bound that
:mod:`.neighbors` certifies with, so the exact answer does not depend on the kernel.

Triton is imported only when this module is: it ships with CUDA builds of torch. With
``TRITON_INTERPRET=1`` set before the import, the kernel runs on CPU tensors (slowly), which
is how the tests check it on machines without a GPU.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl
from torch import Tensor

#: Query rows per program.
BLOCK_ROWS = 64
#: Groups of columns per program (each program covers ``GROUPS_PER_BLOCK * group`` columns).
GROUPS_PER_BLOCK = 4
#: Feature columns loaded per step of the product.
BLOCK_FEATURES = 32


@triton.jit
def _group_minima_kernel(
    queries,
    base,
    base_sqnorms,
    own_index,
    out,
    n_rows,
    n_cols,
    n_groups,
    dim,
    BLOCK_ROWS: tl.constexpr,
    GROUPS_PER_BLOCK: tl.constexpr,
    GROUP: tl.constexpr,
    BLOCK_FEATURES: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    block_cols: tl.constexpr = GROUPS_PER_BLOCK * GROUP
    # column blocks on grid axis 0 (CUDA allows 2^31 - 1 there, 65,535 on axis 1); int64
    # offsets: N * D and rows * n_groups may pass 2^31 elements
    cols = tl.program_id(0).to(tl.int64) * block_cols + tl.arange(0, block_cols)
    rows = tl.program_id(1).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    row_ok = rows < n_rows
    col_ok = cols < n_cols
    dots = tl.zeros((BLOCK_ROWS, block_cols), dtype=tl.float32)
    for start in range(0, dim, BLOCK_FEATURES):
        feats = start + tl.arange(0, BLOCK_FEATURES)
        feat_ok = feats < dim
        q = tl.load(
            queries + rows[:, None] * dim + feats[None, :],
            mask=row_ok[:, None] & feat_ok[None, :],
            other=0.0,
        )
        b = tl.load(
            base + cols[None, :] * dim + feats[:, None],
            mask=col_ok[None, :] & feat_ok[:, None],
            other=0.0,
        )
        if INPUT_PRECISION == "bf16":
            dots = tl.dot(q.to(tl.bfloat16), b.to(tl.bfloat16), dots)
        else:
            dots = tl.dot(q, b, dots, input_precision=INPUT_PRECISION)
    sqnorms = tl.load(base_sqnorms + cols, mask=col_ok, other=0.0)
    values = sqnorms[None, :] - 2.0 * dots
    own = tl.load(own_index + rows, mask=row_ok, other=-1)
    left_out = (cols[None, :] == own[:, None]) | (cols[None, :] >= n_cols)
    values = tl.where(left_out, float("inf"), values)
    minima = tl.min(tl.reshape(values, (BLOCK_ROWS, GROUPS_PER_BLOCK, GROUP)), axis=2)
    groups = tl.program_id(0).to(tl.int64) * GROUPS_PER_BLOCK + tl.arange(0, GROUPS_PER_BLOCK)
    tl.store(
        out + rows[:, None] * n_groups + groups[None, :],
        minima,
        mask=row_ok[:, None] & (groups[None, :] < n_groups),
    )


#: The products :func:`group_minima` can use.
INPUT_PRECISIONS = ("ieee", "tf32", "bf16")


def group_minima(
    base: Tensor, base_sqnorms: Tensor, rows: Tensor, group: int, input_precision: str = "ieee"
) -> Tensor:
    """Per-group minima of ``|b_j|^2 - 2 b_i.b_j`` for the query rows ``i`` in ``rows``.

    Args:
        base: ``(N, D)`` float32 points, contiguous.
        base_sqnorms: ``(N,)`` float32 ``|b_j|^2``.
        rows: ``(c,)`` int64 indices of the query points in ``base``; each row's own column
            is left out (``inf``), as are the columns past N in the last group.
        group: columns per group, a power of two >= 16.
        input_precision: the product: ``"ieee"`` float32, or ``"tf32"`` / ``"bf16"`` tensor
            cores with float32 accumulation (exact only for ``base`` already rounded to that
            format).

    Returns:
        ``(c, ceil(N / group))`` float32: entry ``(r, g)`` is the minimum over columns
        ``g * group .. (g + 1) * group - 1`` of row ``r``'s approximate squared distances
        less ``|b_i|^2``.
    """
    if base.dtype != torch.float32 or base.ndim != 2 or not base.is_contiguous():
        raise ValueError(f"base must be a contiguous float32 (N, D) tensor, got {base.dtype}")
    if group < 16 or group & (group - 1):
        raise ValueError(f"group must be a power of two >= 16, got {group}")
    if input_precision not in INPUT_PRECISIONS:
        raise ValueError(
            f"input_precision must be one of {INPUT_PRECISIONS}, got {input_precision!r}"
        )
    n, dim = base.shape
    n_groups = -(-n // group)
    queries = base[rows].contiguous()
    out = torch.empty(len(rows), n_groups, dtype=torch.float32, device=base.device)
    grid = (triton.cdiv(n_groups, GROUPS_PER_BLOCK), triton.cdiv(len(rows), BLOCK_ROWS))
    # Triton launches on the current CUDA device: make it the tensors' one
    with torch.cuda.device(base.device) if base.is_cuda else contextlib.nullcontext():
        _group_minima_kernel[grid](
            queries,
            base,
            base_sqnorms.contiguous(),
            rows.contiguous(),
            out,
            len(rows),
            n,
            n_groups,
            dim,
            BLOCK_ROWS=BLOCK_ROWS,
            GROUPS_PER_BLOCK=GROUPS_PER_BLOCK,
            GROUP=group,
            BLOCK_FEATURES=BLOCK_FEATURES,
            INPUT_PRECISION=input_precision,
        )
    return out
