"""benchmarks/estimators.py's bias table: the truths it measures against (the Student-t's
closed form, and each sampler drawing from the density its truth belongs to), and the
section running end to end on tiny inputs."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module("estimators")


@pytest.mark.parametrize("d", [1, 2, 5, 32])
@pytest.mark.parametrize("df", [3.0, 7.5])
def test_student_t_entropy_is_scipys(bench, d: int, df: float) -> None:
    from weighted_entropy import student_t_entropy

    expected = stats.multivariate_t(np.zeros(d), np.eye(d), df=df).entropy()
    assert student_t_entropy(d, df) == pytest.approx(expected, rel=1e-12)


def test_student_t_entropy_is_one_dimensional_t(bench) -> None:
    from weighted_entropy import student_t_entropy

    assert student_t_entropy(1, 3.0) == pytest.approx(stats.t(3).entropy(), rel=1e-12)


@pytest.mark.parametrize("name", ["N(0, I)", "N(0, Σ)", "uniform [0, 1]^d", "Student-t, 3 dof"])
def test_samples_have_the_entropy_they_claim(bench, name: str) -> None:
    """The mean of -log p over the sampler's own draws (a Monte Carlo of the entropy, with p
    the density the truth belongs to) equals the truth the sampler returns."""
    n, d = 200_000, 4
    x, truth = bench.KNOWN_ENTROPY[name](n, d, torch.Generator().manual_seed(0))
    x = x.numpy()
    if name == "N(0, I)":
        log_p = stats.multivariate_normal(np.zeros(d), np.eye(d)).logpdf(x)
    elif name == "N(0, Σ)":
        log_p = stats.multivariate_normal(np.zeros(d), np.cov(x.T)).logpdf(x)
    elif name == "uniform [0, 1]^d":
        assert x.min() >= 0 and x.max() <= 1
        log_p = np.zeros(n)
    else:
        log_p = stats.multivariate_t(np.zeros(d), np.eye(d), df=3).logpdf(x)
    mc = -log_p.mean()
    assert mc == pytest.approx(truth, abs=5 * log_p.std() / math.sqrt(n) + 1e-3)


def test_student_t_is_heavy_tailed(bench) -> None:
    """The draws are a t with 3 degrees of freedom, not a Gaussian: each coordinate passes a
    Kolmogorov-Smirnov test against t(3)."""
    x, _ = bench.student_t(20_000, 3, torch.Generator().manual_seed(1))
    for column in x.numpy().T:
        assert stats.kstest(column, stats.t(3).cdf).pvalue > 1e-3


def test_bias_section_runs_on_tiny_inputs(bench) -> None:
    table = bench.bias(n=400, ds=(2,), seeds=1)
    lines = table.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == [
        "distribution",
        "d",
        "truth (nats)",
        *(
            f"{key} {column}"
            for key in ("KL k=3", "extrapolated")
            for column in ("mean", "bias", "se", "bias / se")
        ),
    ]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:6]]
    assert [row[0] for row in rows] == list(bench.KNOWN_ENTROPY)
    for row in rows:
        truth, mean, bias, se, ratio = (float(row[i]) for i in (2, 3, 4, 5, 6))
        assert bias == pytest.approx(mean - truth, abs=2e-3)
        assert se > 0
        # bias / se of the unrounded numbers: within what the cells' rounding allows
        extremes = [(bias + a) / (se + b) for a in (-5e-4, 5e-4) for b in (-5e-4, 5e-4)]
        assert min(extremes) - 0.05 <= ratio <= max(extremes) + 0.05
    assert "N = 400, 1 seed(s)" in table
