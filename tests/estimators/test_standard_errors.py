"""``return_se``: every estimator's standard error, its formula, and a calibration check."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from gan_je.estimators import (
    compare_samples,
    conditional_entropy,
    density_coverage,
    entropy,
    jensen_shannon,
    joint_entropy,
    mutual_information,
    precision_recall,
    sliced_jensen_shannon,
)


def normal(n, d, seed, scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, d, generator=generator, dtype=torch.float64)


X, Y = normal(400, 2, 0), normal(400, 2, 1, scale=0.6)


@pytest.mark.parametrize(
    "estimate",
    [
        lambda **kw: entropy(X, **kw),
        lambda **kw: joint_entropy(X[:, :1], X[:, 1:], **kw),
        lambda **kw: conditional_entropy(X[:, :1], X[:, 1:] + Y[:, :1], **kw),
        lambda **kw: mutual_information(X[:, :1], X[:, :1] + Y[:, :1], **kw),
        lambda **kw: jensen_shannon(X, Y, **kw),
    ],
    ids=["entropy", "joint", "conditional", "mutual_information", "jsd"],
)
def test_return_se_gives_the_same_value_and_a_positive_error(estimate):
    value, se = estimate(return_se=True)
    assert float(value) == float(estimate())
    assert 0 < float(se) < 1
    bits, se_bits = estimate(return_se=True, base=2)
    assert float(bits) == pytest.approx(float(value) / math.log(2))
    assert float(se_bits) == pytest.approx(float(se) / math.log(2))


def test_the_entropy_error_is_the_spread_of_the_log_distances():
    # computed another way: scipy's k-th neighbour distances (the jitter moves them 1e-10)
    dist, _ = cKDTree(X.numpy()).query(X.numpy(), k=4)
    terms = 2 * np.log(dist[:, 3])
    expected = terms.std(ddof=1) / math.sqrt(len(terms))
    assert float(entropy(X, return_se=True)[1]) == pytest.approx(expected, rel=1e-6)


def test_compare_samples_reports_an_error_for_every_key():
    result = compare_samples(X, Y, return_se=True)
    plain = compare_samples(X, Y)
    assert set(result) == set(plain) | {f"{key}_se" for key in plain}
    assert all(float(result[key]) == float(plain[key]) for key in plain)
    assert float(result["entropy_real_se"]) == pytest.approx(float(entropy(X, return_se=True)[1]))
    assert float(result["jsd_se"]) == pytest.approx(float(jensen_shannon(X, Y, return_se=True)[1]))
    # H(S, L) = log 2 + (H_p + H_q) / 2: independent halves add in quadrature
    expected = 0.5 * math.hypot(float(result["entropy_real_se"]), float(result["entropy_fake_se"]))
    assert float(result["joint_entropy_se"]) == pytest.approx(expected)


def test_sliced_error_is_the_mean_of_the_projections():
    result, se = sliced_jensen_shannon(X, Y, n_projections=3, return_se=True)
    assert torch.equal(
        result.per_projection, sliced_jensen_shannon(X, Y, n_projections=3).per_projection
    )
    assert 0 < float(se) < 1


def test_quality_errors_follow_the_binomial_and_the_jackknife():
    (precision, recall), (se_p, se_r) = precision_recall(X, Y, return_se=True)
    assert (float(precision), float(recall)) == tuple(float(v) for v in precision_recall(X, Y))
    binomial = math.sqrt(float(precision) * (1 - float(precision)) / len(Y))
    assert float(se_p) >= binomial  # the real balls' jackknife adds to it
    assert 0 < float(se_r) < 0.1
    (density, coverage), (se_d, se_c) = density_coverage(X, Y, return_se=True)
    assert (float(density), float(coverage)) == tuple(float(v) for v in density_coverage(X, Y))
    assert 0 < float(se_d) < 1 and 0 < float(se_c) < 0.1


def test_a_sole_ball_is_what_the_jackknife_sees():
    # one real ball holds every fake alone: leaving that real sample out loses them all
    real = torch.tensor([[0.0], [1.0], [10.0], [11.0]])  # every k = 1 radius is 1
    fake = torch.tensor([[-0.5], [-0.6], [-0.7], [100.0]])  # three in the ball of 0 only
    (precision, _), (se_p, _) = precision_recall(real, fake, k=1, return_se=True)
    assert float(precision) == 0.75
    binomial = 0.75 * 0.25 / 4
    lost = np.array([0.75, 0, 0, 0])  # share lost when each real sample is left out
    jackknife = 3 / 4 * ((lost - lost.mean()) ** 2).sum()
    assert float(se_p) == pytest.approx(math.sqrt(binomial + jackknife))


def test_errors_are_calibrated_on_a_small_case():
    # 60 independent draws of N = 500 in 2-D: the mean reported error is close to the spread
    values, errors = [], []
    for seed in range(60):
        value, se = entropy(normal(500, 2, 100 + seed), return_se=True)
        values.append(float(value))
        errors.append(float(se))
    ratio = np.mean(errors) / np.std(values, ddof=1)
    assert 0.7 < ratio < 1.5, ratio
