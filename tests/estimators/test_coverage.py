"""Mode coverage: hand-countable cases, the metric against the function, errors."""

import math

import pytest
import torch

from gan_je.estimators.coverage import mode_coverage, nearest_modes
from gan_je.metrics import MixtureCoverage

CENTERS = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
STD = 1.0


def test_counts_by_hand():
    samples = torch.tensor(
        [
            [0.5, 0.5],  # mode 0, high quality
            [2.9, 0.0],  # mode 0, 2.9 sigma: high quality
            [3.1, 0.0],  # mode 0, 3.1 sigma: not
            [10.0, 1.0],  # mode 1, high quality
            [6.0, 6.0],  # nearest mode 3 (5.66), not high quality
        ]
    )
    index, high_quality = nearest_modes(samples, CENTERS, STD)
    assert index.tolist() == [0, 0, 0, 1, 3]
    assert high_quality.tolist() == [True, True, False, True, False]
    result = mode_coverage(samples, CENTERS, STD)
    assert int(result.modes_covered) == 2
    assert float(result.high_quality) == pytest.approx(3 / 5)
    share = torch.tensor([3 / 5, 1 / 5, 1 / 5])
    assert float(result.mode_kl) == pytest.approx(math.log(4) + float((share * share.log()).sum()))
    assert result.high_quality_counts.tolist() == [2, 1, 0, 0]
    assert int(mode_coverage(samples, CENTERS, STD, min_count=2).modes_covered) == 1


def test_uniform_coverage_has_zero_kl_and_one_mode_has_log_m():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat(250)
    samples = CENTERS[labels] + 0.1 * torch.randn(1000, 2, generator=generator)
    everywhere = mode_coverage(samples, CENTERS, STD)
    assert int(everywhere.modes_covered) == 4 and float(everywhere.high_quality) == 1.0
    assert float(everywhere.mode_kl) == pytest.approx(0.0, abs=1e-12)
    collapsed = mode_coverage(samples[labels == 2], CENTERS, STD)
    assert int(collapsed.modes_covered) == 1
    assert float(collapsed.mode_kl) == pytest.approx(math.log(4))


def test_metric_sums_batches_like_one_call():
    generator = torch.Generator().manual_seed(1)
    samples = 12 * torch.rand(500, 2, generator=generator) - 1
    metric = MixtureCoverage(CENTERS, STD)
    for batch in samples.split(64):
        metric.update(batch)
    expected = mode_coverage(samples, CENTERS, STD)
    values = metric.compute()
    assert float(values["modes_covered"]) == float(expected.modes_covered)
    assert float(values["high_quality"]) == pytest.approx(float(expected.high_quality))
    assert float(values["mode_kl"]) == pytest.approx(float(expected.mode_kl))


def test_coverage_errors():
    with pytest.raises(ValueError, match="std"):
        mode_coverage(CENTERS, CENTERS, std=0.0)
    with pytest.raises(ValueError, match="min_count"):
        mode_coverage(CENTERS, CENTERS, STD, min_count=0)
    with pytest.raises(ValueError, match="features"):
        mode_coverage(torch.zeros(3, 3), CENTERS, STD)
    with pytest.raises(ValueError, match="n_sigma"):
        MixtureCoverage(CENTERS, STD, n_sigma=-1)
