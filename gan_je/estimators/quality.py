"""Sample-quality statistics built on k-nearest-neighbour balls around feature vectors.

- Improved precision and recall (Kynkäänniemi et al. 2019): around every real sample a ball
  reaching its k-th nearest other real sample (k = 3); *precision* is the fraction of
  generated samples inside at least one real ball, *recall* the fraction of real samples
  inside at least one generated ball (balls around generated samples, the same way).
- Density and coverage (Naeem et al. 2020, k = 5): with the real balls,
  ``density = 1/(k M) sum_j #{real balls containing fake_j}`` (about 1 when the two
  distributions match, above 1 when fakes crowd where reals are dense) and
  ``coverage = fraction of real balls containing at least one generated sample``.

A point on a ball's boundary is inside (``<=``, as in both papers; prdc's implementation
uses ``<`` and can give lower values on tied data). Radii and memberships are the same
float64 numbers, :func:`gan_je.estimators.neighbors.squared_distance`, on every backend and
device (the k-d tree's candidates are rescored with it), so copies, duplicates and quantised
features give the same precision, recall, density and coverage everywhere.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._inputs import as_samples, check_enough, check_k, check_same_features
from .neighbors import kth_neighbor, squared_distance

CHUNK_BYTES = 1 << 27  # memory of one chunk of (queries x centres x features) differences


class _Containment(NamedTuple):
    """Which queries lie in which balls: counted both ways, with the sole ball (or query)
    where there is exactly one (-1 elsewhere)."""

    per_query: Tensor  # (N_q,) number of balls holding each query
    sole_ball: Tensor  # (N_q,) the one ball holding a query held by exactly one
    per_ball: Tensor  # (N_c,) number of queries in each ball
    sole_query: Tensor  # (N_c,) the one query in a ball holding exactly one


def _containment(queries: Tensor, centres: Tensor, sq_radius: Tensor) -> _Containment:
    """``|q - c_i|^2 <= r_i^2`` for every query and ball, in chunks of queries."""
    n, d = centres.shape
    rows = max(1, CHUNK_BYTES // (8 * n * d))
    per_query, sole_ball = [], []
    per_ball = torch.zeros(n, dtype=torch.int64, device=centres.device)
    sole_query = torch.full((n,), -1, dtype=torch.int64, device=centres.device)
    for start, chunk in zip(range(0, len(queries), rows), queries.split(rows), strict=True):
        inside = squared_distance(chunk[:, None, :], centres[None, :, :]) <= sq_radius[None, :]
        count = inside.sum(dim=1)
        per_query.append(count)
        sole_ball.append(torch.where(count == 1, inside.int().argmax(dim=1), -1))
        in_chunk = inside.sum(dim=0)
        first = start + inside.int().argmax(dim=0)
        sole_query = torch.where((per_ball == 0) & (in_chunk == 1), first, sole_query)
        sole_query = torch.where(per_ball + in_chunk > 1, -1, sole_query)
        per_ball += in_chunk
    return _Containment(torch.cat(per_query), torch.cat(sole_ball), per_ball, sole_query)


def _jackknife_variance(loss: Tensor) -> Tensor:
    """Jackknife variance ``(n - 1)/n sum_i (l_i - mean l)^2`` of a statistic that drops by
    ``loss[i]`` when sample ``i`` is left out."""
    n = loss.shape[0]
    return (n - 1) / n * (loss.double() - loss.double().mean()).square().sum()


def _share_se(inside: Tensor, sole: Tensor, n_other: int) -> Tensor:
    """Standard error of ``mean(inside)``, the share of one set's samples inside the other
    set's balls: binomial over this set, plus the jackknife over the other set, whose sample
    ``i`` alone holds ``#{sole == i}`` of them (the change of its neighbours' radii when it is
    left out is ignored)."""
    m = inside.shape[0]
    share = inside.double().mean()
    lost = torch.bincount(sole[sole >= 0], minlength=n_other) / m
    return (share * (1 - share) / m + _jackknife_variance(lost)).sqrt()


def _samples_and_radii(x: Any, name: str, k: int, backend: str) -> tuple[Tensor, Tensor]:
    x = as_samples(x, name)
    check_enough(x, k, name)
    return x, kth_neighbor(x, k, backend)[0]


def precision_recall(
    real: Any, fake: Any, k: int = 3, backend: str = "auto", return_se: bool = False
) -> tuple[Tensor, Tensor] | tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Improved ``(precision, recall)`` of ``fake`` against ``real`` (each ``(N, ...)``,
    flattened per sample), as 0-dim float64 tensors in [0, 1].

    With ``return_se=True`` returns ``((precision, recall), (se_precision, se_recall))``:
    each share's binomial variance over the samples tested plus the jackknife variance over
    the samples whose balls test them (see ``docs/estimators.md`` for the calibration)."""
    k = check_k(k)
    real, real_sq_radius = _samples_and_radii(real, "real", k, backend)
    fake, fake_sq_radius = _samples_and_radii(fake, "fake", k, backend)
    check_same_features(real, fake)
    in_real = _containment(fake, real, real_sq_radius)
    in_fake = _containment(real, fake, fake_sq_radius)
    precision = (in_real.per_query > 0).double().mean()
    recall = (in_fake.per_query > 0).double().mean()
    if not return_se:
        return precision, recall
    se_precision = _share_se(in_real.per_query > 0, in_real.sole_ball, real.shape[0])
    se_recall = _share_se(in_fake.per_query > 0, in_fake.sole_ball, fake.shape[0])
    return (precision, recall), (se_precision, se_recall)


def density_coverage(
    real: Any, fake: Any, k: int = 5, backend: str = "auto", return_se: bool = False
) -> tuple[Tensor, Tensor] | tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """``(density, coverage)`` of ``fake`` against ``real``, as 0-dim float64 tensors;
    density is in [0, N_real / k], coverage in [0, 1].

    With ``return_se=True`` returns ``((density, coverage), (se_density, se_coverage))``:
    density's variance over the fake samples plus the jackknife over the real balls;
    coverage's binomial variance over the real balls plus the jackknife over the fakes."""
    k = check_k(k)
    real, real_sq_radius = _samples_and_radii(real, "real", k, backend)
    fake = as_samples(fake, "fake")
    check_same_features(real, fake)
    inside = _containment(fake, real, real_sq_radius)
    m = fake.shape[0]
    density = inside.per_query.double().sum() / (k * m)
    coverage = (inside.per_ball > 0).double().mean()
    if not return_se:
        return density, coverage
    per_fake = inside.per_query.double() / k
    se_density = (per_fake.var() / m + _jackknife_variance(inside.per_ball / (k * m))).sqrt()
    se_coverage = _share_se(inside.per_ball > 0, inside.sole_query, m)
    return (density, coverage), (se_density, se_coverage)
