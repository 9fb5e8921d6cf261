"""Data-copying statistic C_T: copies, fresh and over-smoothed samples, the flagged cells
(partial copying that C_T averages away), the Mann-Whitney statistic against scipy, the cell
bookkeeping, determinism and errors."""

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.stats import mannwhitneyu, norm

from gan_je.estimators.copying import cell_threshold, data_copying, mann_whitney

MEANS = torch.tensor([[3.0, 3.0], [-3.0, 3.0], [0.0, -3.0]], dtype=torch.float64)


def mixture(n: int, generator: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    """``n`` draws from an equal mixture of three 2-D Gaussians, spread ``scale``."""
    component = torch.randint(len(MEANS), (n,), generator=generator)
    return MEANS[component] + scale * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def train_and_held_out(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    generator = torch.Generator().manual_seed(seed)
    return mixture(1000, generator), mixture(1000, generator), generator


def test_copies_of_training_samples_are_flagged():
    train, held_out, generator = train_and_held_out(0)
    copies = train[torch.randperm(1000, generator=generator)[:500]]
    copies = copies + 1e-3 * torch.randn(500, 2, generator=generator, dtype=torch.float64)
    result = data_copying(train, copies, held_out)
    assert float(result.z) < -3
    assert bool((result.cell_z[result.kept] < 0).all())


@pytest.mark.parametrize("seed", [1, 2])
def test_fresh_samples_are_not_flagged(seed):
    train, held_out, generator = train_and_held_out(seed)
    result = data_copying(train, mixture(1000, generator), held_out, seed=seed)
    assert abs(float(result.z)) < 3
    assert result.n_kept == 10
    assert result.n_flagged == 0 and not bool(result.flagged.any()) and float(result.share) == 0
    assert result.threshold == pytest.approx(-2.568, abs=1e-3)


def noisy_copies(train: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` distinct training samples plus noise far below the neighbour spacing."""
    chosen = train[torch.randperm(train.shape[0], generator=generator)[:n]]
    return chosen + 0.01 * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def test_a_fifth_copied_is_flagged_where_c_t_is_not():
    train, held_out, generator = train_and_held_out(13)
    generated = torch.cat([mixture(800, generator), noisy_copies(train, 200, generator)])
    result = data_copying(train, generated, held_out, seed=13)
    assert -3 < float(result.z) < -1.5  # the paper's verdict misses it
    assert result.n_flagged >= 2
    assert bool((result.flagged <= result.kept).all())
    assert bool((result.cell_z[result.flagged] < result.threshold).all())
    assert bool((result.cell_z[result.kept & ~result.flagged] >= result.threshold).all())
    assert 0.1 < float(result.share) <= 1


def test_copies_confined_to_one_cell_are_flagged_there():
    train, held_out, generator = train_and_held_out(11)
    fresh = mixture(1000, generator)
    # the tenth of the generated samples nearest one training sample are copies from there
    centre = train[0]
    near = ((fresh - centre) ** 2).sum(dim=1).argsort()[:100]
    near_train = train[((train - centre) ** 2).sum(dim=1).argsort()[:100]]
    fresh[near] = noisy_copies(near_train, 100, generator)
    result = data_copying(train, fresh, held_out, seed=11)
    assert float(result.z) > -3  # averaged away
    assert 1 <= result.n_flagged <= 2
    assert float(result.cell_z[result.kept].min()) < -5  # the copied cell itself
    assert 0.05 < float(result.share) < 0.3  # a part of the generator, not all of it


def test_one_cell_flags_below_the_one_sided_five_percent_quantile():
    train, held_out, generator = train_and_held_out(12)
    result = data_copying(train, noisy_copies(train, 300, generator), held_out, cells=1)
    assert result.threshold == pytest.approx(norm.ppf(0.05), rel=1e-12)
    assert bool(result.flagged[0]) and float(result.share) == 1.0 and result.n_flagged == 1


@pytest.mark.parametrize("n_cells", [1, 2, 10, 1000])
def test_cell_threshold_is_sidak(n_cells):
    for alpha in (0.05, 0.01, 1e-12):
        z = cell_threshold(alpha, n_cells)
        # the chance that any of n independent standard normals falls below z is alpha
        assert 1 - norm.sf(z) ** n_cells == pytest.approx(alpha, rel=1e-6)
        assert z <= norm.ppf(alpha) + 1e-12  # no laxer than one cell's own test
    assert cell_threshold(0.05, 10) > norm.ppf(0.05 / 10)  # Šidák is a little less strict


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, True, "0.05", math.nan])
def test_alpha_must_lie_strictly_between_zero_and_one(alpha):
    with pytest.raises(ValueError, match="alpha"):
        cell_threshold(alpha, 10)
    with pytest.raises(ValueError, match="alpha"):
        data_copying(SMALL, SMALL, SMALL, cells=2, alpha=alpha)


def test_over_smoothed_samples_are_positive():
    train, held_out, generator = train_and_held_out(3)
    broader = mixture(1000, generator, scale=1.5)  # the right modes, blurred
    assert float(data_copying(train, broader, held_out).z) > 1


def test_mann_whitney_matches_scipy_without_ties():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=37), rng.normal(0.4, 1.0, size=53)
    u, z = mann_whitney(torch.from_numpy(x), torch.from_numpy(y))
    reference = mannwhitneyu(x, y, alternative="less", method="asymptotic", use_continuity=False)
    assert float(u) == reference.statistic
    assert float(z) == pytest.approx(norm.ppf(reference.pvalue), rel=1e-9)
    assert float(z) < 0  # x tends to be smaller


def test_mann_whitney_counts_ties_as_halves():
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 4, size=25), rng.integers(0, 4, size=30)  # many ties
    u, z = mann_whitney(torch.from_numpy(x), torch.from_numpy(y))
    by_pairs = (x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum()
    assert float(u) == by_pairs == mannwhitneyu(x, y).statistic
    # the null variance has no tie correction
    assert float(z) == pytest.approx((by_pairs - 25 * 30 / 2) / math.sqrt(25 * 30 * 56 / 12))
    assert [float(v) for v in mann_whitney(torch.ones(3), torch.ones(4))] == [6.0, 0.0]


def test_one_cell_is_the_plain_test_against_scipy():
    train, held_out, generator = train_and_held_out(6)
    generated = mixture(300, generator, scale=1.2)
    result = data_copying(train, generated, held_out, cells=1)
    gen_dist = cdist(generated.numpy(), train.numpy()).min(axis=1)
    held_dist = cdist(held_out.numpy(), train.numpy()).min(axis=1)
    reference = mannwhitneyu(
        gen_dist, held_dist, alternative="less", method="asymptotic", use_continuity=False
    )
    assert float(result.cell_z[0]) == pytest.approx(norm.ppf(reference.pvalue), rel=1e-9)
    assert float(result.z) == float(result.cell_z[0])
    assert result.n_kept == 1 and float(result.cell_weight[0]) == 1.0


def test_cells_with_too_few_generated_samples_are_left_out():
    train, held_out, generator = train_and_held_out(7)
    one_mode = MEANS[0] + torch.randn(200, 2, generator=generator, dtype=torch.float64)
    result = data_copying(train, one_mode, held_out, cells=6)
    assert 1 <= result.n_kept < 6 and result.n_kept == int(result.kept.sum())
    assert bool(result.cell_z[~result.kept].isnan().all())
    assert not bool(result.cell_z[result.kept].isnan().any())
    assert float(result.cell_weight.sum()) == pytest.approx(1.0)
    # the weights are the held-out shares: the two modes without generated samples hold ~2/3
    assert float(result.cell_weight[~result.kept].sum()) > 0.5
    weight, cell_z = result.cell_weight[result.kept], result.cell_z[result.kept]
    assert float(result.z) == pytest.approx(float((weight * cell_z).sum() / weight.sum()))
    assert result.z.dtype == torch.float64 and result.z.ndim == 0


def test_deterministic_and_accepts_arrays_of_any_shape():
    train, held_out, generator = train_and_held_out(8)
    generated = mixture(500, generator)
    first = data_copying(train, generated, held_out, seed=3)
    again = data_copying(
        train.numpy().reshape(-1, 1, 2),
        generated.numpy().reshape(-1, 2, 1),
        held_out.float().double().numpy(),
        seed=3,
    )
    assert torch.equal(first.z, again.z)
    assert torch.equal(first.cell_z.nan_to_num(), again.cell_z.nan_to_num())
    assert torch.equal(first.kept, again.kept)


SMALL = torch.randn(50, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"cells": 0}, "cells"),
        ({"cells": 2.0}, "cells"),
        ({"cells": True}, "cells"),
        ({"min_generated": 0}, "min_generated"),
        ({"seed": -1}, "seed"),
        ({"cells": 51}, "train"),
        ({"generated": SMALL[:10]}, "generated"),
        ({"generated": torch.zeros(30, 3)}, "generated"),
        ({"held_out": torch.zeros(30, 1)}, "held_out"),
        ({"held_out": torch.zeros(0, 2)}, "held_out"),
        ({"train": SMALL.clone().fill_(math.nan)}, "train"),
        ({"min_generated": 40, "cells": 5}, "min_generated"),  # no cell holds 40 of 50
    ],
)
def test_errors_name_the_argument(kwargs, name):
    arguments = {"train": SMALL, "generated": SMALL, "held_out": SMALL, **kwargs}
    with pytest.raises(ValueError, match=name):
        data_copying(**arguments)
