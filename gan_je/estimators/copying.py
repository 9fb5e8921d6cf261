"""The data-copying statistic C_T of Meehan, Chaudhuri and Dasgupta (2020).

C. Meehan, K. Chaudhuri, S. Dasgupta, "A Non-Parametric Test to Detect Data-Copying in
Generative Models", AISTATS 2020.

A generator that copies its training set puts its samples closer to the training samples
than fresh data from the same distribution would be. The test compares, cell by cell of a
partition of the space, how far generated samples and held-out real samples lie from their
nearest training sample, with a Mann-Whitney U test, and averages the standardised U
statistics weighted by how much held-out data each cell holds. The average hides a
generator that copies in part (a fifth of its samples, or one region of the space), so the
cells whose own Z is significant after a correction for the number of cells are reported
beside it, with the share of generated samples they hold.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._inputs import as_samples, check_whole, rescale, scale_exponent
from .neighbors import nearest_sq_distance, squared_distance
from .resampling import halvings

#: Default number of k-means cells: about 100 held-out samples a cell for 1,000 of them.
CELLS = 10
#: Default least number of generated samples a cell needs to take part; with fewer, U's
#: normal approximation is poor (the paper drops such cells too).
MIN_GENERATED = 20
#: Default family-wise false-alarm rate of the flagged cells (over all cells compared).
ALPHA = 0.05
#: Most Lloyd's iterations of the k-means partition (any fixed partition is valid).
KMEANS_ITERATIONS = 30


class NoComparableCellError(ValueError):
    """No cell holds both ``min_generated`` generated samples and a held-out sample: C_T is
    undefined for these samples (a metric reports NaN)."""


class DataCopying(NamedTuple):
    """Result of :func:`data_copying`.

    - ``z``: C_T, a 0-dim float64 tensor; strongly negative means copying.
    - ``cell_z``: ``(cells,)`` float64, every cell's Z_U; NaN in the cells not used.
    - ``cell_weight``: ``(cells,)`` float64, every cell's share of the held-out samples.
    - ``kept``: ``(cells,)`` bool, the cells used in C_T.
    - ``n_kept``: how many cells were used.
    - ``threshold``: the Z below which a kept cell is flagged (:func:`cell_threshold` of
      ``alpha`` and ``n_kept``).
    - ``flagged``: ``(cells,)`` bool, the kept cells with ``cell_z < threshold``: copying
      there.
    - ``n_flagged``: how many cells are flagged.
    - ``share``: 0-dim float64, the share of all generated samples that lie in flagged cells.
    """

    z: Tensor
    cell_z: Tensor
    cell_weight: Tensor
    kept: Tensor
    n_kept: int
    threshold: float
    flagged: Tensor
    n_flagged: int
    share: Tensor


def cell_threshold(alpha: float, n_cells: int) -> float:
    """The one-sided Šidák threshold ``z* = Φ⁻¹(1 - (1 - alpha)^(1 / n_cells))``.

    Under the null every kept cell's Z_U is about standard normal, and the cells hold
    disjoint samples, so their Z_U are independent given the training set: the chance that
    any of ``n_cells`` falls below ``z*`` is ``1 - (1 - Φ(z*))^n_cells = alpha``. For
    ``alpha = 0.05``: -1.64 for one cell, -2.57 for 10 (Bonferroni's ``Φ⁻¹(alpha / n)`` is
    -2.58).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    n_cells = check_whole(n_cells, "n_cells", minimum=1)
    # 1 - (1 - alpha)^(1/n) without cancellation for small alpha
    return NormalDist().inv_cdf(-math.expm1(math.log1p(-alpha) / n_cells))


