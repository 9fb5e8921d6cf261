"""Exact nearest-neighbour queries: the one engine under every k-NN estimator.

Two queries serve all estimators:

- :func:`kth_neighbor` — the squared distance to (and index of) each sample's k-th nearest
  *other* sample, under ``dist(i, j) = max_b ||x_i^b - x_j^b||_2`` over one or more variables
  ("blocks"; one block is the plain Euclidean distance, two give KSG's joint space);
- :func:`count_within` — ``#{j != i : dist(i, j) < r_i}`` (``inclusive=False``) or ``<= r_i``.

**One distance.** Every distance the brute-force backends return and every boundary
decision they make uses :func:`squared_distance`: float64, ``sum_c (a_c - b_c)^2`` summed in
a fixed pairwise tree of elementwise operations, so it is bit-identical on CPU and CUDA and
for any batch shape.
A radius found by :func:`kth_neighbor` and compared in :func:`count_within` is therefore the
same number, and the strict/inclusive semantics hold exactly for the neighbour that defined
it (a second query with a recomputed radius would lose such boundary points to rounding).

**Exact, fast search.** Backends only *propose* candidates; the answer is always certified:

- ``"torch"`` (CPU or CUDA): chunked brute force. Approximate squared distances come from a
  matrix multiply, ``|a|^2 + |b|^2 - 2 a.b``, first in float32 (TF32 disabled), whose error is
  at most ``E = 2 (D + 4) u (|a| + max|b|)^2``. The best ``k + 1`` candidates (a top-k; on
  CUDA a top-k of per-group minima, see :func:`_propose`) are rescored with the exact
  distance; a row is certified when its exact k-th distance is below the smallest
  approximate distance left out minus ``E``. Rows that fail (cancellation: tight clusters far
  from the origin) are redone in float64, then, if still needed, by direct differences.
  Counts use the same bound: pairs within ``E`` of the radius are rescored exactly. Memory is
  O(chunk x N), never N^2.
- ``"faiss"`` (CPU): faiss's exact flat L2 search proposes the candidates (faster than a torch
  top-k on CPU), certified as above. Counts have no faiss equivalent and use ``"torch"``.
  faiss is an optional extra (``pip install 'gan_je[faiss]'``); asking for it without it
  fails in one sentence naming the extra.
- ``"triton"`` (CUDA): the ``"torch"`` search with the float32 product and the grouped
  proposal fused in one Triton kernel (:mod:`._triton_search`) that never writes the
  ``(chunk, N)`` distances, only per-group minima; the candidates' float32 distances are
  recomputed and certified as above. k-NN of one variable only; counts and KSG's joint
  space use ``"torch"``. Not yet measured on a GPU, so ``"auto"`` does not choose it.
- ``"kdtree"`` (CPU): scipy's cKDTree, the fastest in low dimension. It computes distances
  in float64 in its own order, within a few units in the last place of
  :func:`squared_distance`, so it only proposes: its k-th neighbour candidates are rescored
  with :func:`squared_distance` and certified against the tree's next distance, and its
  counts decide every pair within that rounding of the radius with :func:`squared_distance`
  (:func:`_kdtree_count`: small balls listed once, large ones counted narrowed and widened).
  KSG's joint space of vectors is searched by a metric that bounds the joint distance from
  below (:func:`_tree_metric`). Scalars are searched and counted in sorted order instead
  (:func:`_sorted_knn`, :func:`_sorted_count`), exactly. Every backend therefore returns
  the same bits, ties included. The tree's worker threads take the cores; torch runs on one
  thread around them (:func:`._threads.one_torch_thread`). Not around faiss: its OpenMP
  follows torch's thread setting, and one thread would halve its search.
- ``"auto"``: ``"torch"`` on CUDA; on CPU ``"kdtree"`` up to :data:`KDTREE_MAX_DIM` dimensions
  (counts of balls holding many points on average, above :data:`TREE_COUNT_MAX_DIM`:
  ``"torch"``) and ``"faiss"`` (kNN, where faiss is installed, else ``"torch"``) /
  ``"torch"`` (counts) above, from ``benchmarks/estimators.py``.

**Reduced-precision proposals.** ``with proposal_precision("tf32"):`` (or ``"bf16"``) lets the
float32 tier of the ``"torch"`` and ``"triton"`` backends (k-NN and counts) multiply on
tensor cores. The product's inputs are first rounded to nearest from float64 to that
format's mantissa (TF32: 10 bits, unit roundoff ``v = 2^-11``; bf16: 7 bits, ``v = 2^-8``), so
the hardware reads them exactly, and the bound widens to ``E = 2 ((D + 4) u + v)
(|a| + max|b|)^2`` with ``u = 2^-22`` (tensor cores may truncate while they accumulate, Fasi et
al. 2021, "Numerical behavior of NVIDIA tensor cores": four float32 units). Candidates are
still rescored in float64 and rows the wider bound cannot certify go on to the float64 tier,
so the answer is the same bits as with the default ``"highest"``; only the speed changes
(at D = 64 the bound is about 120 times float32's for TF32, 1,000 times for bf16: fewer rows
certify where neighbours are close together relative to their norms). On CPU the same
rounding runs with IEEE float32 products, an exact emulation that is never faster (the tests
use it); ``"faiss"`` and ``"kdtree"`` ignore the setting. On the torch backend ``"bf16"``
multiplies on TF32 tensor cores (bf16 values are exact in TF32), so there it is never faster
than ``"tf32"``; the Triton kernel converts to bf16 in registers. Not yet measured on a GPU.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar

import numpy as np
import torch
from torch import Tensor

from gan_je.extras import require

from ._threads import one_torch_thread

BACKENDS = ("auto", "torch", "faiss", "kdtree", "triton")
#: Above this many dimensions brute force beats the k-d tree on CPU (measured, see README).
KDTREE_MAX_DIM = 10
#: Balls holding at most this many points on average (sampled) are listed by the k-d tree
#: in one pass and their pairs decided exactly; larger ones are counted twice, narrowed and
#: widened (at N = 10,000: the JSD's balls of about 6 points in d = 8, 0.58 s listed against
#: 1.2 s counted twice; KSG's of 28-175 points, 0.16-0.92 s listed against 0.02-0.22 s).
LIST_MAX_MEAN_COUNT = 32
#: Above this dimension, ``"auto"`` counts balls larger than that by brute force (at
#: N = 10,000, KSG's counts in d = 8: 2.0 s against the tree's 4.3 s; in d = 4 0.58 s
#: against 3.2 s).
TREE_COUNT_MAX_DIM = 4
#: From this dimension :func:`kth_within_label` searches the pooled samples once on the k-d
#: tree; below, its neighbours of 4k + 2 points cost more than a search of each set and a
#: count (CPU seconds at N = 10,000: 0.061 against 0.043 in d = 2; 0.42 against 0.50 in
#: d = 8).
POOLED_SEARCH_MIN_DIM = 4
#: Points per leaf of the k-d trees: twice scipy's default, which pays for the extra
#: candidate the certificate needs (N = 10,000, d = 8: 77-83 ms for k + 2 neighbours, like
#: the default tree's 81 ms for k + 1 and 92-101 ms for k + 2; no change in d = 2 or 4).
TREE_LEAF_SIZE = 32
#: Bytes of scratch memory one chunk of the brute-force search may use on CPU. On CUDA a
#: chunk may use an eighth of the free device memory, capped at 16x this.
CHUNK_BYTES = 256 * 2**20


#: Candidates proposed beyond the k-th (more make certification likelier but cost faiss time).
EXTRA_CANDIDATES = 1
#: A count row with more pairs this close to its radius is redone at higher precision.
MAX_NEAR_PAIRS = 32
_UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float64: 2.0**-53}
#: Per proposal precision, the mantissa bits the float32 tier's product inputs are rounded to
#: (None: float32 as is).
_MANTISSA_BITS = {"highest": None, "tf32": 10, "bf16": 7}
PROPOSAL_PRECISIONS = tuple(_MANTISSA_BITS)
#: The unit roundoff assumed for the float32 accumulation of tensor cores: four float32 units,
#: as they may truncate while accumulating (Fasi et al. 2021).
_TENSOR_CORE_UNIT = 2.0**-22
_proposal_precision: ContextVar[str] = ContextVar("proposal_precision", default="highest")


@contextlib.contextmanager
def proposal_precision(precision: str) -> Iterator[None]:
    """Inside the block, the float32 candidate products of :func:`kth_neighbor` and
    :func:`count_within` use ``precision``: ``"highest"`` (IEEE float32, the default),
    ``"tf32"`` or ``"bf16"`` (tensor cores on CUDA, with a wider certification bound; see
    the module doc). Results are the same bits whatever the precision.

    Example::

        with proposal_precision("tf32"):
            h = entropy(x.cuda())

    Raises:
        ValueError: for a precision not in :data:`PROPOSAL_PRECISIONS`.
    """
    if precision not in PROPOSAL_PRECISIONS:
        raise ValueError(f"precision must be one of {PROPOSAL_PRECISIONS}, got {precision!r}")
    token = _proposal_precision.set(precision)
    try:
        yield
    finally:
        _proposal_precision.reset(token)


def squared_distance(a: Tensor, b: Tensor) -> Tensor:
    """``sum_c (a_c - b_c)^2`` in float64 over the last dim, broadcasting the rest.

    The columns are summed pairwise in a fixed tree (zero-padded to a power of two) with
    elementwise additions only, so the same pair gives the same bits on every device and for
    every batch shape (a library reduction may change its order with the shape).
    """
    diff = a.to(torch.float64) - b.to(torch.float64)
    terms = diff * diff
    width = 1 << (terms.shape[-1] - 1).bit_length()
    if width != terms.shape[-1]:
        terms = torch.nn.functional.pad(terms, (0, width - terms.shape[-1]))
    while width > 1:
        width //= 2
        terms = terms[..., :width] + terms[..., width:]
    return terms[..., 0]


def block_distance(blocks: Sequence[Tensor], i: Tensor, j: Tensor) -> Tensor:
    """Exact squared joint distance ``max_b |x_i^b - x_j^b|^2`` for index arrays ``i``, ``j``."""
    out = squared_distance(blocks[0][i], blocks[0][j])
    for block in blocks[1:]:
        out = torch.maximum(out, squared_distance(block[i], block[j]))
    return out


def kth_neighbor(
    blocks: Tensor | Sequence[Tensor], k: int, backend: str = "auto"
) -> tuple[Tensor, Tensor]:
    """Squared distance to, and index of, each sample's k-th nearest other sample.

    Args:
        blocks: one ``(N, D)`` float64 tensor, or several with the same N (one per variable);
            the distance is the max over blocks of their Euclidean distances.
        k: which neighbour, 1 <= k < N.
        backend: one of :data:`BACKENDS` (see the module doc); the precision of its
            candidate products is set with :func:`proposal_precision`.

    Returns:
        ``(sq_dist, index)``, both of shape ``(N,)``; ``sq_dist`` is the float64
        :func:`squared_distance` (the max over blocks), the same bits on every backend.
    """
    blocks = _as_blocks(blocks)
    n = blocks[0].shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must satisfy 1 <= k < N = {n}, got k={k}")
    backend = resolve_backend(backend, blocks, query="knn")
    if backend == "kdtree":
        with one_torch_thread():
            if len(blocks) == 1 and blocks[0].shape[1] == 1:
                return _sorted_knn(blocks[0], k)
            return _kdtree_knn(blocks, k)
    return _brute_force_knn(blocks, k, backend, _proposal_precision.get())


def count_within(
    points: Tensor,
    sq_radius: Tensor,
    inclusive: bool,
    backend: str = "auto",
    defining: Tensor | None = None,
) -> Tensor:
    """``#{j != i : |x_i - x_j| < r_i}`` per sample, or ``<= r_i`` when ``inclusive``.

    Args:
        points: ``(N, D)`` float64 samples.
        sq_radius: ``(N,)`` squared radii ``r_i^2`` (as returned by :func:`kth_neighbor`).
        inclusive: count points exactly on the radius (``<=``) or not (``<``).
        backend: as for :func:`kth_neighbor`; ``"faiss"`` and ``"triton"`` count with
            ``"torch"``.
        defining: optional ``(N,)`` index of the neighbour each radius was measured to (as
            returned by :func:`kth_neighbor`). A hint for speed only, the counts are the same
            without it: the k-d tree then decides that boundary point without listing the
            ball.

    Returns:
        ``(N,)`` int64 counts.
    """
    (points,) = _as_blocks([points])
    if sq_radius.shape != (points.shape[0],):
        raise ValueError(
            f"sq_radius must have shape ({points.shape[0]},), got {tuple(sq_radius.shape)}"
        )
    if defining is not None and defining.shape != sq_radius.shape:
        raise ValueError(
            f"defining must have shape ({points.shape[0]},), got {tuple(defining.shape)}"
        )
    chosen = resolve_backend(backend, [points], query="count")
    if chosen == "kdtree":
        with one_torch_thread():
            if points.shape[1] == 1:
                return _sorted_count(points, sq_radius, inclusive)
            small_balls = _sampled_mean_count(points, sq_radius) <= LIST_MAX_MEAN_COUNT
            if backend == "kdtree" or small_balls or points.shape[1] <= TREE_COUNT_MAX_DIM:
                return _kdtree_count(points, sq_radius, inclusive, defining, small_balls)
    return _brute_force_count(points, sq_radius, inclusive, _proposal_precision.get())


def kth_within_label(
    points: Tensor, n_first: int, k: int, backend: str = "auto"
) -> tuple[Tensor, Tensor, Tensor]:
    """Ross's neighbours of two pooled sample sets: for each sample the squared distance
    ``d_i^2`` to, and index of, its k-th nearest other sample of the same set, and
    ``m_i = #{j != i : |x_j - x_i|^2 <= d_i^2}`` over both sets.

    Args:
        points: ``(N, D)`` float64, the first set's ``n_first`` rows then the second's.
        k: which neighbour, ``1 <= k < `` each set's size.
        backend: as for :func:`kth_neighbor`.

    The same bits as :func:`kth_neighbor` on each set followed by :func:`count_within`
    (``inclusive=True``), which is what every backend but the k-d tree runs. The tree
    (from :data:`POOLED_SEARCH_MIN_DIM` dimensions) answers both with one search of the
    pooled samples: a sample's
    pooled neighbours, in order, hold its k-th same-set neighbour after ``m_i`` others
    (:func:`_pooled_kdtree_within`).

    Returns:
        ``(sq_dist, index, count)``, each of shape ``(N,)``.
    """
    (points,) = _as_blocks([points])
    n = points.shape[0]
    if not 1 <= k < min(n_first, n - n_first):
        raise ValueError(
            f"k must satisfy 1 <= k < each set's size ({n_first} and {n - n_first}), got {k}"
        )
    chosen = resolve_backend(backend, [points], query="knn")
    if chosen == "kdtree" and points.shape[1] >= POOLED_SEARCH_MIN_DIM:
        with one_torch_thread():
            return _pooled_kdtree_within(points, n_first, k)
    sq_p, index_p = kth_neighbor(points[:n_first], k, backend)
    sq_q, index_q = kth_neighbor(points[n_first:], k, backend)
    sq_dist, index = torch.cat([sq_p, sq_q]), torch.cat([index_p, index_q + n_first])
    return sq_dist, index, count_within(points, sq_dist, True, backend, defining=index)


def nearest_sq_distance(queries: Tensor, points: Tensor) -> Tensor:
    """Squared distance (:func:`squared_distance`) from every query to its nearest point of
    another set, exact: candidates from a float32 matrix product, certified against its
    error bound as in :func:`kth_neighbor`, the rest in float64, then directly.

    Args:
        queries: ``(M, D)`` float64; points: ``(N, D)`` float64 on the same device.

    Returns:
        ``(M,)`` float64.
    """
    (queries,), (points,) = _as_blocks([queries]), _as_blocks([points])
    if queries.shape[1] != points.shape[1]:
        raise ValueError(
            f"queries and points need the same dimension, got {queries.shape[1]} and "
            f"{points.shape[1]}"
        )
    n, device = points.shape[0], points.device
    out = torch.empty(queries.shape[0], dtype=torch.float64, device=device)
    pending = torch.arange(queries.shape[0], device=device)
    n_cand = min(1 + EXTRA_CANDIDATES, n)
    with _float32_matmul():
        for dtype in (torch.float32, torch.float64):
            base, q = points.to(dtype), queries.to(dtype)
            sq_base, sq_q = (base * base).sum(dim=1), (q * q).sum(dim=1)
            max_norm = sq_base.max().sqrt()
            left = []
            for rows in pending.split(_chunk_rows(n, 2 * dtype.itemsize, device)):
                approx = torch.addmm(sq_base[None, :], q[rows], base.T, alpha=-2)
                vals, cand = approx.topk(min(n_cand + 1, n), dim=1, largest=False)
                exact = squared_distance(queries[rows, None, :], points[cand[:, :n_cand]])
                best = exact.min(dim=1).values
                if n_cand < n:
                    bound = _product_error(
                        points.shape[1], sq_q[rows].sqrt(), max_norm, _UNIT_ROUNDOFF[dtype]
                    )
                    floor = vals[:, -1].double() + sq_q[rows].double() - bound.double()
                    ok = best < floor
                else:
                    ok = torch.ones_like(best, dtype=torch.bool)
                out[rows[ok]] = best[ok]
                left.append(rows[~ok])
            pending = torch.cat(left)
            if pending.numel() == 0:
                return out
    for rows in pending.split(_chunk_rows(n, 8 * (points.shape[1] + 3), device)):
        out[rows] = squared_distance(queries[rows, None, :], points[None, :, :]).min(dim=1).values
    return out


def count_in_balls(queries: Tensor, centres: Tensor, sq_radius: Tensor) -> Tensor:
    """``#{i : |q - c_i|^2 <= r_i^2}`` for every query ``q``: how many of the balls around
    ``centres`` (radii squared ``sq_radius``) hold it, boundary included, decided with
    :func:`squared_distance`.

    A float64 matrix product gives every distance within ``E = 2 (D + 4) u (|q| + max|c|)^2``;
    pairs clearly inside or outside are decided by it, and only pairs within ``E`` of a
    radius are recomputed exactly.

    Args:
        queries: ``(M, D)`` float64; centres: ``(N, D)`` float64; sq_radius: ``(N,)``.

    Returns:
        ``(M,)`` int64 counts.
    """
    (queries,), (centres,) = _as_blocks([queries]), _as_blocks([centres])
    if sq_radius.shape != (centres.shape[0],):
        raise ValueError(
            f"sq_radius must have shape ({centres.shape[0]},), got {tuple(sq_radius.shape)}"
        )
    n, device = centres.shape[0], centres.device
    sq_centres, sq_queries = (centres * centres).sum(dim=1), (queries * queries).sum(dim=1)
    unit, max_norm = _UNIT_ROUNDOFF[torch.float64], sq_centres.max().sqrt()
    # per row one slack: the bound plus the rounding of the largest radius
    slack_all = _product_error(queries.shape[1], sq_queries.sqrt(), max_norm, unit)
    slack_all += 4 * unit * sq_radius.max()
    counts = []
    for rows in torch.arange(queries.shape[0], device=device).split(_chunk_rows(n, 9, device)):
        diff = torch.addmm(sq_centres[None, :], queries[rows], centres.T, alpha=-2)
        diff.add_(sq_queries[rows, None]).sub_(sq_radius[None, :])  # approx distance - r^2
        slack = slack_all[rows, None]
        count = (diff <= -slack).sum(dim=1)
        near_row, near_col = (diff.abs_() <= slack).nonzero(as_tuple=True)
        exact = squared_distance(queries[rows[near_row]], centres[near_col])
        hit = exact <= sq_radius[near_col]
        counts.append(count + torch.bincount(near_row[hit], minlength=len(rows)))
    return torch.cat(counts)


def resolve_backend(backend: str, blocks: Sequence[Tensor], query: str) -> str:
    """The backend that will run a ``query`` (``"knn"`` or ``"count"``) on ``blocks``.

    ``"auto"`` picks the fastest exact method measured for the device and dimension. An
    explicit choice the data cannot use (a tree or faiss on CUDA tensors, Triton on CPU
    tensors or without the triton package) raises ``ValueError``; ``"faiss"`` and
    ``"triton"`` count, and search joint spaces, with torch. ``"faiss"`` without faiss
    installed raises :class:`gan_je.extras.MissingExtraError` (a ``ValueError``);
    ``"auto"`` then never picks it.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "faiss":
        require("faiss", "faiss", "backend='faiss'")
    on_cuda = blocks[0].is_cuda
    dim = sum(b.shape[1] for b in blocks)
    if backend == "auto":
        if on_cuda:
            return "torch"
        if dim <= KDTREE_MAX_DIM:
            return "kdtree"
        single = query == "knn" and len(blocks) == 1
        return "faiss" if single and _faiss_installed() else "torch"
    if backend in ("kdtree", "faiss") and on_cuda:
        raise ValueError(f"backend={backend!r} runs on CPU; use 'torch' or 'auto' for CUDA")
    if backend == "triton" and not on_cuda:
        raise ValueError("backend='triton' runs on CUDA tensors; use 'auto' on CPU")
    if backend in ("faiss", "triton") and (query == "count" or len(blocks) > 1):
        return "torch"
    if backend == "triton":
        try:
            import triton  # noqa: F401
        except ImportError as err:
            raise ValueError(
                "backend='triton' needs the triton package (CUDA builds of torch install it); "
                "use 'torch' or 'auto'"
            ) from err
    return backend


