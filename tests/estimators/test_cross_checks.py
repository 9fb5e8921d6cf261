"""gan_je's estimators against code this project did not write, on the same data."""

import contextlib
import io

import numpy as np
import pytest
import torch
from scipy import linalg
from sklearn.feature_selection import mutual_info_classif

from gan_je.estimators import density_coverage, gaussian, jensen_shannon, precision_recall


def _sets(d, seed):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((400, d))
    fake = 1.2 * rng.standard_normal((350, d)) + 0.3
    return real, fake


@pytest.mark.parametrize("k", [3, 5])
def test_jsd_equals_scikit_learns_ross_estimate(k):
    # mutual_info_classif is Ross's estimator of I(S; L) for one continuous feature; it adds
    # its own 1e-10 noise to the feature, so the two agree to about that
    real, fake = _sets(1, seed=k)
    pooled = np.concatenate([real, fake])
    labels = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    theirs = mutual_info_classif(pooled, labels, n_neighbors=k, random_state=0)[0]
    ours = float(jensen_shannon(real, fake, k=k))
    assert theirs == pytest.approx(max(ours, 0.0), abs=1e-6)  # sklearn clips at 0


@pytest.mark.parametrize("d", [2, 16])
@pytest.mark.parametrize("k", [3, 5])
def test_quality_equals_prdc_on_untied_data(d, k):
    prdc = pytest.importorskip("prdc", reason="pip install prdc (a dev dependency)")
    real, fake = _sets(d, seed=10 + d)
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        theirs = prdc.compute_prdc(real, fake, nearest_k=k)
    precision, recall = precision_recall(real, fake, k=k)
    density, coverage = density_coverage(real, fake, k=k)
    ours = {"precision": precision, "recall": recall, "density": density, "coverage": coverage}
    # untied data: prdc's strict < and our <= decide every pair alike
    assert {key: float(value) for key, value in ours.items()} == pytest.approx(theirs, abs=1e-12)


def test_frechet_distance_equals_the_float64_formula():
    # |mu_p - mu_q|^2 + tr(S_p + S_q - 2 sqrtm(S_p S_q)), scipy's general matrix square root
    real, fake = _sets(6, seed=3)
    cov_p, cov_q = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = linalg.sqrtm(cov_p @ cov_q).real
    mean = real.mean(axis=0) - fake.mean(axis=0)
    expected = mean @ mean + np.trace(cov_p + cov_q - 2 * root)
    assert float(gaussian.frechet_distance(real, fake)) == pytest.approx(expected, rel=1e-10)
    assert float(gaussian.frechet_distance(torch.tensor(real), torch.tensor(real))) < 1e-10
