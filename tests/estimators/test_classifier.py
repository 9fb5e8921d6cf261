"""The cross-fitted classifier estimate of the JSD against exact truths and its own rules.

Truths: quadrature for the scale cases (|x|^2 is chi-square), Monte Carlo of the exact log
densities otherwise. Tolerances come from 50 seeded draws of each case, measured while
writing them (default model and folds): d = 8, scale 0.5, N = 2,000: mean 0.467 against
0.470, sd 0.009, worst draw -4.5 %, so 15 % is about 7 sd; equal sets there: -0.005, sd 0.0014;
opposite correlations: additive -0.001 (sd 0.001), quadratic 0.311 (sd 0.006) against 0.313,
mlp with 300 samples and 2 folds 0.299 (sd 0.019, 30 draws);
unequal sizes: 0.250 (sd 0.010) against 0.255, equal sets -0.004 (sd 0.002). The draws
here are seeded, so the tests are deterministic.
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from gan_je.estimators.classifier import (
    classifier_jensen_shannon,
    cross_fit,
    fit_feature_map,
    label_information,
)


def gaussians(n: int, d: int, seed: int, scale: float = 1.0) -> tuple[torch.Tensor, ...]:
    """``n`` draws of N(0, I) and of N(0, scale^2 I) in ``d`` dimensions."""
    gen = torch.Generator().manual_seed(seed)
    p = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return p, scale * torch.randn(n, d, generator=gen, dtype=torch.float64)


def scale_jsd(d: int, s: float) -> float:
    """JSD(N(0, I) || N(0, s^2 I)) by quadrature over u = |x|^2 (chi-square, d dof)."""

    def integrand(u: float) -> float:
        a, b = stats.chi2.logpdf(u, d), stats.chi2.logpdf(u / s**2, d) - 2 * math.log(s)
        m = np.logaddexp(a, b) - math.log(2)
        return 0.5 * math.exp(a) * (a - m) + 0.5 * math.exp(b) * (b - m)

    return integrate.quad(integrand, 0, np.inf, limit=200)[0]


def correlated(n: int, rho: float, seed: int) -> torch.Tensor:
    """``n`` draws of a 2-D standard Gaussian with correlation ``rho``."""
    z = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.stack([z[:, 0], rho * z[:, 0] + math.sqrt(1 - rho**2) * z[:, 1]], dim=1)


def correlated_log_density(x: torch.Tensor, rho: float) -> torch.Tensor:
    quad = (x[:, 0] ** 2 - 2 * rho * x[:, 0] * x[:, 1] + x[:, 1] ** 2) / (1 - rho**2)
    return -0.5 * quad - math.log(2 * math.pi) - 0.5 * math.log(1 - rho**2)


def test_value_against_truth_where_knn_struggles():
    truth = scale_jsd(8, 0.5)  # 0.4703
    p, q = gaussians(2000, 8, seed=1, scale=0.5)
    assert classifier_jensen_shannon(p, q).item() == pytest.approx(truth, rel=0.15)


def test_near_zero_for_equal_distributions():
    p, q = gaussians(2000, 8, seed=2)
    assert abs(classifier_jensen_shannon(p, q).item()) < 0.02


def test_a_model_blind_to_the_difference_reads_low_never_high():
    # equal marginals, opposite correlations: only a product feature sees the difference
    rho, n = 0.8, 1500
    p, q = correlated(n, rho, seed=3), correlated(n, -rho, seed=4)
    big_p, big_q = correlated(200_000, rho, seed=5), correlated(200_000, -rho, seed=6)
    truth = 0.0
    for x, own, other in ((big_p, rho, -rho), (big_q, -rho, rho)):
        log_own, log_other = correlated_log_density(x, own), correlated_log_density(x, other)
        log_m = torch.logaddexp(log_own, log_other) - math.log(2)
        truth += 0.5 * (log_own - log_m).mean().item()
    additive = classifier_jensen_shannon(p, q, model="additive").item()
    quadratic, se = classifier_jensen_shannon(p, q, model="quadratic", return_se=True)
    assert abs(additive) < 0.02 < 0.2 < truth
    assert truth - 0.1 * truth < quadratic.item() < truth + 3 * se.item()
    _, chosen = cross_fit(p, q, folds=5, model="auto", seed=0)
    assert chosen == ["quadratic"] * 5


def unit_diagonal_pair(
    n: int, d: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` draws of N(0, I) and of N(0, C) in ``d`` dimensions, and C: a correlation matrix
    (unit diagonal) with a rotated spectrum, so every coordinate is N(0, 1) under both."""
    rotation, _ = torch.linalg.qr(
        torch.randn(d, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
    )
    a = (rotation * 4.0 ** torch.linspace(-1, 1, d, dtype=torch.float64)) @ rotation.T
    c = a / torch.outer(a.diagonal().sqrt(), a.diagonal().sqrt())
    gen = torch.Generator().manual_seed(seed)
    p = torch.randn(n, d, generator=gen, dtype=torch.float64)
    q = torch.randn(n, d, generator=gen, dtype=torch.float64) @ torch.linalg.cholesky(c).T
    return p, q, c


def test_auto_chooses_the_quadratic_model_above_22_dimensions():
    # d = 24: the old "auto" never tried "quadratic" there; equal marginals, so the additive
    # model sees nothing and only the quadratic (or radial) features can
    p, q, c = unit_diagonal_pair(1000, 24, seed=0)
    terms, chosen = cross_fit(p, q, folds=2, model="auto", seed=0)
    assert chosen == ["quadratic", "quadratic"]
    big_p, big_q, _ = unit_diagonal_pair(50_000, 24, seed=1)
    standard = torch.distributions.MultivariateNormal(torch.zeros(24, dtype=torch.float64), c)
    truth = 0.0
    for x, which in ((big_p, 0), (big_q, 1)):
        logs = torch.stack([-0.5 * x.square().sum(dim=1) - 12 * math.log(2 * math.pi)])
        logs = torch.cat([logs, standard.log_prob(x)[None]])
        truth += 0.5 * (logs[which] - torch.logsumexp(logs, dim=0) + math.log(2)).mean().item()
    # truth 0.506; 24 dimensions from 500 samples per class and fold read low: measured
    # 0.377 to 0.420 (sd 0.015) over seeds 0-5, so 0.7 * truth is 3 sd below their mean
    value = label_information(terms, 1000)[0].item()
    assert 0.7 * truth < value < truth
    assert classifier_jensen_shannon(p, q, folds=2, model="additive").item() < 0.02


def test_held_out_terms_depend_on_the_training_folds_only():
    # one wild outlier in a held-out fold changes no other term of that fold: every feature
    # map (standardiser, whitening, radial offsets) and weight comes from the training folds,
    # and features are computed row by row; the other folds train on it, so theirs change
    p, q = gaussians(100, 6, seed=16, scale=0.6)
    for model in ("radial", "auto"):
        before, _ = cross_fit(p, q, folds=5, model=model, seed=0)
        wild = p.clone()
        wild[0] *= 1_000.0
        after, _ = cross_fit(wild, q, folds=5, model=model, seed=0)
        unchanged = before == after
        assert not unchanged[0]
        assert int(unchanged.sum()) == 40 - 1  # the 39 other samples of its fold (of 200)


def test_the_quadratic_basis_whitens_and_diagonalises_both_class_covariances():
    p, q, _ = unit_diagonal_pair(500, 5, seed=17)
    z = torch.cat([p, 2.0 * q + 1.0])
    label = torch.cat([torch.ones(500), torch.zeros(500)]).double()
    basis = fit_feature_map("quadratic", z, label).basis
    covariances = [torch.cov(part.T) for part in (z[:500], z[500:])]
    pooled = 0.5 * covariances[0] + 0.5 * covariances[1]
    torch.testing.assert_close(basis.T @ pooled @ basis, torch.eye(5, dtype=torch.float64))
    for covariance in covariances:
        rotated = basis.T @ covariance @ basis
        torch.testing.assert_close(rotated, torch.diag(rotated.diagonal()))
    # samples confined to a plane: the whitened basis spans the plane only
    flat = torch.cat([z[:, :2], z[:, :2] @ torch.tensor([[1.0], [2.0]]).double()], dim=1)
    assert fit_feature_map("radial", flat, label).basis.shape == (3, 2)
    assert fit_feature_map("additive", z, label).basis.shape == (5, 0)


def student_t_radial_jsd(d: int, scale: float) -> float:
    """JSD(t_3(0, scale^2 I) || N(0, I)) by quadrature over u = |x|^2: scale^2 d F(d, 3)
    under the t, chi-square(d) under the Gaussian."""
    c = scale**2 * d

    def integrand(u: float) -> float:
        a, b = stats.f.logpdf(u / c, d, 3) - math.log(c), stats.chi2.logpdf(u, d)
        m = np.logaddexp(a, b) - math.log(2)
        return 0.5 * math.exp(a) * (a - m) + 0.5 * math.exp(b) * (b - m)

    return (
        integrate.quad(integrand, 0, 4 * d, limit=200)[0]
        + integrate.quad(integrand, 4 * d, np.inf, limit=200)[0]
    )


@pytest.mark.slow  # 3 to 10 s on a busy 2-core VM
def test_heavy_tails_are_caught_by_the_radial_features():
    # a Student-t (3 dof) scaled to covariance I against N(0, I) in d = 16: the old models
    # read 40 % low; measured auto 0.242 to 0.253 over seeds 0-2 (truth 0.2715), additive
    # 0.145 to 0.163, quadratic 0.136 to 0.154
    truth = student_t_radial_jsd(16, 1 / math.sqrt(3))
    gen = torch.Generator().manual_seed(0)
    gauss = torch.randn(2000, 16, generator=gen, dtype=torch.float64)
    chi_sq = torch.randn(2000, 3, generator=gen, dtype=torch.float64).square().sum(dim=1)
    t = gauss / (chi_sq / 3).sqrt()[:, None] / math.sqrt(3)
    q = torch.randn(2000, 16, generator=gen, dtype=torch.float64)
    _, chosen = cross_fit(t, q, folds=5, model="auto", seed=0)
    assert chosen == ["radial"] * 5
    value = classifier_jensen_shannon(t, q).item()
    assert truth == pytest.approx(0.2715, abs=0.002)
    assert 0.85 * truth < value < truth
    assert classifier_jensen_shannon(t, q, model="additive").item() < 0.7 * truth


@pytest.mark.slow  # 0.1 s alone; 11 s on a busy 2-core VM, where each small matmul of the
# MLP waits ~15 ms for torch's second thread
def test_mlp_learns_the_interaction():
    # the same pair, fewer samples: the hidden layer finds the product the additive model lacks
    p, q = correlated(300, 0.8, seed=14), correlated(300, -0.8, seed=15)
    assert classifier_jensen_shannon(p, q, model="mlp", folds=2).item() > 0.2  # truth 0.313


def test_unequal_sizes_give_the_weighted_jsd():
    # prior (1/4, 3/4): I(S; L) = H(pi) + E[log P(L | S)], as the k-NN estimate defines it
    p, _ = gaussians(600, 4, seed=7)
    _, q = gaussians(1800, 4, seed=8, scale=0.5)
    big_p, big_q = gaussians(100_000, 4, seed=9, scale=0.5)
    pi = torch.tensor([0.25, 0.75], dtype=torch.float64)

    def log_posterior(x: torch.Tensor, which: int) -> torch.Tensor:
        sq = x.square().sum(dim=1)
        logs = torch.stack([-0.5 * sq, -0.5 * sq / 0.25 - 4 * math.log(0.5)]) + pi.log()[:, None]
        return logs[which] - torch.logsumexp(logs, dim=0)

    h_pi = -(pi * pi.log()).sum().item()
    truth = h_pi + 0.25 * log_posterior(big_p, 0).mean() + 0.75 * log_posterior(big_q, 1).mean()
    assert classifier_jensen_shannon(p, q).item() == pytest.approx(truth.item(), rel=0.15)
    # equal distributions with unequal sizes: 0, not H(pi)
    same = gaussians(1800, 4, seed=10)[0]
    assert abs(classifier_jensen_shannon(p, same).item()) < 0.02


def test_standard_error_shape_and_value():
    p, q = gaussians(500, 3, seed=11, scale=0.7)
    value, se = classifier_jensen_shannon(p, q, return_se=True)
    assert value.shape == se.shape == ()
    assert value.dtype == se.dtype == torch.float64
    assert 0 < se.item() < 0.05
    assert value.item() == classifier_jensen_shannon(p, q).item()


def test_deterministic_for_a_seed_and_inputs_of_any_form():
    p, q = gaussians(400, 6, seed=12, scale=0.6)
    first = classifier_jensen_shannon(p, q, seed=3)
    assert classifier_jensen_shannon(p, q, seed=3).item() == first.item()
    assert classifier_jensen_shannon(p, q, seed=4).item() != first.item()
    images = classifier_jensen_shannon(p.numpy().reshape(400, 2, 3), q.reshape(400, 3, 2), seed=3)
    assert images.item() == first.item()
    # a power-of-two scale beyond float32 range changes nothing (rescaled exactly)
    huge = classifier_jensen_shannon(p * 2.0**900, q * 2.0**900, seed=3)
    assert huge.item() == first.item()


def test_base_two_gives_bits():
    p, q = gaussians(400, 4, seed=13, scale=0.6)
    nats, se_nats = classifier_jensen_shannon(p, q, return_se=True)
    bits, se_bits = classifier_jensen_shannon(p, q, base=2, return_se=True)
    assert bits.item() == pytest.approx(nats.item() / math.log(2))
    assert se_bits.item() == pytest.approx(se_nats.item() / math.log(2))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"folds": 1}, "folds"),
        ({"folds": 2.0}, "folds"),
        ({"folds": True}, "folds"),
        ({"model": "svm"}, "model"),
        ({"seed": -1}, "seed"),
        ({"seed": 0.5}, "seed"),
        ({"base": 1}, "base"),
        ({"base": -2.0}, "base"),
        ({"return_se": "yes"}, "return_se"),
        ({"p": [[0.0, float("nan")]] * 20}, "p"),
        ({"q": torch.zeros(20, 3)}, "p and q"),
        ({"q": torch.zeros(7, 2)}, "q"),
        ({"p": "abc"}, "p"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, name):
    args = {"p": torch.randn(20, 2), "q": torch.randn(20, 2), **kwargs}
    with pytest.raises(ValueError, match=name):
        classifier_jensen_shannon(**args)


