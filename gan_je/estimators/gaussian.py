"""Gaussian plug-in estimators: fit a mean and covariance, use the closed forms.

The fast baseline for the k-NN family. Exact when the data are Gaussian, biased otherwise
(a Gaussian has the largest entropy for its covariance, so :func:`entropy` over-estimates
non-Gaussian entropies). Inputs follow the same rules as the k-NN estimators, including
the exact power-of-two rescaling that keeps any finite scale in range (:func:`._inputs.rescale`),
and the same ``return_se`` (random halvings, :mod:`.resampling`; each half needs more samples
than dimensions).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ._inputs import (
    as_samples,
    check_base,
    check_paired,
    check_same_features,
    label_entropy,
    nats_to,
    rescale,
    scale_exponent,
)
from .resampling import Estimate, with_se


def _covariance(x: Tensor, name: str) -> Tensor:
    """Unbiased sample covariance ``(d, d)``; needs more samples than dimensions."""
    n, d = x.shape
    if n <= d:
        raise ValueError(
            f"{name} has {n} samples in {d} dimensions: a full-rank covariance needs more "
            f"samples than dimensions; pass more samples or reduce the dimension"
        )
    centred = x - x.mean(dim=0, keepdim=True)
    return centred.T @ centred / (n - 1)


def _logdet(cov: Tensor, name: str) -> Tensor:
    sign, logdet = torch.linalg.slogdet(cov)
    if sign <= 0:
        raise ValueError(
            f"the covariance of {name} is singular (some features are constant or collinear); "
            f"drop or decorrelate them, or add a little noise"
        )
    return logdet


def entropy(x: Any, base: float = math.e, return_se: bool | int = False) -> Tensor | Estimate:
    """``H = 1/2 log det(2 pi e Sigma)`` of the Gaussian fitted to ``x`` (N, ...)."""
    check_base(base)
    x = as_samples(x, "x")
    d = x.shape[1]
    exponent = scale_exponent(x)  # H(c x) = H(x) + d log c
    cov = _covariance(rescale(x, exponent), "x")
    h = 0.5 * (d * math.log(2 * math.pi * math.e) + _logdet(cov, "x"))
    value = nats_to(h + d * exponent * math.log(2), base)
    return with_se(value, return_se, lambda x: entropy(x, base), [[x]], least=d + 1)


def mutual_information(
    x: Any, y: Any, base: float = math.e, return_se: bool | int = False
) -> Tensor | Estimate:
    """``I = 1/2 (log det Sigma_x + log det Sigma_y - log det Sigma_xy)`` of the joint
    Gaussian fit; for two scalars with correlation rho this is ``-1/2 log(1 - rho^2)``."""
    check_base(base)
    x, y = as_samples(x, "x"), as_samples(y, "y")
    check_paired([x, y], ["x", "y"])
    samples = [x, y]
    x, y = rescale(x, scale_exponent(x)), rescale(y, scale_exponent(y))  # I is scale-free
    joint = torch.cat([x, y], dim=1)
    mi = 0.5 * (
        _logdet(_covariance(x, "x"), "x")
        + _logdet(_covariance(y, "y"), "y")
        - _logdet(_covariance(joint, "(x, y)"), "(x, y)")
    )

    def halves(x: Tensor, y: Tensor) -> Tensor:
        return mutual_information(x, y, base)

    return with_se(nats_to(mi, base), return_se, halves, [samples], least=joint.shape[1] + 1)


def compare_samples(
    real: Any, fake: Any, base: float = math.e, return_se: bool | int = False
) -> dict[str, Tensor] | dict[str, Estimate]:
    """The Gaussian plug-in twin of :func:`gan_je.estimators.compare_samples`, same keys.

    ``entropy_real``/``entropy_fake`` are the Gaussian-fit entropies, ``entropy_mixture`` that
    of one Gaussian fitted to the pooled samples (moment matching the mixture M), and with
    weights pi = n / (n_real + n_fake): ``joint_entropy`` H(L) + pi_r H_r + pi_f H_f and
    ``jsd`` H_M - pi_r H_r - pi_f H_f. A Gaussian fit over-estimates the mixture's entropy
    (M is not Gaussian), so this "JSD" is a crude, fast proxy that can exceed log 2.
    With ``return_se=True`` every value is an :class:`.Estimate` (all from the same halves).
    """
    check_base(base)
    real, fake = as_samples(real, "real"), as_samples(fake, "fake")
    check_same_features(real, fake)
    n_real, n_fake = real.shape[0], fake.shape[0]
    pi_real = n_real / (n_real + n_fake)
    pi_fake = 1 - pi_real
    h_real, h_fake = entropy(real), entropy(fake)
    h_mixture = entropy(torch.cat([real, fake]))
    h_label = label_entropy(n_real, n_fake)
    nats = {
        "entropy_real": h_real,
        "entropy_fake": h_fake,
        "entropy_mixture": h_mixture,
        "joint_entropy": h_label + pi_real * h_real + pi_fake * h_fake,
        "jsd": h_mixture - pi_real * h_real - pi_fake * h_fake,
    }
    result = {key: nats_to(value, base) for key, value in nats.items()}

    def halves(real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        return compare_samples(real, fake, base)

    return with_se(result, return_se, halves, [[real], [fake]], least=real.shape[1] + 1)


def frechet_distance(p: Any, q: Any, return_se: bool | int = False) -> Tensor | Estimate:
    """Fréchet (2-Wasserstein) distance squared between Gaussian fits of two sample sets:
    ``|mu_p - mu_q|^2 + tr(S_p + S_q - 2 (S_p^1/2 S_q S_p^1/2)^1/2)`` (Dowson & Landau 1982;
    the formula behind FID, Heusel et al. 2017). Computed with symmetric eigendecompositions,
    so it stays real and non-negative. Both sets are first divided by one power of two
    ``2**e`` (exact) and the result multiplied by ``4**e``; a distance beyond the float64
    range (about 1.8e308) raises ``ValueError``. With ``return_se=True``, an
    :class:`.Estimate` with the error from random halves (:mod:`.resampling`)."""
    p, q = as_samples(p, "p"), as_samples(q, "q")
    check_same_features(p, q)
    samples = [[p], [q]]
    exponent = scale_exponent(p, q)
    p, q = rescale(p, exponent), rescale(q, exponent)
    cov_p, cov_q = _covariance(p, "p"), _covariance(q, "q")
    root_p = _sqrtm_psd(cov_p)
    cross = _sqrtm_psd(root_p @ cov_q @ root_p)
    mean_term = (p.mean(dim=0) - q.mean(dim=0)).square().sum()
    distance = (mean_term + torch.trace(cov_p + cov_q - 2 * cross)).clamp(min=0)
    distance = torch.ldexp(distance, torch.tensor(2 * exponent, dtype=torch.float64))
    if not torch.isfinite(distance):
        raise ValueError(
            "the Fréchet distance between p and q exceeds the float64 range (about 1.8e308); "
            "divide both p and q by a common scale c (the distance divides by c**2)"
        )
    return with_se(distance, return_se, frechet_distance, samples, least=p.shape[1] + 1)


def _sqrtm_psd(a: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix."""
    vals, vecs = torch.linalg.eigh(0.5 * (a + a.T))
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T
