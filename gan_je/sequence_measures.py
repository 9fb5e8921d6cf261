"""Exact measures of a generator of token sequences against the data, in nats.

Where the data come from a known distribution p (the synthetic oracle, :class:`gan_je.data.
Oracle`) and the generator's distribution q has a log-likelihood (an autoregressive
generator), every quantity the k-NN metric estimates has an exact counterpart: an
expectation of log-likelihoods, estimated by Monte Carlo over samples with the standard error
of a mean, with no bias. Here p and q are any objects with ``log_prob(ids) -> (n,)``, nats
per sequence (:class:`gan_je.models.lstm.LSTMLanguageModel` is one); ids are ``(n, L)``
integer tensors, generated ones from ``argmax`` of the one-hot samples. "Per token" divides a
sequence's nats by its length L.

- NLL-oracle (quality; Yu et al. 2017): -E_{x~q}[log p(x)] / L.
- NLL-test (diversity, autoregressive generators): -mean_{x in held-out} log q(x) / L.
- Entropy per token: H(q) / L = -E_q[log q(x)] / L, and the oracle's H(p) / L.
- The exact Jensen-Shannon divergence between whole sequences, in [0, log 2]:
  JSD(p, q) = 1/2 E_p[log p - log m] + 1/2 E_q[log q - log m], m = (p + q) / 2.
- n-gram JSDs (Gulrajani et al. 2017) of generated against held-out sequences, and the floor:
  training against held-out sequences at the same sample sizes (:func:`~gan_je.estimators.
  ngram_jensen_shannon`, exact from counts).

:func:`sequence_measures` computes all that the given objects allow, as a dict of 0-dim
tensors under stable keys (:data:`KEYS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from gan_je.checks import positive_int
from gan_je.estimators import Estimate, flatten_estimates, ngram_jensen_shannon

#: Sequences scored per ``log_prob`` call: logits of 256 x 20 x 5,000 floats are 100 MB.
BATCH_SIZE = 256


class SequenceModel(Protocol):
    """A distribution over token sequences with an exact log-likelihood."""

    def log_prob(self, ids: Tensor) -> Tensor:
        """``(n,)`` nats per sequence of ``ids`` ``(n, L)``."""
        ...


def log_probs(model: SequenceModel, ids: Tensor, batch_size: int = BATCH_SIZE) -> Tensor:
    """``model.log_prob`` of every sequence of ``ids`` ``(n, L)``, ``batch_size`` at a time,
    on the model's device (that of its parameters, for an ``nn.Module``), without gradients:
    ``(n,)`` float64 nats on the CPU (-inf where the model gives a sequence probability 0;
    NaN and +inf are refused)."""
    ids = check_ids(ids, "ids")
    batch_size = positive_int("batch_size", batch_size)
    parameter = next(model.parameters(), None) if isinstance(model, nn.Module) else None
    device = ids.device if parameter is None else parameter.device
    parts = []
    with torch.no_grad():
        for part in ids.split(batch_size):
            values = model.log_prob(part.to(device))
            if not isinstance(values, Tensor) or values.shape != (part.shape[0],):
                shape = tuple(values.shape) if isinstance(values, Tensor) else type(values)
                raise ValueError(
                    f"{type(model).__name__}.log_prob must return one value per sequence, "
                    f"({part.shape[0]},), got {shape}"
                )
            parts.append(values.detach().double().cpu())
    values = torch.cat(parts)
    if torch.isnan(values).any() or (values == math.inf).any():
        raise ValueError(f"{type(model).__name__}.log_prob returned NaN or +inf for a sequence")
    return values


def mean_with_se(values: Tensor) -> Estimate:
    """The mean of ``values`` ``(n,)`` and its standard error sqrt(var / n) (0 for n = 1;
    infinite where the mean is: a sequence the generator cannot produce makes NLL-test
    infinite)."""
    n = values.shape[0]
    if not torch.isfinite(values).all():
        return Estimate(values.mean(), values.new_tensor(math.inf))
    se = values.std() / math.sqrt(n) if n > 1 else values.new_zeros(())
    return Estimate(values.mean(), se)


def nll_oracle(oracle: SequenceModel, fake_ids: Tensor) -> Estimate:
    """NLL-oracle = -E_{x~q}[log p(x)] / L: the oracle p's negative log-likelihood per token
    of generated sequences ``fake_ids`` ``(n, L)`` (quality only: a generator that repeats
    the oracle's likeliest sequence scores best)."""
    return _per_token(-log_probs(oracle, fake_ids), fake_ids)


def nll_test(generator: SequenceModel, held_out_ids: Tensor) -> Estimate:
    """NLL-test = -mean_{x in held-out} log q(x) / L: the generator q's negative
    log-likelihood per token of held-out data ``held_out_ids`` ``(n, L)`` (diversity: a
    generator that misses part of the data pays for it here)."""
    return _per_token(-log_probs(generator, held_out_ids), held_out_ids)


def entropy_per_token(model: SequenceModel, samples: Tensor) -> Estimate:
    """H(q) / L = -E_{x~q}[log q(x)] / L from ``samples`` ``(n, L)`` drawn from ``model``
    itself, with its Monte Carlo standard error."""
    return _per_token(-log_probs(model, samples), samples)


def exact_jensen_shannon(
    p: SequenceModel, q: SequenceModel, p_samples: Tensor, q_samples: Tensor
) -> Estimate:
    """JSD(p, q) = 1/2 E_p[log p - log m] + 1/2 E_q[log q - log m] with m = (p + q) / 2, by
    Monte Carlo over ``p_samples`` (drawn from p) and ``q_samples`` (from q), in nats per
    sequence. log m = logaddexp(log p, log q) - log 2, so no likelihood underflows; each
    term lies in (-inf, log 2]. The standard error is
    sqrt(var_p / (4 n_p) + var_q / (4 n_q)) of the two independent means."""
    terms = []
    for samples, own_is_p in ((p_samples, True), (q_samples, False)):
        log_p, log_q = log_probs(p, samples), log_probs(q, samples)
        log_m = torch.logaddexp(log_p, log_q) - math.log(2)
        terms.append(mean_with_se((log_p if own_is_p else log_q) - log_m))
    value = 0.5 * (terms[0].value + terms[1].value)
    se = 0.5 * torch.sqrt(terms[0].se ** 2 + terms[1].se ** 2)
    return Estimate(value, se)


def ngram_divergences(
    fake_ids: Tensor,
    held_out_ids: Tensor,
    train_ids: Tensor | None = None,
    orders: Sequence[int] = (1, 2, 3, 4),
) -> dict[str, Tensor]:
    """``js_<n>``: the n-gram JSD (nats) of generated against held-out sequences for each
    order n; with ``train_ids``, ``js_<n>_real``: that of as many training sequences as
    generated ones (the first ``len(fake_ids)``: pass a random subset) against the same
    held-out ones, the value a generator equal to the data would reach at these sample
    sizes (finite samples make it > 0)."""
    values = {f"js_{n}": ngram_jensen_shannon(fake_ids, held_out_ids, n, math.e) for n in orders}
    if train_ids is not None:
        if train_ids.shape[0] < fake_ids.shape[0]:
            raise ValueError(
                f"the real floor needs as many training sequences as generated ones "
                f"({fake_ids.shape[0]}), got {train_ids.shape[0]}; generate fewer"
            )
        real = train_ids[: fake_ids.shape[0]]
        for n in orders:
            values[f"js_{n}_real"] = ngram_jensen_shannon(real, held_out_ids, n, math.e)
    return values


def sequence_measures(
    fake_ids: Tensor,
    held_out_ids: Tensor,
    train_ids: Tensor | None = None,
    oracle: SequenceModel | None = None,
    generator: Any = None,
    orders: Sequence[int] = (1, 2, 3, 4),
) -> dict[str, Tensor]:
    """Every measure the inputs allow, as 0-dim float64 tensors (keys in :data:`KEYS`):

    - always the n-gram JSDs ``js_<n>`` (and ``js_<n>_real`` with ``train_ids``:
      :func:`ngram_divergences`);
    - with an ``oracle`` p (``held_out_ids`` then being samples of it): ``nll_oracle`` and
      ``entropy_per_token_oracle``;
    - with a ``generator`` q that has ``log_prob`` (``fake_ids`` being its samples):
      ``nll_test`` and ``entropy_per_token_fake``; with both, ``jsd_exact``.

    Each Monte Carlo mean comes with its standard error under ``<key>_se``. Generated and
    held-out ids must have the same length L.
    """
    fake_ids, held_out_ids = (
        check_ids(fake_ids, "fake_ids"),
        check_ids(held_out_ids, "held_out_ids"),
    )
    if fake_ids.shape[1] != held_out_ids.shape[1]:
        raise ValueError(
            f"generated and held-out sequences must have the same length, got "
            f"{fake_ids.shape[1]} and {held_out_ids.shape[1]}"
        )
    if train_ids is not None:
        train_ids = check_ids(train_ids, "train_ids")
    estimates: dict[str, Tensor | Estimate] = {}
    has_log_prob = callable(getattr(generator, "log_prob", None))
    if oracle is not None:
        estimates["nll_oracle"] = nll_oracle(oracle, fake_ids)
        estimates["entropy_per_token_oracle"] = entropy_per_token(oracle, held_out_ids)
    if has_log_prob:
        estimates["nll_test"] = nll_test(generator, held_out_ids)
        estimates["entropy_per_token_fake"] = entropy_per_token(generator, fake_ids)
    if oracle is not None and has_log_prob:
        estimates["jsd_exact"] = exact_jensen_shannon(oracle, generator, held_out_ids, fake_ids)
    estimates |= ngram_divergences(fake_ids, held_out_ids, train_ids, orders)
    return flatten_estimates(estimates)


#: The keys :func:`sequence_measures` may return (n-gram orders 1 to 4).
KEYS = (
    *("nll_oracle", "nll_oracle_se", "nll_test", "nll_test_se"),
    *("entropy_per_token_fake", "entropy_per_token_fake_se"),
    *("entropy_per_token_oracle", "entropy_per_token_oracle_se", "jsd_exact", "jsd_exact_se"),
    *(f"js_{n}" for n in range(1, 5)),
    *(f"js_{n}_real" for n in range(1, 5)),
)


def check_ids(ids: Any, name: str) -> Tensor:
    """``ids`` if it is a non-empty integer tensor ``(n, L)``, else a ``ValueError``."""
    if (
        not isinstance(ids, Tensor)
        or ids.dtype.is_floating_point
        or ids.dtype.is_complex
        or ids.dtype == torch.bool
        or ids.ndim != 2
        or 0 in ids.shape
    ):
        shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(
            f"{name} must be token ids, an integer tensor (n >= 1, L >= 1), got {shape}; "
            "turn one-hot samples into ids with samples.argmax(dim=-1)"
        )
    return ids


def _per_token(values: Tensor, ids: Tensor) -> Estimate:
    mean, se = mean_with_se(values)
    return Estimate(mean / ids.shape[1], se / ids.shape[1])