def test_jensen_shannon_method_classifier_is_the_classifier_estimate():
    from gan_je.estimators import classifier_jensen_shannon, jensen_shannon

    generator = torch.Generator().manual_seed(3)
    p = torch.randn(600, 4, generator=generator, dtype=torch.float64)
    q = 0.6 * torch.randn(600, 4, generator=generator, dtype=torch.float64)
    direct = classifier_jensen_shannon(p, q, return_se=True)
    via = jensen_shannon(p, q, method="classifier", return_se=True)
    assert [float(v) for v in via] == [float(v) for v in direct]
    with pytest.raises(ValueError, match="method must be"):
        jensen_shannon(p, q, method="forest")


def test_the_classifier_fits_inside_inference_mode():
    # a Lightning validation loop runs the metric under torch.inference_mode()
    from gan_je.estimators import classifier_jensen_shannon

    generator = torch.Generator().manual_seed(4)
    p = torch.randn(300, 3, generator=generator, dtype=torch.float64)
    q = 0.5 * torch.randn(300, 3, generator=generator, dtype=torch.float64)
    expected = float(classifier_jensen_shannon(p, q))
    with torch.inference_mode():
        assert float(classifier_jensen_shannon(p.clone(), q.clone())) == expected
    with torch.no_grad():
        assert float(classifier_jensen_shannon(p, q)) == expected
