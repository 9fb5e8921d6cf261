"""Bad input fails with a ValueError that names the argument and the fix."""

import math

import numpy as np
import pytest
import torch

from gan_je.estimators import (
    compare_samples,
    conditional_entropy,
    entropy,
    gaussian,
    jensen_shannon,
    joint_entropy,
    mutual_information,
    precision_recall,
    sliced_jensen_shannon,
)
from gan_je.estimators._inputs import as_samples

GOOD = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: entropy(GOOD[:3], k=3), "x has 3 samples but k=3"),
        (lambda: entropy(GOOD, k=0), "k must be a whole number"),
        (lambda: entropy(GOOD, k=2.5), "k must be a whole number"),
        (lambda: entropy(torch.empty(0, 2)), "x is empty"),
        (lambda: entropy(torch.empty(5, 0)), "no features"),
        (lambda: entropy(torch.tensor(1.0)), "single number"),
        (lambda: entropy(GOOD.index_fill(0, torch.tensor([3]), math.nan)), "NaN or Inf"),
        (lambda: entropy(GOOD.index_fill(0, torch.tensor([3]), math.inf)), "NaN or Inf"),
        (lambda: entropy(GOOD.to(torch.complex64)), "real numbers"),
        (lambda: entropy(np.array(["a", "b", "c", "d", "e"])), "array of numbers"),
        (lambda: entropy(object()), "tensor or array"),
        (lambda: entropy(GOOD, base=1), "base must be"),
        (lambda: entropy(GOOD, base=-2.0), "base must be"),
        (lambda: entropy(GOOD, backend="annoy"), "backend must be one of"),
        (lambda: joint_entropy(GOOD, GOOD[:40]), "same number of samples"),
        (lambda: joint_entropy(), "at least one variable"),
        (lambda: conditional_entropy(GOOD, GOOD[:10]), "same number of samples"),
        (lambda: mutual_information(GOOD, GOOD[:49]), "same number of samples"),
        (lambda: mutual_information(GOOD, GOOD, backend="tree"), "backend must be one of"),
        (lambda: jensen_shannon(GOOD, GOOD[:, :1]), "same number of features"),
        (lambda: jensen_shannon(GOOD, GOOD[:2]), "q has 2 samples but k=3"),
        (lambda: sliced_jensen_shannon(GOOD, GOOD, dim=0), "dim must be"),
        (lambda: sliced_jensen_shannon(GOOD, GOOD, n_projections=0), "n_projections must be"),
        (lambda: gaussian.entropy(GOOD[:2]), "more samples than dimensions"),
        (lambda: gaussian.entropy(torch.ones(20, 2)), "singular"),
        (lambda: gaussian.frechet_distance(GOOD, GOOD[:, :1]), "same number of features"),
    ],
)
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_accepted_inputs():
    ints = torch.arange(30).reshape(10, 3)
    assert as_samples(ints, "x").dtype == torch.float64
    assert as_samples(np.ones((4, 2, 3), dtype=np.float32), "x").shape == (4, 6)
    assert as_samples([1.0, 2.0, 3.0], "x").shape == (3, 1)
    assert as_samples(torch.ones(3, 2, dtype=torch.bfloat16), "x").shape == (3, 2)
    assert torch.isfinite(entropy(torch.randint(0, 100, (200, 2))))
    assert torch.isfinite(mutual_information(GOOD[:, :1], GOOD[:, 1:], backend="kdtree"))


SAMPLES = torch.randn(400, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
OTHER = torch.randn(400, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)


@pytest.mark.parametrize("c", [1e-300, 1e-170, 1e-80, 1e80, 1e200])
def test_any_finite_scale_shifts_entropies_by_d_log_c_and_leaves_divergences(c):
    d = SAMPLES.shape[1]
    assert float(entropy(SAMPLES * c)) == pytest.approx(
        float(entropy(SAMPLES)) + d * math.log(c), abs=1e-9
    )
    both = float(joint_entropy(SAMPLES * c, OTHER * c))
    assert both == pytest.approx(
        float(joint_entropy(SAMPLES, OTHER)) + 2 * d * math.log(c), abs=1e-9
    )
    assert float(jensen_shannon(SAMPLES * c, OTHER * c)) == float(jensen_shannon(SAMPLES, OTHER))
    assert math.isfinite(float(mutual_information(SAMPLES * c, OTHER)))


def test_one_sets_entropy_does_not_depend_on_the_set_it_is_compared_with():
    alone = float(entropy(SAMPLES))
    for scale in (1.0, 1e6, 1e12, 1e20):
        paired = compare_samples(SAMPLES, OTHER * scale)["entropy_real"]
        assert float(paired) == pytest.approx(alone, abs=1e-5), scale  # was 9.86 at 1e12


def test_copies_across_the_two_sets_stay_apart():
    result = compare_samples(SAMPLES, SAMPLES.clone())
    assert all(math.isfinite(float(value)) for value in result.values())
    assert float(result["entropy_fake"]) == pytest.approx(float(result["entropy_real"]), abs=1e-6)


def test_tensors_that_require_grad_are_estimated_as_their_values():
    x = SAMPLES.clone().requires_grad_(True)
    assert float(entropy(x)) == float(entropy(SAMPLES))
    assert float(jensen_shannon(x, OTHER)) == float(jensen_shannon(SAMPLES, OTHER))
    assert float(mutual_information(x, OTHER)) == float(mutual_information(SAMPLES, OTHER))
    assert float(compare_samples(x, OTHER)["jsd"]) == float(compare_samples(SAMPLES, OTHER)["jsd"])
    assert precision_recall(x, OTHER) == precision_recall(SAMPLES, OTHER)


def test_label_entropy_is_the_entropy_of_the_set_sizes():
    from gan_je.estimators import label_entropy

    assert label_entropy(500, 500) == pytest.approx(math.log(2))
    third = 1 / 3
    expected = -third * math.log(third) - (1 - third) * math.log(1 - third)
    assert label_entropy(100, 200) == pytest.approx(expected)
    with pytest.raises(ValueError, match="n_q"):
        label_entropy(3, 0)


def test_check_ids_is_the_one_check_of_token_ids():
    from gan_je.estimators._inputs import check_ids

    ids = torch.tensor([[0, 2, 1]], dtype=torch.uint8)
    checked = check_ids(ids, "fake_ids", length=3, vocab_size=3)
    assert checked.dtype == torch.int64 and torch.equal(checked, ids.long())
    for bad, match in [
        (ids.float(), r"fake_ids must be token ids, an integer tensor .* argmax"),
        (ids.bool(), "fake_ids must be token ids"),
        ([[0, 1, 2]], "got a list"),
        (ids[0], r"fake_ids must have shape \(n >= 1, 3\), got \(3,\)"),
        (ids[:, :2], r"fake_ids must have shape \(n >= 1, 3\), got \(1, 2\)"),
        (ids[:0], r"fake_ids must have shape \(n >= 1, 3\), got \(0, 3\)"),
        (ids + 1, r"fake_ids must lie in range\(3\), got values from 1 to 3"),
    ]:
        with pytest.raises(ValueError, match=match):
            check_ids(bad, "fake_ids", length=3, vocab_size=3)
    with pytest.raises(ValueError, match="a must lie >= 0, got values from -1 to 5"):
        check_ids(torch.tensor([[-1, 5]]), "a")
