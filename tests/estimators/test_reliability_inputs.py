"""Issue 29, estimators: inputs that gave a traceback or a silent NaN are either handled
exactly or refused in one sentence. Rows of docs/reliability.md, "Commands and estimators"."""

from __future__ import annotations

import math

import pytest
import torch

from gan_je.estimators import (
    classifier_jensen_shannon,
    compare_samples,
    conditional_entropy,
    density_coverage,
    differentiable_entropy,
    entropy,
    extrapolated_entropy,
    gaussian,
    jensen_shannon,
    joint_entropy,
    mutual_information,
    precision_recall,
    sliced_jensen_shannon,
    weighted_entropy,
)
from gan_je.estimators.weighted import kl_entropies
from gan_je.evaluate import jsd_cap
from gan_je.metrics import GaussianJointEntropy, JointEntropy

_generator = torch.Generator().manual_seed(0)
X = torch.randn(200, 2, generator=_generator, dtype=torch.float64)
Y = torch.randn(200, 2, generator=_generator, dtype=torch.float64) + 0.5

#: every public function and metric that takes a logarithm ``base``
TAKES_BASE = {
    "entropy": lambda base: entropy(X, base=base),
    "joint_entropy": lambda base: joint_entropy(X, Y, base=base),
    "conditional_entropy": lambda base: conditional_entropy(X, Y, base=base),
    "mutual_information": lambda base: mutual_information(X, Y, base=base),
    "jensen_shannon": lambda base: jensen_shannon(X, Y, base=base),
    "compare_samples": lambda base: compare_samples(X, Y, base=base),
    "sliced_jensen_shannon": lambda base: sliced_jensen_shannon(X, Y, base=base),
    "classifier_jensen_shannon": lambda base: classifier_jensen_shannon(X, Y, base=base),
    "weighted_entropy": lambda base: weighted_entropy(X, base=base),
    "extrapolated_entropy": lambda base: extrapolated_entropy(X, base=base),
    "kl_entropies": lambda base: kl_entropies(X, [3, 4], base=base),
    "gaussian.entropy": lambda base: gaussian.entropy(X, base=base),
    "gaussian.mutual_information": lambda base: gaussian.mutual_information(X, Y, base=base),
    "gaussian.compare_samples": lambda base: gaussian.compare_samples(X, Y, base=base),
    "JointEntropy": lambda base: JointEntropy(base=base),
    "GaussianJointEntropy": lambda base: GaussianJointEntropy(base=base),
    "evaluate.jsd_cap": lambda base: jsd_cap(10, 20, base=base),
}


@pytest.mark.parametrize("base", [math.nan, math.inf, -math.inf, 0, -2.0, 1, 1.0, True, "2"])
@pytest.mark.parametrize("name", list(TAKES_BASE))
def test_every_estimator_refuses_a_base_that_is_not_a_log_unit(name, base):
    with pytest.raises(ValueError, match="base must be a finite number > 0 other than 1"):
        TAKES_BASE[name](base)


def test_a_base_below_one_is_a_unit_too():
    assert float(entropy(X, base=0.5)) == pytest.approx(-float(entropy(X, base=2)))
    assert jsd_cap(10, 10, base=0.5) == pytest.approx(-1.0)


@pytest.mark.parametrize("scale", [1e160, 1e-170, 2.0**600])
@pytest.mark.parametrize("statistic", [precision_recall, density_coverage])
def test_quality_statistics_are_scale_invariant_where_squared_distances_overflow(statistic, scale):
    """Ball memberships do not change when every distance is scaled alike: the values at
    1e160 (squared distances overflow to inf) and at 1e-170 (underflow to 0) are those at 1."""
    expected = [float(v) for v in statistic(X, Y)]
    assert min(expected) > 0 and max(expected) < 1.5  # neither everything nor nothing
    assert [float(v) for v in statistic(X * scale, Y * scale)] == expected


@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.uint8])
def test_differentiable_entropy_reads_bool_and_integer_samples_as_float64(dtype):
    """As every estimator reads them (``as_samples``): the float64 values, a float64 result
    (an int64 result would drop the fraction)."""
    samples = torch.randint(0, 2 if dtype == torch.bool else 50, (200, 3), generator=_generator)
    samples = samples.to(dtype)
    value = differentiable_entropy(samples)
    assert value.dtype == torch.float64
    assert value == differentiable_entropy(samples.double())
