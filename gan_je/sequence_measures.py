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
- The exact per-token Kullback-Leibler divergences, cross-entropy minus entropy:
  KL(p || q) / L = E_p[log p - log q] / L = NLL-test - H(p) / L (the generator's missed
  modes) and KL(q || p) / L = E_q[log q - log p] / L = NLL-oracle - H(q) / L (its bad
  samples). Unlike the JSD, which saturates at log 2 for whole sequences (at L = 20 any
  generator whose per-token KL is above a few tenths reads 0.6931), they keep separating
  generators far from the oracle.
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
from gan_je.errors import ConfigError
from gan_je.estimators import Estimate, flatten_estimates, ngram_jensen_shannon
from gan_je.estimators._inputs import check_ids

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


def per_token(negative_log_probs: Tensor, length: int) -> Estimate:
    """-E[log r(x)] / L from the values -log r(x) ``(n,)`` of n samples: NLL-oracle
    (r = p, samples of q), NLL-test (r = q, held-out samples of p) or an entropy per token
    (r the samples' own distribution), with the mean's standard error, both divided by
    ``length`` L."""
    mean, se = mean_with_se(negative_log_probs)
    return Estimate(mean / length, se / length)


def jensen_shannon_from_log_probs(
    log_p_of_p: Tensor, log_q_of_p: Tensor, log_p_of_q: Tensor, log_q_of_q: Tensor
) -> Estimate:
    """JSD(p, q) = 1/2 E_p[log p - log m] + 1/2 E_q[log q - log m] with m = (p + q) / 2, by
    Monte Carlo, in nats per sequence, from both models' log-likelihoods of samples of p
    (``log_p_of_p``, ``log_q_of_p``, ``(n_p,)``) and of samples of q (``(n_q,)``).
    log m = logaddexp(log p, log q) - log 2, so no likelihood underflows; each term lies in
    (-inf, log 2]. The standard error is sqrt(var_p / (4 n_p) + var_q / (4 n_q)), that of
    the two independent means."""
    log_2 = math.log(2)
    on_p = mean_with_se(log_p_of_p - (torch.logaddexp(log_p_of_p, log_q_of_p) - log_2))
    on_q = mean_with_se(log_q_of_q - (torch.logaddexp(log_p_of_q, log_q_of_q) - log_2))
    return Estimate(0.5 * (on_p.value + on_q.value), 0.5 * torch.sqrt(on_p.se**2 + on_q.se**2))


def kl_per_token(log_own: Tensor, log_other: Tensor, length: int) -> Estimate:
    """KL(r || s) / L = E_r[log r(x) - log s(x)] / L by Monte Carlo over samples x of r,
    from ``log_own`` = log r(x) and ``log_other`` = log s(x) ``(n,)``, nats per token:
    the cross-entropy per token minus r's entropy per token, computed from the
    per-sequence differences, so the standard error is that of their mean (not the sum of
    the two terms' errors: the terms are strongly correlated). ``+inf`` where s gives a
    sample of r probability 0."""
    if log_own.shape != log_other.shape or log_own.ndim != 1:
        raise ValueError(
            f"log-likelihoods of the same samples must both have shape (n,), got "
            f"{tuple(log_own.shape)} and {tuple(log_other.shape)}"
        )
    return per_token(log_own - log_other, length)


