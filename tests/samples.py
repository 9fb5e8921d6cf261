"""Seeded samples with known entropies, shared by the tests."""

import math

import pytest
import torch

_skip_without_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def requires_cuda(test):
    """Mark ``test`` as a CUDA test: ``pytest -m cuda`` selects it, and it is skipped where
    no CUDA device is present."""
    return pytest.mark.cuda(_skip_without_cuda(test))


def gaussian_samples(n: int, cov: torch.Tensor, seed: int, mean: float = 0.0) -> torch.Tensor:
    """``n`` draws from N(mean, cov), seeded, float64."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, cov.shape[0], generator=gen, dtype=torch.float64)
    return mean + z @ torch.linalg.cholesky(cov).T


def gaussian_entropy(cov: torch.Tensor) -> float:
    """Closed form ``1/2 log det(2 pi e Sigma)``."""
    d = cov.shape[0]
    return 0.5 * (d * math.log(2 * math.pi * math.e) + torch.logdet(cov).item())


def random_covariance(d: int, seed: int) -> torch.Tensor:
    """A well-conditioned covariance with unequal variances and correlations."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=gen, dtype=torch.float64)
    return a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64)


def ring(n: int, seed: int, shift: float = 0.0, sigma: float = 0.01) -> torch.Tensor:
    """The 8-Gaussian ring (unit circle, sigma 0.01), optionally shifted."""
    gen = torch.Generator().manual_seed(seed)
    mode = torch.randint(0, 8, (n,), generator=gen)
    angle = mode.double() * 2 * math.pi / 8
    centres = torch.stack([angle.cos(), angle.sin()], dim=1)
    return centres + sigma * torch.randn(n, 2, generator=gen, dtype=torch.float64) + shift
