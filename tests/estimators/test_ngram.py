"""ngram_jensen_shannon: the exact JSD of n-gram frequencies against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from gan_je.estimators import ngram_jensen_shannon


def test_hand_computed_unigrams_and_bigrams():
    # a's unigrams: 0 0 1 1 -> P = (1/2, 1/2, 0); b's: 0 1 1 2 -> Q = (1/4, 1/2, 1/4)
    a = torch.tensor([[0, 0], [1, 1]])
    b = torch.tensor([[0, 1], [1, 2]])
    # M = (3/8, 1/2, 1/8): JSD = 1/2 [1/2 log(4/3)] + 1/2 [1/4 log(2/3) + 1/4 log 2]
    expected = 0.25 * math.log(4 / 3) + 0.125 * math.log(2 / 3) + 0.125 * math.log(2)
    value = ngram_jensen_shannon(a, b, 1, base=math.e)
    assert value.shape == () and value.dtype == torch.float64
    assert value.item() == pytest.approx(expected, rel=1e-12)
    # bigrams: a has (0,0) and (1,1), b has (0,1) and (1,2): disjoint, log 2
    assert ngram_jensen_shannon(a, b, 2, base=math.e).item() == pytest.approx(math.log(2))


def test_ngrams_stay_within_each_sequence():
    # joined, a's rows would make the bigram (1, 0) that b has; within rows they share none
    a = torch.tensor([[0, 1], [0, 1]])
    b = torch.tensor([[1, 0], [1, 0]])
    assert ngram_jensen_shannon(a, b, 2).item() == pytest.approx(1.0)


def test_symmetric_zero_for_identical_and_base():
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(0, 4, (30, 6), generator=generator)
    b = torch.randint(0, 3, (20, 6), generator=generator)
    for n in (1, 2, 3):
        ab, ba = ngram_jensen_shannon(a, b, n), ngram_jensen_shannon(b, a, n)
        assert ab.item() == pytest.approx(ba.item(), rel=1e-12)
        assert 0 < ab.item() < 1
        nats = ngram_jensen_shannon(a, b, n, base=math.e)
        assert nats.item() == pytest.approx(ab.item() * math.log(2), rel=1e-12)
        # the same frequencies in another order and number of copies: 0
        shuffled = torch.cat([a, a])[torch.randperm(60, generator=generator)]
        assert ngram_jensen_shannon(a, shuffled, n).item() == pytest.approx(0.0, abs=1e-15)


def test_disjoint_vocabularies_reach_one_bit():
    a = torch.randint(0, 5, (10, 4), generator=torch.Generator().manual_seed(1))
    assert ngram_jensen_shannon(a, a + 5, 1).item() == pytest.approx(1.0)
    assert ngram_jensen_shannon(a, a + 5, 4, base=math.e).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize(
    ("a", "n", "match"),
    [
        (torch.zeros(3, 4, dtype=torch.int64), 0, "n-gram order"),
        (torch.zeros(3, 4, dtype=torch.int64), 5, "n-gram order"),
        (torch.zeros(3, 4), 1, "integer tensor"),
        (torch.zeros(0, 4, dtype=torch.int64), 1, r"a must have shape \(n >= 1, L >= 1\)"),
        (torch.zeros(4, dtype=torch.int64), 1, r"a must have shape \(n >= 1, L >= 1\)"),
        (-torch.ones(3, 4, dtype=torch.int64), 1, "a must lie >= 0, got values from -1"),
    ],
)
def test_bad_input(a, n, match):
    with pytest.raises(ValueError, match=match):
        ngram_jensen_shannon(a, torch.zeros(3, 4, dtype=torch.int64), n)


def test_bad_base():
    ids = torch.zeros(3, 4, dtype=torch.int64)
    with pytest.raises(ValueError, match="base"):
        ngram_jensen_shannon(ids, ids, 1, base=1)