def mann_whitney(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Mann-Whitney ``(U, Z_U)`` of 1-D samples ``x`` (size m) against ``y`` (size n).

    ``U = #{(i, j) : x_i > y_j} + #{(i, j) : x_i = y_j} / 2``, computed from the midranks of
    the pooled sample as ``U = R_x - m (m + 1) / 2`` (``R_x``: the sum of x's ranks), and
    ``Z_U = (U - m n / 2) / sqrt(m n (m + n + 1) / 12)``, the null mean and variance
    without the tie correction (as in the paper). Both are 0-dim float64 tensors; Z_U is
    negative when ``x`` tends to be smaller than ``y``.
    """
    m, n = x.numel(), y.numel()
    pooled = torch.cat([x.reshape(-1), y.reshape(-1)]).to(torch.float64)
    _, group, counts = torch.unique(pooled, return_inverse=True, return_counts=True)  # sorted
    # a group of t tied values at sorted positions s+1..s+t all get the midrank s + (t + 1)/2
    midranks = counts.cumsum(0).to(torch.float64) - (counts - 1).to(torch.float64) / 2
    u = midranks[group[:m]].sum() - m * (m + 1) / 2
    z = (u - m * n / 2) / math.sqrt(m * n * (m + n + 1) / 12)
    return u, z


def data_copying(
    train: Any,
    generated: Any,
    held_out: Any,
    cells: int = CELLS,
    min_generated: int = MIN_GENERATED,
    seed: int = 0,
    return_se: bool | int = False,
    alpha: float = ALPHA,
) -> DataCopying:
    """The data-copying statistic C_T of ``generated`` against ``train``, with ``held_out``.

    All three are ``(N, ...)`` tensors or arrays of the same number of features per sample
    (flattened per sample); ``held_out`` must be real samples not used in training.

    1. k-means on ``train`` (a k-means++ start seeded with ``seed``) partitions the space
       into ``cells`` cells; every generated and held-out sample belongs to the cell of its
       nearest centre.
    2. Every generated and held-out sample gets its (exact, float64) distance to the
       nearest sample of the whole ``train`` set.
    3. In cell j, with m_j generated and n_j held-out samples, Z_U(j) is the standardised
       Mann-Whitney statistic (:func:`mann_whitney`) of the generated distances against
       the held-out ones.
    4. With ``pi_j = n_j / n`` and K the cells with ``m_j >= min_generated`` and
       ``n_j >= 1``::

           C_T = sum_{j in K} pi_j Z_U(j) / sum_{j in K} pi_j

    Under the null (generated samples distributed as held-out ones) every Z_U(j) is about
    standard normal, so C_T is about normal with mean 0 and variance
    ``sum_K pi_j^2 / (sum_K pi_j)^2 <= 1``. C_T well below 0 (the paper uses
    -3) means the generated samples lie closer to the training set than held-out data
    does: data-copying. C_T above 0 means they lie farther: underfitting or
    over-smoothing.

    5. C_T averages the cells, so copying in part hides in it (20 % of the samples copied
       reads about -2.5; copies confined to one cell of ten about -1.4 while that cell's own
       Z_U is below -7). So every kept cell with ``Z_U(j) < z*`` is flagged, with ``z*`` the
       one-sided Šidák threshold at family-wise level ``alpha`` over the ``|K|`` cells
       compared (:func:`cell_threshold`; -2.57 for ``alpha = 0.05`` and 10 cells): under the
       null some cell is flagged with probability about ``alpha``. ``share`` is the fraction
       of all generated samples lying in flagged cells. A flagged cell is the verdict
       "copying here"; ``share`` says how much of the generator those cells hold (at most
       that much of it is copied there).

    C_T has no standard error: ``return_se`` is accepted as by every estimator, and anything
    but ``False``/0 is refused. C_T is already standardised (its null spread is known, above)
    and grows like the square root of the sample sizes when there is copying, so random
    halves, whose rule assumes a spread falling as 1/N around a fixed value, do not apply.

    Raises ``ValueError`` naming the argument for bad ``cells``/``min_generated``/``seed``/
    ``return_se``/``alpha``, fewer training samples than cells, fewer generated samples than
    ``min_generated``, different feature counts, or (:class:`NoComparableCellError`) when no
    cell qualifies.
    """
    if halvings(return_se):
        raise ValueError(
            "data_copying has no standard error: C_T is itself a standardised test statistic "
            "(about N(0, 1) or narrower without copying), so compare it with -3; pass "
            "return_se=False"
        )
    cells = check_whole(cells, "cells", minimum=1)
    min_generated = check_whole(min_generated, "min_generated", minimum=1)
    seed = check_whole(seed, "seed", minimum=0)
    cell_threshold(alpha, 1)  # checks alpha before any work
    train = as_samples(train, "train")
    generated = as_samples(generated, "generated").to(train.device)
    held_out = as_samples(held_out, "held_out").to(train.device)
    for x, name in ((generated, "generated"), (held_out, "held_out")):
        if x.shape[1] != train.shape[1]:
            raise ValueError(
                f"{name} has {x.shape[1]} features per sample but train has "
                f"{train.shape[1]}; all three sets must live in the same space"
            )
    if train.shape[0] < cells:
        raise ValueError(
            f"train has {train.shape[0]} samples but cells={cells}: k-means needs at least "
            f"one training sample per cell; pass more samples or fewer cells"
        )
    if generated.shape[0] < min_generated:
        raise ValueError(
            f"generated has {generated.shape[0]} samples but min_generated={min_generated}: "
            f"no cell could be used; pass more generated samples or a smaller min_generated"
        )

    # a power-of-two rescaling keeps squared distances finite and changes no rank or cell
    exponent = scale_exponent(train, generated, held_out)
    train, generated, held_out = (rescale(x, exponent) for x in (train, generated, held_out))

    centres = _kmeans_centres(train, cells, seed)
    gen_cell = _nearest_centre(generated, centres)
    held_cell = _nearest_centre(held_out, centres)
    # squared distances rank like distances, so U is the same
    gen_dist = nearest_sq_distance(generated, train)
    held_dist = nearest_sq_distance(held_out, train)

    gen_count = torch.bincount(gen_cell, minlength=cells)
    held_count = torch.bincount(held_cell, minlength=cells)
    weight = held_count.to(torch.float64) / held_out.shape[0]
    # too few generated samples make Z_U far from normal; no held-out sample, no comparison
    kept = (gen_count >= min_generated) & (held_count >= 1)
    if not bool(kept.any()):
        raise NoComparableCellError(
            f"no cell holds min_generated={min_generated} generated samples and a held-out "
            f"sample (generated per cell: {gen_count.tolist()}); pass more generated "
            f"samples, fewer cells or a smaller min_generated"
        )
    cell_z = torch.full((cells,), math.nan, dtype=torch.float64, device=train.device)
    for j in torch.nonzero(kept).flatten().tolist():
        cell_z[j] = mann_whitney(gen_dist[gen_cell == j], held_dist[held_cell == j])[1]
    z = (weight[kept] * cell_z[kept]).sum() / weight[kept].sum()
    n_kept = int(kept.sum())
    threshold = cell_threshold(alpha, n_kept)
    flagged = kept & (cell_z < threshold)  # NaN (cells not kept) compares False
    share = gen_count[flagged].sum().to(torch.float64) / generated.shape[0]
    return DataCopying(
        z, cell_z, weight, kept, n_kept, threshold, flagged, int(flagged.sum()), share
    )


def _kmeans_centres(train: Tensor, cells: int, seed: int) -> Tensor:
    """``(cells, D)`` centres of k-means on ``train``: one k-means++ start (seeded), then
    Lloyd's iterations until no sample changes cell (at most ``KMEANS_ITERATIONS``).

    Any partition fixed before looking at the generated and held-out samples gives a valid
    test, so one start (no restarts) is enough. A cell that loses all its samples keeps its
    centre. Our own loop rather than scikit-learn's KMeans: it runs in float64 on the
    samples' device, and has no second OpenMP pool fighting torch's for cores (KMeans took
    0.5-7 s instead of 0.02 s on 1,000 2-D points on a busy 2-core machine)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    chosen = [int(torch.randint(train.shape[0], (1,), generator=generator))]
    sq_dist = squared_distance(train, train[chosen[0]])
    for _ in range(cells - 1):  # k-means++: the next centre drawn with probability ~ sq_dist
        weights = sq_dist.cpu() if float(sq_dist.sum()) > 0 else torch.ones(train.shape[0])
        chosen.append(int(torch.multinomial(weights, 1, generator=generator)))
        sq_dist = torch.minimum(sq_dist, squared_distance(train, train[chosen[-1]]))
    centres = train[chosen]
    cell = _nearest_centre(train, centres)
    for _ in range(KMEANS_ITERATIONS):
        # the cell means as a one-hot product: index_add_'s sums are not deterministic on CUDA
        members = torch.nn.functional.one_hot(cell, cells).to(torch.float64)
        count = members.sum(dim=0)[:, None]
        centres = torch.where(count > 0, members.T @ train / count.clamp(min=1), centres)
        new_cell = _nearest_centre(train, centres)
        if torch.equal(new_cell, cell):
            break
        cell = new_cell
    return centres


def _nearest_centre(x: Tensor, centres: Tensor) -> Tensor:
    """Index of every sample's nearest centre, from ``|c|^2 - 2 x.c`` in float64 (a matrix
    product: rounding can only move a sample that is almost equidistant, and any fixed
    partition gives a valid test)."""
    scores = (centres * centres).sum(dim=1)[None, :] - 2 * x @ centres.T
    return scores.argmin(dim=1)
