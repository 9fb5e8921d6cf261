"""k-NN estimators against closed forms, identities, and each other.

Tolerances come from the spread over 30 seeds at the tests' sizes (N = 4,000, k = 3),
measured while writing them: Kozachenko-Leonenko entropy of these Gaussians, bias -0.001 /
-0.012 / -0.050 and sd 0.015 / 0.015 / 0.023 nats for d = 1 / 2 / 4, so 0.12 is the bias
plus 3 sd; KSG, bias <= 0.007 and sd <= 0.018 for rho = 0.5, 0.9 (tolerance 0.05); Ross's
JSD of the 1-D pairs, bias <= 0.002 and sd <= 0.008 (tolerance 0.03). Every draw is seeded,
so the tests are deterministic.
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from gan_je.estimators import (
    conditional_entropy,
    differentiable_entropy,
    entropy,
    jensen_shannon,
    joint_entropy,
    mutual_information,
    sliced_jensen_shannon,
)
from gan_je.estimators.knn import compare_samples, log_unit_ball_volume
from tests.samples import gaussian_entropy, gaussian_samples, random_covariance, ring

N = 4000


@pytest.mark.parametrize("d", [1, 2, 4])
def test_entropy_of_correlated_gaussian(d):
    cov = random_covariance(d, seed=d)
    x = gaussian_samples(N, cov, seed=10 + d)
    assert entropy(x).item() == pytest.approx(gaussian_entropy(cov), abs=0.12)


def test_entropy_in_bits():
    x = gaussian_samples(N, torch.eye(2, dtype=torch.float64), seed=1)
    assert entropy(x, base=2).item() == pytest.approx(entropy(x).item() / math.log(2))


def test_unit_ball_volume():
    assert math.exp(log_unit_ball_volume(1)) == pytest.approx(2.0)
    assert math.exp(log_unit_ball_volume(2)) == pytest.approx(math.pi)
    assert math.exp(log_unit_ball_volume(3)) == pytest.approx(4 / 3 * math.pi)


def test_joint_entropy_of_correlated_pair():
    cov = random_covariance(3, seed=3)
    xy = gaussian_samples(N, cov, seed=4)
    x, y = xy[:, :1], xy[:, 1:]
    h_xy = joint_entropy(x, y)
    assert h_xy.item() == pytest.approx(gaussian_entropy(cov), abs=0.12)
    # joint entropy is not the sum: the variables are correlated
    assert h_xy.item() < entropy(x).item() + entropy(y).item() - 0.05


def test_joint_entropy_of_three_correlated_variables():
    # H(X, Y, Z) = 1/2 log((2 pi e)^5 det S) = 5.53 nats, 1.59 below the sum of the three
    # entropies. Over 30 seeds at N = 4,000: error +0.026 +- 0.024 (max 0.072), so 0.1 is
    # the bias plus 3 sd; summing the entropies, or mispairing the rows, misses by ~1.5.
    a = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.5, 1.0, 0.0, 0.0, 0.0],
            [0.8, 0.0, 0.6, 0.0, 0.0],
            [0.0, 0.7, 0.3, 0.7, 0.0],
            [0.6, -0.5, 0.0, 0.4, 0.5],
        ],
        dtype=torch.float64,
    )
    cov = a @ a.T
    xyz = gaussian_samples(N, cov, seed=30)
    h = joint_entropy(xyz[:, :2], xyz[:, 2:4], xyz[:, 4:]).item()
    assert h == pytest.approx(gaussian_entropy(cov), abs=0.1)


def test_conditional_entropy_of_correlated_gaussians():
    # H(X | Y) = 1/2 log((2 pi e)^2 det(S_xx - S_xy S_yy^-1 S_yx)) = 1.85 nats (Schur
    # complement), for X 2-D and Y 1-D; H(X) = 2.84, H(Y | X) = 0.50, H(X, Y) = 3.34. Over
    # 30 seeds at N = 4,000: error -0.020 +- 0.025 (max 0.084), so 0.1 is the bias plus 3 sd.
    a = torch.tensor([[1.0, 0.0, 0.0], [0.3, 1.0, 0.0], [0.8, -0.6, 0.4]], dtype=torch.float64)
    cov = a @ a.T
    s_xx, s_xy, s_yy = cov[:2, :2], cov[:2, 2:], cov[2:, 2:]
    truth = gaussian_entropy(s_xx - s_xy @ torch.linalg.inv(s_yy) @ s_xy.T)
    xy = gaussian_samples(N, cov, seed=31)
    assert conditional_entropy(xy[:, :2], xy[:, 2:]).item() == pytest.approx(truth, abs=0.1)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_mutual_information_of_correlated_gaussians(rho):
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64)
    xy = gaussian_samples(N, cov, seed=11)
    truth = -0.5 * math.log(1 - rho**2)
    assert mutual_information(xy[:, :1], xy[:, 1:]).item() == pytest.approx(truth, abs=0.05)


def test_mutual_information_of_multivariate_gaussians():
    cov = random_covariance(4, seed=12)
    xy = gaussian_samples(N, cov, seed=13)
    truth = 0.5 * (torch.logdet(cov[:2, :2]) + torch.logdet(cov[2:, 2:]) - torch.logdet(cov)).item()
    mi = mutual_information(xy[:, :2], xy[:, 2:])
    assert mi.item() == pytest.approx(truth, abs=0.08)


def test_mutual_information_of_independent_variables_is_near_zero():
    x = gaussian_samples(N, torch.eye(2, dtype=torch.float64), seed=14)
    y = gaussian_samples(N, torch.eye(1, dtype=torch.float64), seed=15)
    assert abs(mutual_information(x, y).item()) < 0.03


def test_jsd_of_one_distribution_is_near_zero():
    cov = random_covariance(2, seed=16)
    p, q = gaussian_samples(N, cov, seed=17), gaussian_samples(N, cov, seed=18)
    assert abs(jensen_shannon(p, q).item()) < 0.03


def test_jsd_of_disjoint_supports_is_log_2():
    p = gaussian_samples(1000, torch.eye(2, dtype=torch.float64), seed=19)
    q = gaussian_samples(1000, torch.eye(2, dtype=torch.float64), seed=20, mean=50.0)
    assert jensen_shannon(p, q).item() == pytest.approx(math.log(2), abs=2e-3)
    assert jensen_shannon(p, q, base=2).item() == pytest.approx(1.0, abs=3e-3)


def _jsd_by_integration(p, q) -> float:
    def integrand(x):
        a, b = p.pdf(x), q.pdf(x)
        m = 0.5 * (a + b)
        return 0.5 * (a * np.log(a / m) if a > 0 else 0.0) + 0.5 * (
            b * np.log(b / m) if b > 0 else 0.0
        )

    return integrate.quad(integrand, -20, 20, limit=200)[0]


@pytest.mark.parametrize(
    ("loc", "scale"),
    [(1.0, 1.0), (0.0, 0.4), (2.0, 2.0)],
    ids=["shift", "narrow", "shift-wide"],
)
def test_jsd_of_1d_gaussians_matches_numerical_integration(loc, scale):
    truth = _jsd_by_integration(stats.norm(0, 1), stats.norm(loc, scale))
    gen = torch.Generator().manual_seed(21)
    p = torch.randn(N, 1, generator=gen, dtype=torch.float64)
    q = loc + scale * torch.randn(N, 1, generator=gen, dtype=torch.float64)
    assert jensen_shannon(p, q).item() == pytest.approx(truth, abs=0.03)


def test_jsd_with_unequal_sizes_uses_the_sample_prior():
    p = gaussian_samples(1500, torch.eye(1, dtype=torch.float64), seed=22)
    q = gaussian_samples(500, torch.eye(1, dtype=torch.float64), seed=23, mean=100.0)
    # disjoint: I(S; L) = H(L) with prior (3/4, 1/4)
    h_label = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert jensen_shannon(p, q).item() == pytest.approx(h_label, abs=3e-3)


def test_sliced_jsd_sees_a_variance_mismatch_in_16_dimensions():
    p = gaussian_samples(2000, torch.eye(16, dtype=torch.float64), seed=24)
    q = gaussian_samples(2000, 0.25 * torch.eye(16, dtype=torch.float64), seed=25)
    sliced = sliced_jensen_shannon(p, q, dim=2, n_projections=8)
    assert sliced.per_projection.shape == (8,)
    assert sliced.max >= sliced.mean
    # each 2-D slice is N(0, I) vs N(0, I/4): JSD 0.1734 (Monte Carlo, 2e6 draws per set)
    assert sliced.mean.item() == pytest.approx(0.1734, abs=0.03)
    assert sliced.mean.item() > jensen_shannon(p, q).item() + 0.05


def test_sliced_jsd_is_reproducible_and_seeded():
    p = gaussian_samples(500, torch.eye(4, dtype=torch.float64), seed=26)
    q = gaussian_samples(500, 2 * torch.eye(4, dtype=torch.float64), seed=27)
    a, b = sliced_jensen_shannon(p, q, seed=3), sliced_jensen_shannon(p, q, seed=3)
    assert torch.equal(a.per_projection, b.per_projection)
    c = sliced_jensen_shannon(p, q, seed=4)
    assert not torch.equal(a.per_projection, c.per_projection)


def test_compare_samples_matches_the_separate_estimators():
    p = gaussian_samples(1200, random_covariance(3, 28), seed=29)
    q = gaussian_samples(1200, random_covariance(3, 30), seed=31)
    out = compare_samples(p, q)
    assert out["jsd"].item() == pytest.approx(jensen_shannon(p, q).item(), abs=1e-9)
    assert out["entropy_real"].item() == pytest.approx(entropy(p).item(), abs=1e-6)
    assert out["entropy_fake"].item() == pytest.approx(entropy(q).item(), abs=1e-6)
    pooled = torch.cat([p, q])
    assert out["entropy_mixture"].item() == pytest.approx(entropy(pooled).item(), abs=1e-6)
    expected = math.log(2) + 0.5 * (out["entropy_real"] + out["entropy_fake"]).item()
    assert out["joint_entropy"].item() == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------- invariances


def test_permutation_invariance():
    x = gaussian_samples(1000, random_covariance(3, 32), seed=33)
    perm = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    # the jitter follows the row order, so equality holds to its 1e-10 relative size
    assert entropy(x[perm]).item() == pytest.approx(entropy(x).item(), abs=1e-6)
    assert mutual_information(x[perm, :1], x[perm, 1:]).item() == pytest.approx(
        mutual_information(x[:, :1], x[:, 1:]).item(), abs=1e-6
    )


def test_translation_invariance():
    x = gaussian_samples(1000, random_covariance(3, 34), seed=35)
    assert entropy(x + 1e4).item() == pytest.approx(entropy(x).item(), abs=1e-6)
    y = gaussian_samples(1000, random_covariance(3, 36), seed=37)
    assert jensen_shannon(x + 7, y + 7).item() == pytest.approx(
        jensen_shannon(x, y).item(), abs=1e-6
    )


@pytest.mark.parametrize("a", [1e-3, 0.5, 20.0])
def test_scaling_shifts_entropy_by_d_log_a(a):
    x = gaussian_samples(1000, random_covariance(3, 38), seed=39)
    assert entropy(a * x).item() == pytest.approx(entropy(x).item() + 3 * math.log(a), abs=1e-6)


# ----------------------------------------------------------------------------- precision


def test_float32_far_from_origin_gives_the_float64_answer():
    x64 = ring(4000, seed=40, shift=10.0)
    x32 = x64.float()
    truth = entropy(x32.double()).item()
    for backend in ("torch", "faiss", "kdtree"):
        assert entropy(x32, backend=backend).item() == pytest.approx(truth, abs=1e-3)
    # and the 8-ring entropy is log 8 + log(2 pi e sigma^2)
    assert truth == pytest.approx(math.log(8) + math.log(2 * math.pi * math.e * 1e-4), abs=0.1)


def test_float32_ring_jsd_and_mi_match_float64():
    p, q = ring(3000, seed=41, shift=10.0), ring(3000, seed=42, shift=10.0, sigma=0.02)
    for backend in ("torch", "kdtree"):
        assert jensen_shannon(p.float(), q.float(), backend=backend).item() == pytest.approx(
            jensen_shannon(p, q).item(), abs=1e-3
        )
    assert mutual_information(p[:, :1].float(), p[:, 1:].float(), backend="torch").item() == (
        pytest.approx(mutual_information(p[:, :1], p[:, 1:]).item(), abs=1e-3)
    )


# ----------------------------------------------------------------------------- duplicates


def test_duplicates_never_give_nan():
    collapsed = torch.ones(200, 3)
    real = gaussian_samples(200, torch.eye(3, dtype=torch.float64), seed=43)
    values = [
        entropy(collapsed),
        joint_entropy(collapsed, collapsed),
        mutual_information(collapsed, collapsed),
        jensen_shannon(real, collapsed),
        conditional_entropy(collapsed, real),
    ]
    assert all(torch.isfinite(v) for v in values)
    # a collapsed sample has (nearly) -inf entropy; the JSD sees (nearly) disjoint supports:
    # the few real points whose k-NN ball holds the point mass pull it below log 2
    assert entropy(collapsed).item() < -50
    assert 0.55 < jensen_shannon(real, collapsed).item() <= math.log(2) + 0.01


def test_repeated_samples_agree_across_backends():
    base = gaussian_samples(60, torch.eye(2, dtype=torch.float64), seed=44)
    x = torch.cat([base] * 5)
    values = {b: entropy(x, backend=b).item() for b in ("torch", "faiss", "kdtree")}
    assert max(values.values()) - min(values.values()) < 1e-9, values


# ----------------------------------------------------------------------------- backends


@pytest.mark.parametrize("d", [1, 3, 12])
def test_backends_agree(d):
    cov = random_covariance(d, seed=45)
    p, q = gaussian_samples(700, cov, seed=46), gaussian_samples(600, 2 * cov, seed=47)
    backends = ("torch", "faiss", "kdtree")
    h = [entropy(p, backend=b).item() for b in backends]
    jsd = [jensen_shannon(p, q, backend=b).item() for b in backends]
    assert max(h) - min(h) < 1e-9
    assert max(jsd) - min(jsd) < 1e-9
    # KSG: the tree needs 1-D variables (Chebyshev joint space); "auto" counts with the tree
    mi_backends = ("torch", "kdtree") if d == 1 else ("torch", "auto")
    mi = [mutual_information(p[:600], q, backend=b).item() for b in mi_backends]
    assert max(mi) - min(mi) < 1e-9


def test_differentiable_entropy_equals_the_estimate_and_its_gradient_finite_differences():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(30, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    value = differentiable_entropy(x)
    assert float(value.detach()) == pytest.approx(float(entropy(x.detach())), abs=1e-9)
    (gradient,) = torch.autograd.grad(value, x)
    h = 1e-6
    for i, j in [(0, 0), (3, 1), (17, 0), (29, 1)]:
        step = torch.zeros_like(x)
        step[i, j] = h
        with torch.no_grad():
            numeric = (differentiable_entropy(x + step) - differentiable_entropy(x - step)) / (
                2 * h
            )
        assert float(gradient[i, j]) == pytest.approx(float(numeric), rel=1e-4, abs=1e-7)


def test_differentiable_entropy_pushes_crowded_samples_apart():
    generator = torch.Generator().manual_seed(1)
    collapsed = 1e-3 * torch.randn(40, 2, generator=generator, dtype=torch.float64)
    x = collapsed.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(differentiable_entropy(x), x)
    moved = x.detach() + 1e-4 * gradient / gradient.norm(dim=1, keepdim=True).clamp_min(1e-30)
    assert torch.cdist(moved, moved).sum() > torch.cdist(collapsed, collapsed).sum()
    assert float(entropy(moved)) > float(entropy(collapsed))
    assert torch.isfinite(gradient).all()


def test_differentiable_entropy_rejects_bad_input():
    with pytest.raises(ValueError, match="k"):
        differentiable_entropy(torch.randn(3, 2), k=3)
    with pytest.raises(ValueError, match=r"\(N, \.\.\.\)"):
        differentiable_entropy(torch.randn(10))
