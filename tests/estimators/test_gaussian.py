"""Gaussian plug-in estimators against their closed forms."""

import math

import pytest
import torch

from gan_je.estimators import gaussian
from tests.samples import gaussian_entropy, gaussian_samples, random_covariance


def test_entropy_of_gaussian():
    cov = random_covariance(5, seed=0)
    x = gaussian_samples(20000, cov, seed=1)
    # plug-in error ~ d^2 / (2N) plus sampling noise ~ sqrt(d / 2N): about 0.02 here
    assert gaussian.entropy(x).item() == pytest.approx(gaussian_entropy(cov), abs=0.05)
    assert gaussian.entropy(x, base=2).item() == pytest.approx(
        gaussian.entropy(x).item() / math.log(2)
    )


def test_mutual_information_of_correlated_scalars():
    rho = 0.7
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    xy = gaussian_samples(20000, cov, seed=2)
    truth = -0.5 * math.log(1 - rho**2)
    assert gaussian.mutual_information(xy[:, :1], xy[:, 1:]).item() == pytest.approx(
        truth, abs=0.02
    )


def test_frechet_distance_closed_form():
    # N(0, I) vs N(m, s^2 I) in d dims: |m|^2 + d (1 - s)^2
    d, s = 4, 2.0
    p = gaussian_samples(40000, torch.eye(d, dtype=torch.float64), seed=3)
    q = gaussian_samples(40000, s**2 * torch.eye(d, dtype=torch.float64), seed=4, mean=1.0)
    assert gaussian.frechet_distance(p, q).item() == pytest.approx(d + d * (1 - s) ** 2, rel=0.03)
    assert gaussian.frechet_distance(p, p).item() == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_is_symmetric():
    p = gaussian_samples(3000, random_covariance(3, 5), seed=6)
    q = gaussian_samples(3000, random_covariance(3, 7), seed=8)
    assert gaussian.frechet_distance(p, q).item() == pytest.approx(
        gaussian.frechet_distance(q, p).item(), rel=1e-6
    )


@pytest.mark.parametrize("scale", [1e-200, 1e-170, 1e150, 1e200])
def test_any_finite_scale_gives_the_scaled_value(scale):
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(400, 3, generator=generator, dtype=torch.float64)
    y = 1.5 * torch.randn(400, 3, generator=generator, dtype=torch.float64) + 0.2
    h = gaussian.entropy(x * scale)
    assert float(h) == pytest.approx(float(gaussian.entropy(x)) + 3 * math.log(scale), abs=1e-9)
    mi = gaussian.mutual_information(x * scale, x + y)
    assert float(mi) == pytest.approx(float(gaussian.mutual_information(x, x + y)), abs=1e-12)


@pytest.mark.parametrize("exponent", [-500, -300, 300, 500])
def test_frechet_distance_scales_exactly_by_the_square(exponent):
    # beyond 2**±256 the covariances alone would under- or overflow; 4**exponent stays in range
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(400, 3, generator=generator, dtype=torch.float64)
    y = 1.5 * torch.randn(400, 3, generator=generator, dtype=torch.float64) + 0.2
    scaled = gaussian.frechet_distance(x * 2.0**exponent, y * 2.0**exponent)
    reference = gaussian.frechet_distance(x, y)
    assert float(scaled) == float(torch.ldexp(reference, torch.tensor(2 * exponent)))


def test_a_frechet_distance_beyond_float64_is_refused():
    x = torch.randn(100, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with pytest.raises(ValueError, match="exceeds the float64 range"):
        gaussian.frechet_distance(x, x * 1e200)
    assert float(gaussian.frechet_distance(x * 1e150, x * 1.01e150)) > 0  # 1e296: in range
