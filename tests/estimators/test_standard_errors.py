"""``return_se``: every estimator's standard error, its formula, and a calibration check."""

import math

import numpy as np
import pytest
import torch

from gan_je.estimators import (
    compare_samples,
    conditional_entropy,
    density_coverage,
    entropy,
    jensen_shannon,
    joint_entropy,
    mutual_information,
    precision_recall,
    resampling,
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


def test_the_error_is_half_the_spread_between_random_halves():
    # computed another way: the same seeded halvings, estimated on each half by hand
    generator = torch.Generator().manual_seed(resampling.HALVING_SEED)
    squares = []
    for _ in range(resampling.HALVINGS):
        order = torch.randperm(len(X), generator=generator)
        first, second = order[: len(X) // 2], order[len(X) // 2 :]
        squares.append((float(entropy(X[first])) - float(entropy(X[second]))) ** 2 / 4)
    # with R = 2 halvings, E[sqrt(chi2_2 / 2)] = sqrt(pi) / 2: the reported error is unbiased
    assert resampling.HALVINGS == 2
    expected = 2 / math.sqrt(math.pi) * math.sqrt(np.mean(squares))
    assert float(entropy(X, return_se=True)[1]) == pytest.approx(expected)
    # one halving: E|N(0, 1)| = sqrt(2 / pi)
    one = math.sqrt(math.pi / 2) * math.sqrt(squares[0])
    assert float(entropy(X, return_se=1)[1]) == pytest.approx(one)


def test_too_few_samples_for_two_halves_are_refused():
    with pytest.raises(ValueError, match="return_se needs at least 8 samples per set"):
        entropy(X[:7], return_se=True)
    with pytest.raises(ValueError, match="number of random halvings"):
        entropy(X, return_se=-1)
    assert math.isfinite(float(entropy(X[:7])))


def test_compare_samples_reports_an_error_for_every_key():
    result = compare_samples(X, Y, return_se=True)
    plain = compare_samples(X, Y)
    assert set(result) == set(plain) | {f"{key}_se" for key in plain}
    assert all(float(result[key]) == float(plain[key]) for key in plain)
    # the same halves as jensen_shannon's own
    assert float(result["jsd_se"]) == pytest.approx(float(jensen_shannon(X, Y, return_se=True)[1]))
    assert all(0 < float(result[f"{key}_se"]) < 1 for key in plain)


@pytest.mark.slow
def test_sliced_error():
    result, se = sliced_jensen_shannon(X, Y, n_projections=3, return_se=True)
    assert torch.equal(
        result.per_projection, sliced_jensen_shannon(X, Y, n_projections=3).per_projection
    )
    assert 0 < float(se) < 1


def test_quality_errors_come_with_unchanged_values():
    (precision, recall), (se_p, se_r) = precision_recall(X, Y, return_se=True)
    assert (float(precision), float(recall)) == tuple(float(v) for v in precision_recall(X, Y))
    assert 0 < float(se_p) < 0.1 and 0 < float(se_r) < 0.1
    (density, coverage), (se_d, se_c) = density_coverage(X, Y, return_se=True)
    assert (float(density), float(coverage)) == tuple(float(v) for v in density_coverage(X, Y))
    assert 0 < float(se_d) < 1 and 0 < float(se_c) < 0.1


@pytest.mark.slow
def test_errors_are_calibrated_on_a_small_case():
    # 60 independent draws of N = 500 in 2-D: the mean reported error is close to the spread
    values, errors = [], []
    for seed in range(60):
        value, se = entropy(normal(500, 2, 100 + seed), return_se=True)
        values.append(float(value))
        errors.append(float(se))
    ratio = np.mean(errors) / np.std(values, ddof=1)
    assert 0.7 < ratio < 1.5, ratio
