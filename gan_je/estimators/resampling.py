"""Standard errors by half-sampling: the one rule behind every estimator's ``return_se``.

The k-NN estimates are not smooth functions of the samples, so the bootstrap (which
duplicates samples: zero distances) and the delta method on per-sample terms (which misses
the correlation between neighbouring terms: 0.58-0.66 of the actual spread for KL entropy
and KSG in 8-16 dimensions, 1.8-2.5 times it for the JSD in 16 dimensions and for precision
and recall in 2) are not calibrated. Half-sampling is: split every sample set at random into
two halves, estimate on each half, and since the variance of these estimators falls as 1/N,

    se = c_R sqrt(mean over R splits of (theta_1 - theta_2)^2 / 4)

(the variance of one half's estimate is ``(theta_1 - theta_2)^2 / 2``; the full sample has
half of it). ``c_R = 1 / E[sqrt(chi2_R / R)]`` (1.253 for R = 1, 1.128 for R = 2) makes the
reported error right on average, as if the R splits were independent. ``return_se=True``
uses ``R = HALVINGS`` splits; ``return_se=R`` (a whole number) chooses R. The splits are
seeded, so the same input gives the same error. The cost is ``2 R`` estimates at N/2: about
R times the estimate with a k-d tree, R/2 times by brute force. The calibration table
(``python benchmarks/calibration.py``) is in ``docs/estimators.md``.

The return convention, the same for every estimator: without ``return_se`` a value; with it,
every number the estimator returns becomes an :class:`Estimate` ``(value, se)``, in the same
container. An estimator of one value returns one :class:`Estimate` (``value, se =
entropy(x, return_se=True)``); one of several keeps its tuple, named tuple or dict, each entry
an :class:`Estimate` (``precision, recall = precision_recall(real, fake, return_se=True)``,
``precision.se``). :func:`flatten_estimates` turns a dict of them into ``key``/``key_se``
entries, as the metrics log them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

#: Random halvings per standard error.
HALVINGS = 2
#: Seed of the halvings' generator.
HALVING_SEED = 0


class Estimate(NamedTuple):
    """An estimate with its standard error, both float64 tensors of the same shape (0-dim for
    one number); unpacks as ``value, se = estimate``."""

    value: Tensor
    se: Tensor


def halvings(return_se: Any) -> int:
    """The number of random halvings ``return_se`` asks for: 0 for ``False``,
    :data:`HALVINGS` for ``True``, else a whole number >= 1."""
    if isinstance(return_se, bool):
        return HALVINGS if return_se else 0
    if isinstance(return_se, int) and return_se >= 0:
        return return_se
    raise ValueError(
        f"return_se must be True, False or a number of random halvings >= 1, got {return_se!r}"
    )


def with_se(
    value: Any,
    return_se: Any,
    estimate: Callable[..., Any],
    groups: Sequence[Sequence[Tensor]],
    least: int,
) -> Any:
    """``value`` alone, or, when ``return_se`` asks for halvings (:func:`halvings`), every
    tensor of ``value`` paired with its error as an :class:`Estimate`, in ``value``'s container
    (a tensor, or a tuple, named tuple or dict of tensors).

    ``estimate(*samples)`` is the estimator without errors: it returns the same container as
    ``value``; the errors of all its tensors come from the same halvings of ``groups``
    (:func:`half_sample_se`, with ``least``).
    """
    rounds = halvings(return_se)
    if not rounds:
        return value
    parts = _tensors(value)

    def stacked(*samples: Tensor) -> Tensor:
        return torch.cat([part.reshape(-1) for part in _tensors(estimate(*samples))])

    se = half_sample_se(stacked, groups, least=least, rounds=rounds)
    errors = se.split([part.numel() for part in parts])
    pairs = [
        Estimate(part, error.reshape(part.shape)) for part, error in zip(parts, errors, strict=True)
    ]
    if isinstance(value, Tensor):
        return pairs[0]
    if isinstance(value, Mapping):
        return dict(zip(value, pairs, strict=True))
    if hasattr(value, "_fields"):  # a named tuple
        return type(value)(*pairs)
    return tuple(pairs)


def _tensors(value: Any) -> list[Tensor]:
    """The tensors of an estimator's result: a tensor, or a tuple, named tuple or dict of
    them."""
    if isinstance(value, Tensor):
        return [value]
    return list(value.values() if isinstance(value, Mapping) else value)


def flatten_estimates(estimates: Mapping[str, Tensor | Estimate]) -> dict[str, Tensor]:
    """A flat dict of tensors: each plain value under its key, each :class:`Estimate`'s value
    under its key and its error under ``<key>_se``."""
    flat = {}
    for key, found in estimates.items():
        if isinstance(found, Estimate):
            flat[key], flat[f"{key}_se"] = found
        else:
            flat[key] = found
    return flat


def half_sample_se(
    estimate: Callable[..., Tensor],
    groups: Sequence[Sequence[Tensor]],
    least: int,
    rounds: int = HALVINGS,
) -> Tensor:
    """Half-sampling standard error of ``estimate(*samples)``.

    Args:
        estimate: maps the sample tensors (every group's, in order) to a tensor of values
            (0-dim, or a stack of several values whose errors are wanted together).
        groups: the sample tensors, grouped: tensors in one group are paired (row i of each
            from the same draw, as ``x`` and ``y`` of a mutual information) and share one
            split; each group (as the real and the generated set) is split on its own.
        least: fewest samples a half must keep (e.g. ``k + 1``).
        rounds: random halvings R (>= 1).

    Returns:
        A float64 tensor shaped like ``estimate``'s values.

    Raises:
        ValueError: if a group's half would hold fewer than ``least`` samples.
    """
    generator = torch.Generator().manual_seed(HALVING_SEED)
    for group in groups:
        if group[0].shape[0] // 2 < least:
            raise ValueError(
                f"return_se needs at least {2 * least} samples per set (two halves of "
                f"{least}), got {group[0].shape[0]}; pass more samples or return_se=False"
            )
    total = None
    for _ in range(rounds):
        halves: tuple[list[Tensor], list[Tensor]] = ([], [])
        for group in groups:
            n = group[0].shape[0]
            order = torch.randperm(n, generator=generator).to(group[0].device)
            first, second = order[: n // 2], order[n // 2 : 2 * (n // 2)]
            halves[0].extend(x[first] for x in group)
            halves[1].extend(x[second] for x in group)
        difference = estimate(*halves[0]).double() - estimate(*halves[1]).double()
        square = difference.square() / 4
        total = square if total is None else total + square
    # 1 / E[sqrt(chi2_R / R)] = sqrt(R / 2) Gamma(R / 2) / Gamma((R + 1) / 2)
    correction = math.exp(
        0.5 * math.log(rounds / 2) + math.lgamma(rounds / 2) - math.lgamma((rounds + 1) / 2)
    )
    return correction * (total / rounds).sqrt()