def _faiss_installed() -> bool:
    """Whether faiss imports here (an optional extra)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _as_blocks(blocks: Tensor | Sequence[Tensor]) -> list[Tensor]:
    blocks = [blocks] if isinstance(blocks, Tensor) else list(blocks)
    if not blocks:
        raise ValueError("need at least one (N, D) tensor")
    n = blocks[0].shape[0]
    for b in blocks:
        if b.ndim != 2 or b.shape[0] != n or b.dtype != torch.float64:
            raise ValueError(
                f"expected float64 (N, D) tensors with the same N, got {b.dtype} "
                f"{tuple(b.shape)}; the public estimators prepare their inputs for you"
            )
    return [b.contiguous() for b in blocks]


#: Bytes of float64 temporaries per piece when candidates are rescored exactly: small
#: pieces stay in cache and keep memory flat for any N.
RESCORE_BYTES = 8 * 2**20


def _best_of(blocks: list[Tensor], rows: Tensor, candidates: Tensor, k: int):
    """Rescore candidate indices exactly; return the k-th smallest (sq_dist, index) per row."""
    dim = sum(b.shape[1] for b in blocks)
    size = max(1, RESCORE_BYTES // (8 * candidates.shape[1] * dim))
    sq_parts, idx_parts = [], []
    for piece_rows, piece_cand in zip(rows.split(size), candidates.split(size), strict=True):
        exact = block_distance(blocks, piece_rows[:, None], piece_cand)
        exact = exact.masked_fill(piece_cand == piece_rows[:, None], float("inf"))
        order = exact.argsort(dim=1, stable=True)[:, k - 1 : k]
        sq_parts.append(exact.gather(1, order)[:, 0])
        idx_parts.append(piece_cand.gather(1, order)[:, 0])
    return torch.cat(sq_parts), torch.cat(idx_parts)


# --------------------------------------------------------------------------- k-d tree


def _sorted_knn(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """k-th neighbours of scalars ``x`` (N, 1), the k-d tree's job in one dimension, from
    the sorted order.

    ``fl((a - b)^2)`` never decreases as ``b`` moves away from ``a`` (rounding is
    monotone), so the k nearest others of the sample at sorted position ``p`` lie among
    positions ``p - k .. p + k``: the k-th smallest :func:`squared_distance` among those
    ``2k`` is the exact one, no certificate needed.
    """
    n = x.shape[0]
    order = x[:, 0].argsort(stable=True)
    offsets = torch.cat([torch.arange(-k, 0), torch.arange(1, k + 1)])
    position = torch.arange(n)[:, None] + offsets
    outside = (position < 0) | (position >= n)
    cand = order[position.clamp(0, n - 1)]
    exact = squared_distance(x[order][:, None, :], x[cand]).masked_fill(outside, math.inf)
    sq, pick = exact.topk(k, dim=1, largest=False, sorted=True)
    sq_dist, index = torch.empty_like(sq[:, 0]), torch.empty_like(order)
    sq_dist[order], index[order] = sq[:, -1], cand.gather(1, pick[:, -1:])[:, 0]
    return sq_dist, index


def _sorted_count(points: Tensor, sq_radius: Tensor, inclusive: bool) -> Tensor:
    """:func:`count_within` for scalars (N, 1) by bisection in the sorted order.

    Along the sorted order :func:`squared_distance` from a sample never decreases on either
    side of it (see :func:`_sorted_knn`), so the points within its radius are one run of
    positions around it; each side's end is found by bisection on the exact test.
    """
    n = points.shape[0]
    order = points[:, 0].argsort(stable=True)
    values = points[order]
    r2 = sq_radius[order]
    here = torch.arange(n)

    def inside(position: Tensor) -> Tensor:
        sq = squared_distance(values, values[position.clamp(0, n - 1)])
        return (sq <= r2) if inclusive else (sq < r2)

    # right: the first position after p that is outside; left: the first that is inside
    right_lo, right_hi = here + 1, torch.full_like(here, n)
    left_lo, left_hi = torch.zeros_like(here), here.clone()
    while bool((right_lo < right_hi).any() or (left_lo < left_hi).any()):
        mid = (right_lo + right_hi) // 2
        go_right = (right_lo < right_hi) & inside(mid)
        right_lo = torch.where(go_right, mid + 1, right_lo)
        right_hi = torch.where((right_lo < right_hi) & ~go_right, mid, right_hi)
        mid = (left_lo + left_hi) // 2
        go_left = (left_lo < left_hi) & inside(mid)
        left_hi = torch.where(go_left, mid, left_hi)
        left_lo = torch.where((left_lo < left_hi) & ~go_left, mid + 1, left_lo)
    counts = torch.empty_like(here)
    counts[order] = (right_lo - here - 1) + (here - left_lo)
    return counts


def _kdtree_knn(blocks: list[Tensor], k: int) -> tuple[Tensor, Tensor]:
    """k-th neighbours proposed by scipy's cKDTree and rescored with :func:`block_distance`.

    The tree searches the joint space in the metric of :func:`_tree_metric` (the joint
    distance itself for one variable or for scalars, else a lower bound on it). Its float64
    distances are its own (its summation order), within :func:`_tree_slack` of the exact
    ones relative.

    It proposes ``k + 1 + EXTRA_CANDIDATES`` points per row (more when the metric is only a
    bound, by the metric's inflation), the row itself among them. Where the metric is the joint one
    and its k-th distance is apart from its neighbours' by more than the slack on both
    sides, the k-th candidate is the k-th neighbour and only it is rescored
    (:func:`_separated_kth`). Other rows rescore every candidate: the k-th exact distance
    among them is certified when it lies below the tree's last distance by more than the
    slack, so that no point left out can be closer. Rows that fail (ties: copies, lattices,
    quantised values) ask the tree for more candidates, then go to the direct tier.
    """
    from scipy.spatial import cKDTree

    # numpy for the glue (and torch on one thread, see kth_neighbor): the tree's workers
    # need the cores
    joint = np.concatenate([b.numpy() for b in blocks], axis=1)
    n, slack = joint.shape[0], _tree_slack(joint.shape[1])
    p, scale, inflation = _tree_metric([b.shape[1] for b in blocks])
    exact_metric = inflation == 1
    tree = cKDTree(joint, leafsize=TREE_LEAF_SIZE)
    sq_dist = torch.empty(n, dtype=torch.float64)
    index = torch.empty(n, dtype=torch.int64)
    pending = np.arange(n)
    first = math.ceil((k + 1) * inflation) + EXTRA_CANDIDATES
    for n_query in (first, 8 * first):
        n_query = min(n_query, n)
        dist, cand = tree.query(joint[pending], k=n_query, p=p, workers=-1)
        if exact_metric and n_query > k + 1:
            fast = _separated_kth(pending, dist, cand, k, slack)
            rows = torch.from_numpy(pending[fast])
            sq_dist[rows] = block_distance(blocks, rows, torch.from_numpy(cand[fast, k]))
            index[rows] = torch.from_numpy(cand[fast, k])
            pending, dist, cand = pending[~fast], dist[~fast], cand[~fast]
            if pending.size == 0:
                return sq_dist, index
        rows = torch.from_numpy(pending)
        sq, idx = _best_of(blocks, rows, torch.from_numpy(cand), k)
        if n_query == n:  # every point was proposed: nothing left out
            ok = torch.ones(len(rows), dtype=torch.bool)
        else:
            ok = sq < torch.from_numpy(dist[:, -1]).square() * (scale * (1 - slack))
        sq_dist[rows[ok]], index[rows[ok]] = sq[ok], idx[ok]
        pending = pending[~ok.numpy()]
        if pending.size == 0:
            return sq_dist, index
    _direct_knn(blocks, torch.from_numpy(pending), k, sq_dist, index)
    return sq_dist, index


def _tree_metric(dims: list[int]) -> tuple[float, float, float]:
    """How the k-d tree searches the joint space of variables of dimensions ``dims``:
    ``(p, scale, inflation)``, its Minkowski ``p``, the factor with ``scale * tree^2 <=
    joint^2`` for the joint squared distance ``max_b |x^b - y^b|^2``, and how many more
    points a tree ball holds than a joint ball of the same bound, for locally uniform data.

    One variable: Euclidean, exact. Several: the Chebyshev metric (``max_c |x_c - y_c| <=``
    the joint distance, exact when every variable is a scalar), or the Euclidean one scaled
    by the number of variables ``B`` (``|x - y|^2 / B <=`` the joint squared distance),
    whichever inflates less. A joint ball of radius r is a product of balls, volume
    ``prod_b V_(d_b) r^(d_b)``; the Chebyshev ball of that radius is a cube, ``(2r)^D``; the
    scaled Euclidean one a ball of radius ``r sqrt(B)``, ``V_D (r sqrt(B))^D``.
    """
    if len(dims) == 1:
        return 2.0, 1.0, 1.0
    if all(d == 1 for d in dims):
        return math.inf, 1.0, 1.0
    log_joint = sum(log_unit_ball_volume(d) for d in dims)
    total = sum(dims)
    chebyshev = math.exp(total * math.log(2) - log_joint)
    log_euclidean = log_unit_ball_volume(total) + 0.5 * total * math.log(len(dims))
    euclidean = math.exp(log_euclidean - log_joint)
    if chebyshev <= euclidean:
        return math.inf, 1.0, chebyshev
    return 2.0, 1.0 / len(dims), euclidean


def log_unit_ball_volume(d: int) -> float:
    """``log V_d`` with ``V_d = pi^(d/2) / Gamma(d/2 + 1)``, the volume of the unit d-ball."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)


def _separated_kth(
    rows: np.ndarray, dist: np.ndarray, cand: np.ndarray, k: int, slack: float
) -> np.ndarray:
    """Which rows' k-th tree candidate is certainly their exact k-th neighbour.

    ``dist``, ``cand``: the tree's sorted distances and indices, column 0 the row itself,
    in a metric within relative ``slack`` of the exact squared distance. When the squared
    distances ``t`` satisfy ``t_(k-1) (1 + slack) < t_k (1 - slack)`` and ``t_k (1 + slack) <
    t_(k+1) (1 - slack)`` (``t_0 = 0``: the row itself), exactly ``k - 1`` other points are
    closer than candidate ``k`` and every other point is farther, in exact arithmetic too.
    """
    sq = np.square(dist[:, : k + 2])
    below = sq[:, k - 1] * (1 + slack) < sq[:, k] * (1 - slack)
    above = sq[:, k] * (1 + slack) < sq[:, k + 1] * (1 - slack)
    return below & above & (cand[:, 0] == rows)


def _pooled_kdtree_within(points: Tensor, n_first: int, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`kth_within_label` from one k-d tree search of the pooled samples.

    Each row's tree candidates are rescored with :func:`squared_distance`; the k-th
    smallest among those of its own set is ``d_i^2`` and the candidates within it give
    ``m_i``. Both are complete when ``d_i^2`` lies below the tree's last distance by more
    than :func:`_tree_slack`: no point left out can be inside. Rows that are not ask for
    eight times as many candidates (a dense other set), then compare with every point.
    """
    from scipy.spatial import cKDTree

    x = points.numpy()
    n, slack = x.shape[0], _tree_slack(x.shape[1])
    second = torch.arange(n) >= n_first
    tree = cKDTree(x, leafsize=TREE_LEAF_SIZE)
    sq_dist = torch.empty(n, dtype=torch.float64)
    index, count = torch.empty(n, dtype=torch.int64), torch.empty(n, dtype=torch.int64)
    pending = np.arange(n)
    first = 4 * k + 2  # with similar sets about 2k others are inside
    for n_query in (first, 8 * first, n):
        n_query = min(n_query, n)
        if n_query == n:
            cand = np.broadcast_to(np.arange(n), (pending.size, n))
            floor = torch.full((pending.size,), math.inf, dtype=torch.float64)
        else:
            dist, cand = tree.query(x[pending], k=n_query, workers=-1)
            floor = torch.from_numpy(dist[:, -1]).square() * (1 - slack)
        rows = torch.from_numpy(pending)
        done = torch.zeros(len(rows), dtype=torch.bool)
        size = max(1, RESCORE_BYTES // (8 * n_query * x.shape[1]))
        for piece in torch.arange(len(rows)).split(size):
            r, c = rows[piece], torch.from_numpy(np.ascontiguousarray(cand[piece.numpy()]))
            exact = squared_distance(points[r][:, None, :], points[c])
            exact.masked_fill_(c == r[:, None], math.inf)
            own = exact.masked_fill(second[c] != second[r][:, None], math.inf)
            own, order = own.topk(k, dim=1, largest=False, sorted=True)
            sq, order = own[:, -1], order[:, -1:]
            ok = sq < floor[piece]
            sq_dist[r[ok]], index[r[ok]] = sq[ok], c.gather(1, order)[ok, 0]
            count[r[ok]] = (exact[ok] <= sq[ok, None]).sum(dim=1)
            done[piece] = ok
        pending = pending[~done.numpy()]
        if pending.size == 0:
            break
    return sq_dist, index, count


def _tree_slack(d: int) -> float:
    """Relative bound on how far cKDTree's squared distance may lie from
    :func:`squared_distance` (both float64 sums of ``d`` squares, in different orders, with
    a square root and a square in between): ``4 (d + 4)`` units in the last place."""
    return 4 * (d + 4) * _UNIT_ROUNDOFF[torch.float64]


def _kdtree_count(
    points: Tensor, sq_radius: Tensor, inclusive: bool, defining: Tensor | None, list_balls: bool
) -> Tensor:
    """Counts from cKDTree with every boundary decision made by :func:`squared_distance`.

    With ``list_balls`` (small balls, see :func:`count_within`) the tree lists every ball
    widened by :func:`_tree_slack` in one pass and each listed pair is decided exactly.
    Otherwise it counts the balls narrowed and widened by that slack: a point inside the
    narrowed ball is inside the exact one, a point outside the widened ball outside it. Only
    rows whose two counts differ hold points in the sliver between. Where that is one point
    and the ``defining`` neighbour lies exactly on the radius, it is that neighbour (the
    usual case); any other such row lists its ball and decides the pairs exactly.
    """
    from scipy.spatial import cKDTree

    x = points.numpy()  # numpy: see _kdtree_knn
    slack = _tree_slack(x.shape[1])
    radius = np.sqrt(sq_radius.numpy())
    tree = cKDTree(x, leafsize=TREE_LEAF_SIZE)
    if list_balls:
        return _listed_count(tree, points, np.arange(len(x)), sq_radius, inclusive, slack)

    def count(scale: float) -> np.ndarray:
        # minus the point itself (at distance 0, inside every ball of radius >= 0)
        found = tree.query_ball_point(x, radius * scale, p=2, return_length=True, workers=-1)
        return np.asarray(found, dtype=np.int64) - 1

    inner, outer = count(1 - slack), count(1 + slack)
    if not inclusive:  # the tree's balls are closed: at radius 0 they hold the duplicates
        inner[radius == 0] = outer[radius == 0] = 0
    counts = torch.from_numpy(inner)
    unsure = outer != inner
    if defining is not None:
        on_radius = (squared_distance(points, points[defining]) == sq_radius).numpy()
        only_defining = unsure & (outer - inner == 1) & on_radius
        counts[only_defining] += int(inclusive)
        unsure &= ~only_defining
    unsure = np.flatnonzero(unsure)
    if unsure.size:
        counts[unsure] = _listed_count(tree, points, unsure, sq_radius, inclusive, slack)
    return counts


def _listed_count(
    tree, points: Tensor, rows: np.ndarray, sq_radius: Tensor, inclusive: bool, slack: float
) -> Tensor:
    """Counts of ``rows`` from the tree's lists of their balls widened by ``slack``, every
    listed pair decided with :func:`squared_distance`."""
    radius = np.sqrt(sq_radius.numpy()[rows]) * (1 + slack)
    found = tree.query_ball_point(
        points.numpy()[rows], radius, p=2, workers=-1, return_sorted=False
    )
    lengths = np.fromiter(map(len, found), dtype=np.int64, count=rows.size)
    pair_row = torch.from_numpy(np.repeat(np.arange(rows.size), lengths))
    pair_point = torch.from_numpy(np.repeat(rows, lengths))
    listed = itertools.chain.from_iterable(found)  # several times faster than concatenate
    cols = torch.from_numpy(np.fromiter(listed, dtype=np.int64, count=int(lengths.sum())))
    exact = squared_distance(points[pair_point], points[cols])
    r2 = sq_radius[pair_point]
    hit = ((exact <= r2) if inclusive else (exact < r2)) & (pair_point != cols)
    return torch.bincount(pair_row[hit], minlength=rows.size)


def _sampled_mean_count(points: Tensor, sq_radius: Tensor, n_rows: int = 32) -> float:
    """Roughly how many points the balls of :func:`count_within` hold on average, from
    ``n_rows`` evenly spaced rows and float64 matrix-product distances (an estimate that
    picks a method, never a count)."""
    n = points.shape[0]
    rows = torch.linspace(0, n - 1, min(n_rows, n), device=points.device).long()
    sq_norms = (points * points).sum(dim=1)
    approx = torch.addmm(sq_norms[None, :], points[rows], points.T, alpha=-2)
    approx += sq_norms[rows, None]
    return float((approx <= sq_radius[rows, None]).sum(dim=1).double().mean()) - 1


# --------------------------------------------------------------------------- brute force


@contextlib.contextmanager
def _float32_matmul(
    precision: str = "highest", device: torch.device | None = None
) -> Iterator[None]:
    """Float32 matmul inside the block at the proposal ``precision``, restored after: full
    precision, except TF32 tensor cores for ``"tf32"`` and ``"bf16"`` on CUDA (whose inputs
    are then rounded to TF32 or bf16 values already: the tensor cores read them exactly).
    CPU products stay IEEE float32 whatever the precision.

    torch >= 2.9 has per-backend settings and refuses to read the legacy global one once
    they disagree (as after ``torch.backends.cuda.matmul.allow_tf32 = True``), so the
    per-backend ones are used where they exist.
    """
    tf32 = precision != "highest" and device is not None and device.type == "cuda"
    backends = [torch.backends.cuda.matmul, torch.backends.mkldnn.matmul]
    if not all(hasattr(b, "fp32_precision") for b in backends):
        saved = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high" if tf32 else "highest")
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(saved)
        return
    saved = [b.fp32_precision for b in backends]
    for b, mode in zip(backends, ["tf32" if tf32 else "ieee", "ieee"], strict=True):
        b.fp32_precision = mode
    try:
        yield
    finally:
        for b, value in zip(backends, saved, strict=True):
            b.fp32_precision = value


def _round_mantissa(x: Tensor, bits: int) -> Tensor:
    """Float64 ``x`` rounded to nearest (ties to even) with ``bits`` stored mantissa bits, as
    float32: the values a TF32 (10 bits) or bf16 (7 bits) product reads exactly. Bit
    arithmetic on the float64 encoding; a carry out of the mantissa raises the exponent."""
    dropped = 52 - bits
    code = x.contiguous().view(torch.int64)
    tie_to_even = (code >> dropped) & 1
    code = (code + (1 << (dropped - 1)) - 1 + tie_to_even) & ~((1 << dropped) - 1)
    return code.view(torch.float64).to(torch.float32)


def _product_error(
    dim: int, norms: Tensor, max_norm: Tensor, unit: float, input_unit: float = 0.0
) -> Tensor:
    """Bound on the error of ``|a|^2 + |b|^2 - 2 a.b`` computed with a matrix product:
    ``2 ((D + 4) u + v) (|a| + max |b|)^2`` for ``a`` of norm ``norms``, with ``u`` the unit
    roundoff of the arithmetic and ``v`` the relative rounding of the product's inputs beyond
    it (reduced precision, see the module doc)."""
    return 2 * ((dim + 4) * unit + input_unit) * (norms + max_norm) ** 2


class _ApproxDistances:
    """Matrix-multiply squared distances of row chunks to all points, with an error bound.

    Chunks of at most ``rows_per_chunk`` rows are written into one reused buffer: fresh
    multi-megabyte tensors per chunk cost more in page faults than the multiply itself.
    The buffer is allocated on the first call; the fused search only uses :meth:`at` and
    :meth:`bound` and never needs it.

    At a reduced ``precision`` (float32 only) the product's operands ``blocks`` are rounded
    to that precision's mantissa, while the norms come from the float32 values.
    """

    def __init__(
        self,
        blocks: list[Tensor],
        dtype: torch.dtype,
        rows_per_chunk: int,
        precision: str = "highest",
    ):
        self.blocks = [b.to(dtype) for b in blocks]
        self.sqnorms = [(b * b).sum(dim=1) for b in self.blocks]
        self.unit = _UNIT_ROUNDOFF[dtype]  # of the stored values and products
        self.sum_unit, self.input_unit = self.unit, 0.0
        bits = _MANTISSA_BITS[precision]
        if bits is not None:
            self.blocks = [_round_mantissa(b, bits) for b in blocks]
            self.sum_unit, self.input_unit = _TENSOR_CORE_UNIT, 2.0 ** -(bits + 1)
        self.max_norms = [s.max().sqrt() for s in self.sqnorms]
        self.rows_per_chunk = rows_per_chunk
        self.buffer = self.scratch = None

    def bound(self, rows: Tensor) -> Tensor:
        """Float64 bound on the error of any ``rows`` entry: the max over blocks of
        :func:`_product_error` (see the module doc)."""
        bound = torch.zeros(len(rows), dtype=torch.float64, device=rows.device)
        for b, sq, max_norm in zip(self.blocks, self.sqnorms, self.max_norms, strict=True):
            e = _product_error(
                b.shape[1], sq[rows].sqrt(), max_norm, self.sum_unit, self.input_unit
            )
            bound = torch.maximum(bound, e.double())
        return bound

    def at(self, rows: Tensor, cols: Tensor) -> Tensor:
        """``shifted`` at columns ``cols`` (c, m) of each row (one block): ``|b|^2 - 2 a.b``."""
        (b,), (sq,) = self.blocks, self.sqnorms
        dots = torch.bmm(b[cols], b[rows, :, None])[:, :, 0]
        return sq[cols] - 2 * dots

    def __call__(self, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(shifted (c, N), offset (c,), bound (c,))`` for ``c = len(rows)``.

        The approximate squared distance is ``shifted + offset[:, None]``, within ``bound``
        of the exact one. With one block the query's own ``|q|^2`` stays out of ``shifted``
        (a per-row constant changes no ranking and saves a pass over the chunk).
        ``shifted`` is a view of the shared buffer, valid until the next call.
        """
        c = len(rows)
        if self.buffer is None:
            n, device = self.blocks[0].shape[0], rows.device
            self.buffer = torch.empty(
                self.rows_per_chunk, n, dtype=self.blocks[0].dtype, device=device
            )
            self.scratch = torch.empty_like(self.buffer) if len(self.blocks) > 1 else None
        shifted = self.buffer[:c]
        offset = torch.zeros(c, dtype=torch.float64, device=shifted.device)
        for i, (b, sq) in enumerate(zip(self.blocks, self.sqnorms, strict=True)):
            out = shifted if i == 0 else self.scratch[:c]
            torch.addmm(sq[None, :], b[rows], b.T, alpha=-2, out=out)
            if len(self.blocks) == 1:
                offset = sq[rows].double()
            else:
                out.add_(sq[rows, None])
            if i > 0:
                torch.maximum(shifted, out, out=shifted)
        return shifted, offset, self.bound(rows)


def _chunk_rows(n: int, per_entry_bytes: int, device: torch.device) -> int:
    """Rows per chunk so that one chunk's ``(rows, n)`` scratch fits the memory budget."""
    budget = CHUNK_BYTES
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = max(CHUNK_BYTES, min(16 * CHUNK_BYTES, free // 8))
    return max(1, budget // max(1, n * per_entry_bytes))


def _chunks(rows: Tensor, n: int, per_entry_bytes: int) -> Iterator[Tensor]:
    yield from rows.split(_chunk_rows(n, per_entry_bytes, rows.device))


def _tiers(precision: str) -> tuple[tuple[torch.dtype, str], ...]:
    """The matrix-multiply tiers of the brute force: float32 products at the proposal
    ``precision``, then float64."""
    return (torch.float32, precision), (torch.float64, "highest")


def _brute_force_knn(
    blocks: list[Tensor], k: int, backend: str, precision: str
) -> tuple[Tensor, Tensor]:
    """k-th neighbours by brute force: float32 candidates from ``backend`` (``"torch"``,
    ``"faiss"`` or ``"triton"``) at the proposal ``precision``, then float64, then direct
    differences for what is left."""
    n, device = blocks[0].shape[0], blocks[0].device
    sq_dist = torch.empty(n, dtype=torch.float64, device=device)
    index = torch.empty(n, dtype=torch.int64, device=device)
    pending = torch.arange(n, device=device)
    n_cand = min(k + EXTRA_CANDIDATES, n - 1)
    first = {"faiss": _faiss_candidates, "triton": _fused_candidates}.get(backend, _candidates)
    with _float32_matmul(precision, device):
        for dtype, tier_precision in _tiers(precision):
            propose = first if dtype == torch.float32 else _candidates
            ok_rows, ok_sq, ok_idx, pending = propose(
                blocks, pending, k, n_cand, dtype, tier_precision
            )
            sq_dist[ok_rows], index[ok_rows] = ok_sq, ok_idx
            if pending.numel() == 0:
                return sq_dist, index
    _direct_knn(blocks, pending, k, sq_dist, index)
    return sq_dist, index


def _direct_knn(blocks: list[Tensor], rows: Tensor, k: int, sq_dist: Tensor, index: Tensor):
    """The last tier: exact distances of ``rows`` to every point; writes their k-th
    neighbour into ``sq_dist`` and ``index``."""
    n, device = blocks[0].shape[0], blocks[0].device
    for chunk in _chunks(rows, n, 8 * (sum(b.shape[1] for b in blocks) + 3)):
        exact = block_distance(blocks, chunk[:, None], torch.arange(n, device=device)[None, :])
        exact[torch.arange(len(chunk), device=device), chunk] = float("inf")
        sq, idx = exact.topk(k, dim=1, largest=False, sorted=True)
        sq_dist[chunk], index[chunk] = sq[:, -1], idx[:, -1]


def _certify(blocks, rows, cand, threshold, bound, k):
    """Split rows into those whose exact k-th neighbour is provably among ``cand`` and the rest.

    Every point left out has approximate distance >= ``threshold``, so exact >= threshold -
    bound; a row is certain when its exact k-th candidate distance is below that.
    """
    sq, idx = _best_of(blocks, rows, cand, k)
    ok = sq < threshold - bound
    return rows[ok], sq[ok], idx[ok], rows[~ok]


def _candidates(blocks, pending, k, n_cand, dtype, precision):
    """Top candidates from matrix-multiply distances in ``dtype`` at ``precision``, certified."""
    n, device = blocks[0].shape[0], blocks[0].device
    size = min(_chunk_rows(n, 4 * dtype.itemsize, device), len(pending))
    approx_distances = _ApproxDistances(blocks, dtype, size, precision)
    parts = []
    for rows in pending.split(size):
        shifted, offset, bound = approx_distances(rows)
        shifted[torch.arange(len(rows), device=device), rows] = float("inf")
        cand, floor = _propose(shifted, n_cand)
        parts.append(_certify(blocks, rows, cand, floor.double() + offset, bound, k))
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


#: Columns per group in the grouped proposal used on CUDA (see :func:`_propose`).
GROUP = 32
#: The fused kernel's product for each proposal precision (see :mod:`._triton_search`).
_TRITON_PRECISION = {"highest": "ieee", "tf32": "tf32", "bf16": "bf16"}


def _grouped(values: Tensor) -> bool:
    """Whether :func:`_propose` groups columns: on CUDA, for long rows. On an H200 a top-k
    over a 256 x 1M chunk took 2.9 ms and the grouped proposal 2.1 ms (the product itself
    2.0 ms); on CPU the plain top-k is the faster."""
    return values.is_cuda and values.shape[1] >= 64 * GROUP


def _propose(values: Tensor, n_cand: int) -> tuple[Tensor, Tensor]:
    """``n_cand`` candidate columns per row and a floor: every other column's value is at
    least the floor (``inf`` when no column is left out).

    On CPU: a top-k of ``n_cand + 1``; the last value is the floor. On CUDA the row is cut
    into groups of ``GROUP`` columns (the last may be shorter) and only the per-group minima
    go through a top-k, see :func:`_propose_from_groups`.
    """
    c, n = values.shape
    if not _grouped(values):
        vals, cols = values.topk(n_cand + 1, dim=1, largest=False, sorted=True)
        return cols[:, :-1], vals[:, -1]
    whole = n // GROUP * GROUP
    minima = values[:, :whole].reshape(c, -1, GROUP).amin(dim=2)
    if whole < n:
        minima = torch.cat([minima, values[:, whole:].amin(dim=1, keepdim=True)], dim=1)
    return _propose_from_groups(minima, n, n_cand, lambda cols: values.gather(1, cols))


def _propose_from_groups(
    minima: Tensor, n: int, n_cand: int, values_at: Callable[[Tensor], Tensor]
) -> tuple[Tensor, Tensor]:
    """Candidates and floor (as :func:`_propose`) from per-group minima ``(c, ceil(n / GROUP))``.

    The ``n_cand + 1`` groups with the smallest minima hold the candidates, and every column
    of another group is at least the largest of those minima. ``values_at(cols)`` gives the
    values at those groups' columns (``cols`` < n); the best ``n_cand`` are kept and the next
    one lowers the floor. Columns past ``n`` and left-out columns have minimum/value ``inf``.
    """
    c, n_groups = minima.shape
    n_chosen = min(n_cand + 1, n_groups)
    mins, groups = minima.topk(n_chosen, dim=1, largest=False, sorted=True)
    group_floor = mins[:, -1] if n_chosen < n_groups else torch.full_like(mins[:, -1], math.inf)
    offsets = torch.arange(GROUP, device=minima.device)
    cols = (groups[:, :, None] * GROUP + offsets).reshape(c, -1)
    past_end = cols >= n
    cols = cols.clamp_max(n - 1)
    vals = values_at(cols).masked_fill(past_end, math.inf)
    vals, best = vals.topk(n_cand + 1, dim=1, largest=False, sorted=True)
    return cols.gather(1, best[:, :-1]), torch.minimum(group_floor, vals[:, -1])


def _fused_candidates(blocks, pending, k, n_cand, dtype, precision):
    """Top candidates from the fused Triton kernel (float32 at ``precision``, one block),
    certified.

    The kernel writes per-group minima only; the chosen groups' values are recomputed in
    float32 (:meth:`_ApproxDistances.at`), both within the same error bound.
    """
    from ._triton_search import group_minima

    n = blocks[0].shape[0]
    approx = _ApproxDistances(blocks, torch.float32, rows_per_chunk=0, precision=precision)
    (base,), (sqnorms,) = approx.blocks, approx.sqnorms
    n_groups = -(-n // GROUP)
    # per row: its group minima, and per chosen column its gathered point, value, and the
    # int64 indices and masks of the selection (about 40 bytes)
    row_bytes = 4 * n_groups + (n_cand + 1) * GROUP * (4 * (base.shape[1] + 1) + 40)
    size = min(_chunk_rows(1, row_bytes, pending.device), len(pending))
    parts = []
    for rows in pending.split(size):
        minima = group_minima(base, sqnorms, rows, GROUP, _TRITON_PRECISION[precision])

        def values_at(cols: Tensor, rows: Tensor = rows) -> Tensor:
            return approx.at(rows, cols).masked_fill(cols == rows[:, None], math.inf)

        cand, floor = _propose_from_groups(minima, n, n_cand, values_at)
        offset = sqnorms[rows].double()
        parts.append(_certify(blocks, rows, cand, floor.double() + offset, approx.bound(rows), k))
    return tuple(torch.cat(p) for p in zip(*parts, strict=True))


def _faiss_candidates(blocks, pending, k, n_cand, dtype, precision):
    """Top candidates from faiss's exact flat L2 search (float32, whatever the ``precision``),
    certified."""
    import faiss

    (points,) = blocks
    base = points.to(torch.float32).numpy()
    n = base.shape[0]
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    n_search = min(n_cand + 2, n)  # self, the candidates, one more to bound the rest
    approx, cand = index.search(base[pending.numpy()], n_search)
    approx, cand = torch.from_numpy(approx).double(), torch.from_numpy(cand).long()
    if n_search < n:
        cand, threshold = cand[:, :-1], approx[:, -1]
    else:
        threshold = torch.full_like(approx[:, -1], float("inf"))
    sqnorm = torch.from_numpy(base).square().sum(dim=1).double()
    bound = _product_error(
        base.shape[1], sqnorm[pending].sqrt(), sqnorm.max().sqrt(), _UNIT_ROUNDOFF[torch.float32]
    )
    return _certify(blocks, pending, cand, threshold, bound, k)


def _brute_force_count(
    points: Tensor, sq_radius: Tensor, inclusive: bool, precision: str
) -> Tensor:
    n, device = points.shape[0], points.device
    counts = torch.zeros(n, dtype=torch.int64, device=device)
    pending = torch.arange(n, device=device)
    with _float32_matmul(precision, device):
        for dtype, tier_precision in _tiers(precision):
            size = min(_chunk_rows(n, 4 * dtype.itemsize, device), len(pending))
            approx_distances = _ApproxDistances([points], dtype, size, tier_precision)
            unresolved = []
            for rows in pending.split(size):
                done, done_counts = _count_chunk(
                    points, approx_distances, rows, sq_radius, inclusive
                )
                counts[rows[done]] = done_counts
                unresolved.append(rows[~done])
            pending = torch.cat(unresolved)
            if pending.numel() == 0:
                return counts
    for rows in _chunks(pending, n, 8 * (points.shape[1] + 3)):
        exact = squared_distance(points[rows, None, :], points[None, :, :])
        exact[torch.arange(len(rows), device=device), rows] = float("inf")
        r2 = sq_radius[rows, None]
        inside = (exact <= r2) if inclusive else (exact < r2)
        counts[rows] = inside.sum(dim=1, dtype=torch.int32).long()
    return counts


def _count_chunk(
    points: Tensor,
    approx_distances: _ApproxDistances,
    rows: Tensor,
    sq_radius: Tensor,
    inclusive: bool,
) -> tuple[Tensor, Tensor]:
    """Counts for one chunk of rows from approximate distances and their error bound.

    A pair below ``r2 - slack`` is surely inside, one above ``r2 + slack`` surely outside;
    the pairs in between are decided with the exact distance. Rows with more than
    ``MAX_NEAR_PAIRS`` such pairs are left for a more precise tier.

    Returns ``(done, counts)``: which rows were decided, and their counts.
    """
    device, c = rows.device, len(rows)
    shifted, offset, bound = approx_distances(rows)
    shifted[torch.arange(c, device=device), rows] = float("inf")
    r2 = sq_radius[rows]
    # r2 -/+ slack - offset is rounded to the chunk's dtype: widen the slack for that too
    slack = bound + 4 * approx_distances.unit * (r2 + offset)
    upper = (r2 + slack - offset).to(shifted.dtype)
    lower = (r2 - slack - offset).to(shifted.dtype)
    pair_row, pair_col = (shifted <= upper[:, None]).nonzero(as_tuple=True)
    near = shifted[pair_row, pair_col] >= lower[pair_row]
    done = torch.bincount(pair_row[near], minlength=c) <= MAX_NEAR_PAIRS
    counts = torch.bincount(pair_row[~near], minlength=c)
    decide = near & done[pair_row]
    row_idx, col_idx = pair_row[decide], pair_col[decide]
    exact = squared_distance(points[rows[row_idx]], points[col_idx])
    radius = sq_radius[rows[row_idx]]
    hit = (exact <= radius) if inclusive else (exact < radius)
    counts += torch.bincount(row_idx[hit], minlength=c)
    return done, counts[done]
