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

from typing import Any

from torch import Tensor

from ._inputs import (
    as_samples,
    check_enough,
    check_k,
    check_same_features,
    rescale,
    scale_exponent,
)
from .neighbors import count_in_balls, kth_neighbor, nearest_sq_distance
from .resampling import Estimate, with_se


def _as_pair(real: Any, fake: Any) -> tuple[Tensor, Tensor]:
    """Both sets as ``(N, D)`` float64 samples, divided by one power of two, exactly, when
    their spread lies beyond ``2**±256`` (:func:`._inputs.scale_exponent`): ball memberships
    do not change when every distance is scaled alike, and squared distances of samples at
    scales of 1e160 would overflow to inf (1e-160: underflow to 0)."""
    real, fake = as_samples(real, "real"), as_samples(fake, "fake")
    check_same_features(real, fake)
    exponent = scale_exponent(real, fake)
    return rescale(real, exponent), rescale(fake, exponent)


def _radii(x: Tensor, name: str, k: int, backend: str) -> Tensor:
    """Squared distances from every sample of ``x`` to its k-th nearest other one."""
    check_enough(x, k, name)
    return kth_neighbor(x, k, backend)[0]


def precision_recall(
    real: Any, fake: Any, k: int = 3, backend: str = "auto", return_se: bool | int = False
) -> tuple[Tensor, Tensor] | tuple[Estimate, Estimate]:
    """Improved ``(precision, recall)`` of ``fake`` against ``real`` (each ``(N, ...)``,
    flattened per sample), as 0-dim float64 tensors in [0, 1]. With ``return_se=True`` each
    is an :class:`.Estimate` ``(value, se)``, by half-sampling (:mod:`.resampling`).
    Scale-invariant: ``precision_recall(c * real, c * fake)`` is the same for any finite
    ``c > 0``."""
    k = check_k(k)
    real, fake = _as_pair(real, fake)
    real_sq_radius, fake_sq_radius = (
        _radii(real, "real", k, backend),
        _radii(fake, "fake", k, backend),
    )
    precision = (count_in_balls(fake, real, real_sq_radius) > 0).double().mean()
    recall = (count_in_balls(real, fake, fake_sq_radius) > 0).double().mean()

    def halves(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        return precision_recall(real, fake, k, backend)

    return with_se((precision, recall), return_se, halves, [[real], [fake]], k + 1)


def density_coverage(
    real: Any, fake: Any, k: int = 5, backend: str = "auto", return_se: bool | int = False
) -> tuple[Tensor, Tensor] | tuple[Estimate, Estimate]:
    """``(density, coverage)`` of ``fake`` against ``real``, as 0-dim float64 tensors;
    density is in [0, N_real / k], coverage in [0, 1]. With ``return_se=True`` each is an
    :class:`.Estimate` ``(value, se)``, by half-sampling. Scale-invariant, as
    :func:`precision_recall`."""
    k = check_k(k)
    real, fake = _as_pair(real, fake)
    real_sq_radius = _radii(real, "real", k, backend)
    density = count_in_balls(fake, real, real_sq_radius).double().sum() / (k * fake.shape[0])
    coverage = (nearest_sq_distance(real, fake) <= real_sq_radius).double().mean()

    def halves(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
        return density_coverage(real, fake, k, backend)

    return with_se((density, coverage), return_se, halves, [[real], [fake]], k + 1)
