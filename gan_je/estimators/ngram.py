"""The exact Jensen-Shannon divergence between the n-gram frequencies of two sets of token
sequences: the text-GAN metric of Gulrajani et al. (2017, "Improved training of Wasserstein
GANs", section 5.2), computed from counts, so it has no estimation error beyond the finite
samples themselves.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._inputs import check_base, check_ids, check_whole


def ngram_jensen_shannon(a: Tensor, b: Tensor, n: int, base: float = 2) -> Tensor:
    """JSD(P_a || P_b) between the n-gram frequency distributions of two arrays of token ids.

    The n-grams of a sequence x of length L are its L - n + 1 windows
    (x_t, ..., x_{t+n-1}); P_a(g) is the number of times the n-gram g occurs in the
    sequences of ``a`` (no window crosses from one sequence into the next) divided by the
    number of windows, likewise P_b. With M = (P_a + P_b) / 2,

        JSD = 1/2 sum_g P_a(g) log(P_a(g) / M(g)) + 1/2 sum_g P_b(g) log(P_b(g) / M(g)),

    with 0 log 0 = 0: 0 for identical frequencies, log 2 (1 bit) for disjoint ones.

    Args:
        a, b: integer token ids ``(N_a, L_a)`` and ``(N_b, L_b)``, at least one sequence
            each, ids >= 0; the sets may differ in size and length.
        n: the n-gram order, 1 <= n <= min(L_a, L_b).
        base: the logarithm's base (2, the default: bits; ``math.e``: nats).

    Returns:
        A 0-dim float64 tensor on ``a``'s device.

    Raises:
        ValueError: for ids that are not an integer 2-D tensor of ids >= 0, an empty set, an
            order outside ``[1, min(L_a, L_b)]`` or a bad ``base``.
    """
    a, b = check_ids(a, "a"), check_ids(b, "b")
    n = check_whole(n, "n (the n-gram order)", 1, min(a.shape[1], b.shape[1]))
    base = check_base(base)
    windows = torch.cat(
        [a.unfold(1, n, 1).reshape(-1, n), b.to(a.device).unfold(1, n, 1).reshape(-1, n)]
    )
    _, which = torch.unique(windows, dim=0, return_inverse=True)
    n_a = a.shape[0] * (a.shape[1] - n + 1)
    size = int(which.max()) + 1
    p = torch.bincount(which[:n_a], minlength=size).double() / n_a
    q = torch.bincount(which[n_a:], minlength=size).double() / (len(which) - n_a)
    m = (p + q) / 2
    nats = 0.5 * (torch.xlogy(p, p / m).sum() + torch.xlogy(q, q / m).sum())
    return nats / math.log(base)