def exact_jensen_shannon(
    p: SequenceModel, q: SequenceModel, p_samples: Tensor, q_samples: Tensor
) -> Estimate:
    """JSD(p, q) of two models from ``p_samples`` (drawn from p) and ``q_samples`` (from q):
    :func:`jensen_shannon_from_log_probs` of their log-likelihoods."""
    return jensen_shannon_from_log_probs(
        log_probs(p, p_samples),
        log_probs(q, p_samples),
        log_probs(p, q_samples),
        log_probs(q, q_samples),
    )


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
      ``nll_test`` and ``entropy_per_token_fake``; with both, ``jsd_exact`` and the
      per-token ``kl_oracle_generator`` = KL(p || q) / L and ``kl_generator_oracle`` =
      KL(q || p) / L (:func:`kl_per_token`).

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
    length = fake_ids.shape[1]
    if oracle is not None:  # held-out ids are samples of p
        log_p_of_q, log_p_of_p = log_probs(oracle, fake_ids), log_probs(oracle, held_out_ids)
        estimates["nll_oracle"] = per_token(-log_p_of_q, length)
        estimates["entropy_per_token_oracle"] = per_token(-log_p_of_p, length)
    if callable(getattr(generator, "log_prob", None)):  # fake ids are samples of q
        log_q_of_p, log_q_of_q = log_probs(generator, held_out_ids), log_probs(generator, fake_ids)
        estimates["nll_test"] = per_token(-log_q_of_p, length)
        estimates["entropy_per_token_fake"] = per_token(-log_q_of_q, length)
        if oracle is not None:
            estimates["jsd_exact"] = jensen_shannon_from_log_probs(
                log_p_of_p, log_q_of_p, log_p_of_q, log_q_of_q
            )
            estimates["kl_oracle_generator"] = kl_per_token(log_p_of_p, log_q_of_p, length)
            estimates["kl_generator_oracle"] = kl_per_token(log_q_of_q, log_p_of_q, length)
    estimates |= ngram_divergences(fake_ids, held_out_ids, train_ids, orders)
    return flatten_estimates(estimates)


def measure_against_data(
    fake_ids: Tensor,
    data: Any,
    generator: Any = None,
    orders: Sequence[int] = (1, 2, 3, 4),
    seed: int = 0,
    split: str = "val",
) -> dict[str, Tensor]:
    """:func:`sequence_measures` of generated ids against a token data module ``data``:
    as many sequences of its ``split`` (``val_ids``, or ``train_ids`` for ``"train"``) as
    generated ones, for a held-out split the floor from as many ``train_ids`` (where it has
    them), and its ``oracle`` (where it has one); both subsets drawn with a generator seeded
    by ``seed``. The one rule of the ``SequenceMeasures`` callback and of ``evaluate``."""
    if split not in ("val", "train"):
        raise ValueError(f"split must be val or train, got {split!r}")
    subset = torch.Generator().manual_seed(seed)
    n = check_ids(fake_ids, "fake_ids").shape[0]

    def some(ids: Tensor) -> Tensor:
        return ids[torch.randperm(len(ids), generator=subset)[:n]]

    train_ids = getattr(data, "train_ids", None)
    held_out = some(getattr(data, f"{split}_ids"))
    floor = some(train_ids) if split == "val" and train_ids is not None else None
    oracle = getattr(data, "oracle", None)
    return sequence_measures(fake_ids, held_out, floor, oracle, generator, orders)


def check_enough_sequences(data: Any, n: int, setting: str, splits: Sequence[str]) -> None:
    """Before any sequence is drawn, refuse (naming ``setting``, the number ``n`` of generated
    sequences) a token data module whose ``<split>_ids`` hold fewer than ``n`` sequences for
    one of ``splits``: :func:`measure_against_data` takes as many held-out sequences as
    generated ones, and the real floor as many training ones."""
    sizes = {split: len(getattr(data, f"{split}_ids")) for split in splits}
    if any(size < n for size in sizes.values()):
        held = ", ".join(f"{size} {split}" for split, size in sizes.items())
        raise ConfigError(
            f"{setting}={n} needs as many sequences in the {' and '.join(splits)} split(s), "
            f"which hold {held}: lower {setting} or use more data"
        )


#: The keys :func:`sequence_measures` may return (n-gram orders 1 to 4).
KEYS = (
    *("nll_oracle", "nll_oracle_se", "nll_test", "nll_test_se"),
    *("entropy_per_token_fake", "entropy_per_token_fake_se"),
    *("entropy_per_token_oracle", "entropy_per_token_oracle_se", "jsd_exact", "jsd_exact_se"),
    *("kl_oracle_generator", "kl_oracle_generator_se"),
    *("kl_generator_oracle", "kl_generator_oracle_se"),
    *(f"js_{n}" for n in range(1, 5)),
    *(f"js_{n}_real" for n in range(1, 5)),
)
