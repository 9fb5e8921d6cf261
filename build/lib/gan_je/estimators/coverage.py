"""Mode coverage of samples from a Gaussian mixture with known centres (the 2-D benchmarks).

The measures of the mode-collapse literature for the 8-Gaussian ring and the 25-Gaussian
grid. VEEGAN (Srivastava et al. 2017, section 5) counts "a sample as high quality, if it is
within three standard deviations of the nearest mode" and reports "the number of mixture
components whose mean is nearest to at least one high quality sample", from 2,500 generated
samples; PacGAN (Lin et al. 2018) uses the same thresholds in its code. So here: every
generated sample is assigned to its nearest mode centre; it is *high quality* within
``n_sigma = 3`` standard deviations of it; a mode is *covered* with at least
``min_count = 1`` high-quality sample; and ``mode_kl`` is KL(p || uniform) between the
histogram p of the samples over their nearest modes and the uniform histogram
(``log M - H(p)``: 0 when every mode gets the same share, ``log M`` when one mode gets all).
Evaluate on 2,500 samples (the ring and grid validation sets) to compare with the papers.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._inputs import as_samples, check_same_features


class ModeCoverage(NamedTuple):
    """Result of :func:`mode_coverage`."""

    modes_covered: Tensor  # number of modes with >= min_count high-quality samples
    high_quality: Tensor  # fraction of samples within n_sigma std of their nearest mode
    mode_kl: Tensor  # KL(histogram over nearest modes || uniform), nats
    high_quality_counts: Tensor  # (M,) high-quality samples per mode


def _check_geometry(centers: Any, std: float, n_sigma: float) -> Tensor:
    centers = as_samples(centers, "centers")
    if not (isinstance(std, int | float) and std > 0 and math.isfinite(std)):
        raise ValueError(f"std must be a positive number, got {std!r}")
    if not (isinstance(n_sigma, int | float) and n_sigma > 0):
        raise ValueError(f"n_sigma must be a positive number, got {n_sigma!r}")
    return centers


def nearest_modes(
    samples: Any, centers: Any, std: float, n_sigma: float = 3.0
) -> tuple[Tensor, Tensor]:
    """``(mode index (N,), high quality (N,) bool)``: each sample's nearest centre and
    whether it lies within ``n_sigma * std`` of it (Euclidean distance)."""
    centers = _check_geometry(centers, std, n_sigma)
    samples = as_samples(samples, "samples")
    check_same_features(samples, centers)
    distance, index = torch.cdist(samples, centers.to(samples.device)).min(dim=1)
    return index, distance <= n_sigma * std


def coverage_from_counts(
    high_quality_counts: Tensor, counts: Tensor, min_count: int = 1
) -> ModeCoverage:
    """:class:`ModeCoverage` from per-mode counts of high-quality and of all samples."""
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a whole number >= 1, got {min_count!r}")
    total = counts.sum()
    if total <= 0:
        raise ValueError("mode coverage needs at least one sample")
    share = counts.double() / total
    nonzero = share[share > 0]
    mode_kl = math.log(counts.shape[0]) + (nonzero * nonzero.log()).sum()
    return ModeCoverage(
        modes_covered=(high_quality_counts >= min_count).sum(),
        high_quality=high_quality_counts.sum().double() / total,
        mode_kl=mode_kl,
        high_quality_counts=high_quality_counts,
    )


def mode_coverage(
    samples: Any, centers: Any, std: float, n_sigma: float = 3.0, min_count: int = 1
) -> ModeCoverage:
    """Modes covered, high-quality fraction and mode KL of ``samples`` (N, d) against a
    mixture with ``centers`` (M, d) and per-coordinate standard deviation ``std``."""
    index, high_quality = nearest_modes(samples, centers, std, n_sigma)
    m = as_samples(centers, "centers").shape[0]
    counts = torch.bincount(index, minlength=m)
    high_quality_counts = torch.bincount(index[high_quality], minlength=m)
    return coverage_from_counts(high_quality_counts, counts, min_count)
