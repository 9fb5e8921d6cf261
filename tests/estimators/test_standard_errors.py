"""``return_se``: every estimator's standard error, its formula, and a calibration check."""

import math

import numpy as np
import pytest
import torch

from gan_je.estimators import (
    Estimate,
    classifier_jensen_shannon,
    compare_samples,
    conditional_entropy,
    data_copying,
    density_coverage,
    entropy,
    extrapolated_entropy,
    flatten_estimates,
    gaussian,
    jensen_shannon,
    joint_entropy,
    mutual_information,
    precision_recall,
    resampling,
    sliced_jensen_shannon,
    weighted_entropy,
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
        lambda **kw: weighted_entropy(X, **kw),
        lambda **kw: extrapolated_entropy(X, levels=3, **kw),
        lambda **kw: gaussian.entropy(X, **kw),
        lambda **kw: gaussian.mutual_information(X[:, :1], X[:, :1] + Y[:, :1], **kw),
    ],
    ids=[
        "entropy",
        "joint",
        "conditional",
        "mutual_information",
        "jsd",
        "weighted",
        "extrapolated",
        "gaussian_entropy",
        "gaussian_mutual_information",
    ],
)
def test_return_se_gives_the_same_value_and_a_positive_error(estimate):
    result = estimate(return_se=True)
    assert isinstance(result, Estimate)
    value, se = result
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


def test_the_error_is_half_the_spread_for_every_estimator_alike():
    # the same halvings and rule behind estimators of different families: computed by hand
    generator = torch.Generator().manual_seed(resampling.HALVING_SEED)
    order = torch.randperm(len(X), generator=generator)
    first, second = order[: len(X) // 2], order[len(X) // 2 :]
    for estimate in (gaussian.entropy, weighted_entropy):
        spread = abs(float(estimate(X[first])) - float(estimate(X[second])))
        expected = math.sqrt(math.pi / 2) * spread / 2
        assert float(estimate(X, return_se=1).se) == pytest.approx(expected)


def test_compare_samples_reports_an_error_for_every_key():
    for compare in (compare_samples, gaussian.compare_samples):
        result = compare(X, Y, return_se=True)
        plain = compare(X, Y)
        assert list(result) == list(plain)
        assert all(isinstance(found, Estimate) for found in result.values())
        assert all(float(result[key].value) == float(plain[key]) for key in plain)
        assert all(0 < float(result[key].se) < 1 for key in plain)
    # the same halves as jensen_shannon's own
    jsd_se = float(compare_samples(X, Y, return_se=True)["jsd"].se)
    assert jsd_se == pytest.approx(float(jensen_shannon(X, Y, return_se=True).se))


def test_flatten_estimates_puts_each_error_beside_its_value():
    one, two = torch.tensor(1.0), torch.tensor(2.0)
    flat = flatten_estimates({"a": Estimate(one, two), "b": two})
    assert flat == {"a": one, "a_se": two, "b": two}


@pytest.mark.slow
def test_sliced_error():
    result = sliced_jensen_shannon(X, Y, n_projections=3, return_se=True)
    plain = sliced_jensen_shannon(X, Y, n_projections=3)
    assert all(isinstance(found, Estimate) for found in result)
    assert torch.equal(result.per_projection.value, plain.per_projection)
    assert result.per_projection.se.shape == (3,)
    assert float(result.max.value) == float(plain.max)
    assert 0 < float(result.mean.se) < 1
    # the mean's error comes from the same halves as each projection's: a mean of 3 values
    # that vary together can be no noisier than the noisiest one
    assert float(result.mean.se) <= float(result.per_projection.se.max()) + 1e-12


def test_quality_errors_come_with_unchanged_values():
    (precision, se_p), (recall, se_r) = precision_recall(X, Y, return_se=True)
    assert (float(precision), float(recall)) == tuple(float(v) for v in precision_recall(X, Y))
    assert 0 < float(se_p) < 0.1 and 0 < float(se_r) < 0.1
    (density, se_d), (coverage, se_c) = density_coverage(X, Y, return_se=True)
    assert (float(density), float(coverage)) == tuple(float(v) for v in density_coverage(X, Y))
    assert 0 < float(se_d) < 1 and 0 < float(se_c) < 0.1


def test_frechet_distance_error():
    value, se = gaussian.frechet_distance(X, Y, return_se=True)
    assert float(value) == float(gaussian.frechet_distance(X, Y))
    assert 0 < float(se) < float(value)
    with pytest.raises(ValueError, match="return_se needs at least 6 samples per set"):
        gaussian.frechet_distance(X[:5], Y[:5], return_se=True)


def test_classifier_takes_halvings_like_every_estimator():
    # its error comes from the held-out terms: the number of halvings does not change it
    plain = classifier_jensen_shannon(X, Y, model="additive")
    one = classifier_jensen_shannon(X, Y, model="additive", return_se=1)
    three = classifier_jensen_shannon(X, Y, model="additive", return_se=3)
    assert isinstance(one, Estimate) and float(one.value) == float(plain)
    assert torch.equal(one.se, three.se) and float(one.se) > 0
    assert torch.equal(classifier_jensen_shannon(X, Y, model="additive", return_se=0), plain)
    with pytest.raises(ValueError, match="number of random halvings"):
        classifier_jensen_shannon(X, Y, return_se=-2)


def test_data_copying_refuses_an_error_bar():
    train, generated, held_out = X[:200], Y[:100], X[200:300]
    with pytest.raises(ValueError, match="data_copying has no standard error"):
        data_copying(train, generated, held_out, cells=2, return_se=True)
    plain = data_copying(train, generated, held_out, cells=2)
    assert float(data_copying(train, generated, held_out, cells=2, return_se=0).z) == float(plain.z)


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
