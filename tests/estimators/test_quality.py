"""Precision/recall and density/coverage: cases counted by hand, limits, backends, errors."""

import pytest
import torch

from gan_je.estimators import density_coverage, precision_recall

REAL = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])  # every k=1 radius is 1


def test_a_case_counted_by_hand():
    fake = torch.tensor([[0.5], [10.0]])
    precision, recall = precision_recall(REAL, fake, k=1)
    assert float(precision) == 0.5  # 0.5 lies in the balls of 0 and 1; 10 in none
    assert float(recall) == 1.0  # the fake balls have radius 9.5 and hold every real
    density, coverage = density_coverage(REAL, fake, k=1)
    assert float(density) == 1.0  # (2 balls + 0 balls) / (k * 2)
    assert float(coverage) == pytest.approx(2 / 5)  # the balls of 0 and 1 hold a fake


def test_boundary_points_are_inside():
    fake = torch.tensor([[5.0]])  # exactly at distance 1 from 4, whose radius is 1
    assert float(precision_recall(REAL, torch.cat([fake, fake]), k=1)[0]) == 1.0


def test_identical_and_disjoint_sets():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(300, 4, generator=generator, dtype=torch.float64)
    assert [float(v) for v in precision_recall(real, real)] == [1.0, 1.0]
    density, coverage = density_coverage(real, real)
    assert float(coverage) == 1.0 and 0.8 < float(density) < 1.6
    far = real + 100.0
    assert [float(v) for v in precision_recall(real, far)] == [0.0, 0.0]
    assert [float(v) for v in density_coverage(real, far)] == [0.0, 0.0]


def test_a_subset_is_precise_but_does_not_recall_everything():
    generator = torch.Generator().manual_seed(1)
    real = torch.randn(400, 2, generator=generator, dtype=torch.float64)
    corner = real[(real[:, 0] > 0.5) & (real[:, 1] > 0.5)]
    precision, recall = precision_recall(real, corner)
    assert float(precision) == 1.0 and float(recall) < 0.5
    assert float(density_coverage(real, corner)[1]) < 0.5


def test_backends_agree():
    generator = torch.Generator().manual_seed(2)
    real = torch.randn(500, 3, generator=generator)
    fake = 1.2 * torch.randn(400, 3, generator=generator) + 0.3
    values = {
        backend: (
            *precision_recall(real, fake, backend=backend),
            *density_coverage(real, fake, backend=backend),
        )
        for backend in ("torch", "kdtree", "faiss")
    }
    assert values["torch"] == values["kdtree"] == values["faiss"]


def _tied_cases():
    """Data whose points sit exactly on ball boundaries: where the backends used to differ."""
    generator = torch.Generator().manual_seed(3)
    diagonal = torch.arange(10, dtype=torch.float64)[:, None].expand(10, 3).clone()
    digits = torch.randint(0, 4, (300, 5), generator=generator).double() / 3  # quantised
    real = torch.randn(200, 3, generator=generator, dtype=torch.float64)
    return {
        "diagonal": (diagonal, diagonal.clone()),  # equal spacing: ties everywhere
        "quantised": (digits[:150], digits[150:]),
        "copies": (real, torch.cat([real[:50], real[:50] * 1.0, real[50:100]])),
    }


@pytest.mark.parametrize("case", ["diagonal", "quantised", "copies"])
def test_backends_agree_exactly_on_ties(case):
    real, fake = _tied_cases()[case]
    values = {
        backend: (
            *precision_recall(real, fake, k=1, backend=backend),
            *density_coverage(real, fake, k=1, backend=backend),
            *precision_recall(real, fake, k=3, backend=backend),
            *density_coverage(real, fake, k=3, backend=backend),
        )
        for backend in ("torch", "kdtree", "faiss")
    }
    assert values["torch"] == values["kdtree"] == values["faiss"], values


def test_the_diagonal_against_itself_has_the_documented_density():
    # 10 points on the diagonal of R^3, k = 1: every radius is one step; each copy lies in
    # its own ball and in its two neighbours' (one at the ends), boundaries included
    diagonal = _tied_cases()["diagonal"][0]
    for backend in ("torch", "kdtree"):
        density, coverage = density_coverage(diagonal, diagonal, k=1, backend=backend)
        assert float(density) == pytest.approx(28 / 10) and float(coverage) == 1.0


def test_quality_errors():
    with pytest.raises(ValueError, match="features"):
        precision_recall(REAL, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="k"):
        density_coverage(REAL, REAL, k=5)
    with pytest.raises(ValueError, match="NaN"):
        precision_recall(REAL, torch.full((3, 1), float("nan")))
