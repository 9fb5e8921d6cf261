"""The weighted Kozachenko-Leonenko estimator and the subsample extrapolation.

Tolerances come from the spread over seeds measured while writing them. Weighted estimate
(default k = 2d) of the correlated Gaussians at N = 2,000, 20 seeds: error -0.015 / -0.100
nats, sd 0.052 / 0.055, for d = 4 / 6; so 0.25 is the bias plus 3 sd. Extrapolation of the
standard Gaussian in d = 32 at N = 4,000, 10 seeds: error +0.33 nats, sd 0.48, so 1.8; plain
KL (k = 3) is 2.59 +- 0.08 nats off there, outside that tolerance. Every draw is seeded.
"""

import math

import numpy as np
import pytest
import torch

from gan_je.estimators import entropy
from gan_je.estimators.weighted import (
    _power_law_limit,
    default_k,
    extrapolated_entropy,
    kl_entropies,
    kl_weights,
    support,
    weighted_entropy,
)
from tests.samples import gaussian_entropy, gaussian_samples, random_covariance


def moment_rows(d, orders, m):
    """``Gamma(j + 2i/d) / Gamma(j)`` for i = 0..m, straight from math.gamma."""
    return np.array(
        [[math.gamma(j + 2 * i / d) / math.gamma(j) for j in orders] for i in range(m + 1)]
    )


@pytest.mark.parametrize(("d", "k"), [(4, 8), (5, 5), (7, 14), (8, 16), (8, 5), (11, 22), (12, 24)])
def test_weights_meet_their_conditions(d, k):
    orders, w = kl_weights(d, k)
    assert w.dtype == torch.float64 and len(orders) == len(w)
    rows = moment_rows(d, orders, d // 4)
    residual = rows @ w.numpy() - np.eye(d // 4 + 1)[0]  # sum 1, each moment 0
    assert np.abs(residual).max() < 1e-9 * max(1.0, w.abs().sum().item())
    # the minimum-norm solution lies in the row space of the conditions
    projection = rows.T @ np.linalg.lstsq(rows.T, w.numpy(), rcond=None)[0]
    np.testing.assert_allclose(projection, w.numpy(), atol=1e-9 * w.abs().max().item())


def test_support_follows_the_paper():
    assert support(8, 16) == [2, 4, 6, 8, 10, 12, 14, 16]  # floor(i k / d), i = 1..d
    assert support(8, 4) == [1, 2, 3, 4]  # zeros and repeats dropped
    assert support(3, 7) == [7]  # d <= 3: no condition, plain KL with k
    assert support(8, 16, moments=0) == [16]
    assert kl_weights(2, 5) == ([5], pytest.approx(torch.ones(1, dtype=torch.float64)))
    assert [default_k(d) for d in (1, 3, 4, 32)] == [3, 3, 8, 64]


@pytest.mark.parametrize("d", [1, 2, 3])
def test_is_plain_kl_in_low_dimension(d):
    x = gaussian_samples(500, random_covariance(d, seed=d), seed=d)
    assert weighted_entropy(x).item() == entropy(x).item()  # default k = 3 both
    assert weighted_entropy(x, k=7, base=2).item() == entropy(x, k=7, base=2).item()


def test_no_moments_is_plain_kl():
    x = gaussian_samples(500, torch.eye(6, dtype=torch.float64), seed=3)
    assert weighted_entropy(x, k=5, moments=0).item() == entropy(x, k=5).item()


def test_is_the_weighted_sum_of_per_order_estimates():
    x = gaussian_samples(600, random_covariance(5, seed=1), seed=2)
    orders, w = kl_weights(5, 10)
    per_order = kl_entropies(x, orders)
    for j, h in zip(orders, per_order.tolist(), strict=True):
        assert h == pytest.approx(entropy(x, k=j).item(), rel=1e-14)
    assert weighted_entropy(x).item() == pytest.approx((w @ per_order).item(), rel=1e-14)


@pytest.mark.parametrize("d", [4, 6])
def test_weighted_entropy_of_correlated_gaussian(d):
    cov = random_covariance(d, seed=d)
    x = gaussian_samples(2000, cov, seed=20 + d)
    assert weighted_entropy(x).item() == pytest.approx(gaussian_entropy(cov), abs=0.25)


def test_weighted_entropy_follows_scale():
    x = gaussian_samples(400, torch.eye(4, dtype=torch.float64), seed=5)
    shift = 4 * math.log(2.0**300)  # beyond the rescaling threshold, exactly undone
    big = weighted_entropy(x * 2.0**300).item()
    assert big == pytest.approx(weighted_entropy(x).item() + shift, rel=1e-12)


def test_power_law_limit_is_exact_on_a_power_law():
    gamma = np.geomspace(2 / 16, 4.0, 512)[200]  # a grid point
    means = 7.0 + 0.9 * 2.0 ** (gamma * np.arange(5))
    assert _power_law_limit(means, d=16) == pytest.approx(7.0, abs=1e-9)
    assert _power_law_limit(np.full(5, 3.0), d=4) == pytest.approx(3.0, abs=1e-12)


def test_extrapolation_removes_most_of_the_high_dimensional_bias():
    d = 32
    cov = torch.eye(d, dtype=torch.float64)
    x = gaussian_samples(4000, cov, seed=40)
    truth = gaussian_entropy(cov)
    h = extrapolated_entropy(x).item()
    assert h == pytest.approx(truth, abs=1.8)
    assert entropy(x).item() - truth > 1.8  # what it corrects


def test_extrapolation_is_deterministic_and_in_bits():
    x = gaussian_samples(400, torch.eye(3, dtype=torch.float64), seed=41)
    h = extrapolated_entropy(x, levels=4).item()
    assert extrapolated_entropy(x, levels=4).item() == h  # seeded shuffle
    assert extrapolated_entropy(x, levels=4, base=2).item() == pytest.approx(h / math.log(2))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: weighted_entropy(x, k=0), "k must"),
        (lambda x: weighted_entropy(x, moments=-1), "moments must"),
        (lambda x: weighted_entropy(x, moments=1.5), "moments must"),
        (lambda x: weighted_entropy(x, k=2), "k=2 gives 2 neighbour orders"),
        (lambda x: weighted_entropy(x[:16]), "x has 16 samples but k=16"),
        (lambda x: weighted_entropy(x, base=1), "base must"),
        (lambda x: weighted_entropy(x, backend="nope"), "backend must"),
        (lambda x: weighted_entropy(torch.full((50, 8), math.nan)), "x holds"),
        (lambda x: kl_entropies(x, []), "orders must"),
        (lambda x: extrapolated_entropy(x, levels=2), "levels must"),
        (lambda x: extrapolated_entropy(x, levels=True), "levels must"),
        (lambda x: extrapolated_entropy(x[:60], levels=5), "smallest part"),
        (lambda x: extrapolated_entropy(x, k=-1), "k must"),
    ],
)
def test_errors_name_the_argument(call, match):
    x = gaussian_samples(100, torch.eye(8, dtype=torch.float64), seed=0)
    with pytest.raises(ValueError, match=match):
        call(x)
