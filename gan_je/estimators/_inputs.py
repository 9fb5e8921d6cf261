"""Input checks and the one preparation step every k-NN estimator shares.

Every public estimator turns its arguments into ``(N, D)`` float64 tensors here, so the
error messages and the duplicate rule are the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: Relative size of the deterministic jitter added to every sample (see :func:`prepare`).
JITTER_SCALE = 1e-10
#: Seed of the jitter's generator: the same input always gives the same estimate.
JITTER_SEED = 0


def as_samples(x: Any, name: str) -> Tensor:
    """Return ``x`` as a float64 ``(N, D)`` tensor: samples along dim 0, flattened.

    Accepts tensors, numpy arrays and nested sequences of numbers, of any float, integer or
    bool dtype; a 1-D input is ``N`` scalar samples. Raises ``ValueError`` naming ``name`` for
    anything else: complex or non-numeric data, a 0-dim input, no samples, no features, or
    NaN/Inf values.
    """
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"{name} must be a tensor or array of numbers, got {type(x).__name__} ({err})"
            ) from err
    if x.is_complex() or x.dtype not in _CONVERTIBLE:  # a tensor that requires grad is fine
        raise ValueError(
            f"{name} has dtype {x.dtype}; pass real numbers (a float, integer or bool tensor)"
        )
    if x.ndim == 0:
        raise ValueError(f"{name} is a single number; pass samples of shape (N, ...)")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); pass at least k + 1 samples")
    x = x.detach()  # estimates are not differentiable; differentiable_entropy is
    x = x.reshape(x.shape[0], -1) if x.ndim > 1 else x.reshape(-1, 1)
    if x.shape[1] == 0:
        raise ValueError(f"{name} has samples with no features (shape {tuple(x.shape)})")
    x = x.to(torch.float64)
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(
            f"{name} holds {bad} NaN or Inf value(s); remove or replace them before estimating"
        )
    return x


_CONVERTIBLE = {
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
}


def check_whole(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` if it is a whole number in ``[minimum, maximum]`` (no upper limit
    when ``maximum`` is ``None``), else raise a ``ValueError`` naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        limits = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be a whole number {limits}, got {value!r}")
    return int(value)


def check_ids(
    ids: Any, name: str, length: int | None = None, vocab_size: int | None = None
) -> Tensor:
    """``ids`` as an int64 tensor (on its device) of token ids ``(n >= 1, L >= 1)``: ``L =
    length`` and values in ``range(vocab_size)`` where given, else values >= 0. The one
    check of token ids; a ``ValueError`` naming ``name`` for anything else."""
    if (
        not isinstance(ids, Tensor)
        or ids.dtype.is_floating_point
        or ids.dtype.is_complex
        or ids.dtype == torch.bool
    ):
        got = f"{ids.dtype} tensor" if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(
            f"{name} must be token ids, an integer tensor (n, L), got a {got}; take "
            f"argmax(dim=-1) of one-hot samples"
        )
    wanted = "L >= 1" if length is None else str(length)
    if ids.ndim != 2 or 0 in ids.shape or (length is not None and ids.shape[1] != length):
        raise ValueError(f"{name} must have shape (n >= 1, {wanted}), got {tuple(ids.shape)}")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or (vocab_size is not None and high >= vocab_size):
        allowed = ">= 0" if vocab_size is None else f"in range({vocab_size})"
        raise ValueError(f"{name} must lie {allowed}, got values from {low} to {high}")
    return ids.to(torch.int64)


def check_k(k: Any) -> int:
    """Return ``k`` if it is a whole number >= 1, else raise ``ValueError``."""
    return check_whole(k, "k", minimum=1)


def check_enough(x: Tensor, k: int, name: str) -> None:
    """Raise ``ValueError`` unless ``x`` has more than ``k`` samples."""
    if x.shape[0] <= k:
        raise ValueError(
            f"{name} has {x.shape[0]} samples but k={k}: a k-NN estimate needs more than k "
            f"samples; pass more samples or a smaller k"
        )


def check_paired(xs: Sequence[Tensor], names: Sequence[str]) -> None:
    """Raise ``ValueError`` unless every variable has the same number of samples."""
    sizes = {name: x.shape[0] for x, name in zip(xs, names, strict=True)}
    if len(set(sizes.values())) > 1:
        raise ValueError(
            f"paired variables need the same number of samples, got {sizes}; "
            f"row i of each must come from the same draw"
        )


def check_same_features(p: Tensor, q: Tensor) -> None:
    """Raise ``ValueError`` unless two sample sets live in the same space."""
    if p.shape[1] != q.shape[1]:
        raise ValueError(
            f"p and q must have the same number of features per sample, got {p.shape[1]} "
            f"and {q.shape[1]}"
        )


def label_entropy(n_p: int, n_q: int) -> float:
    """``H(pi) = -pi_p log pi_p - pi_q log pi_q`` in nats, with ``pi_l = N_l / (N_p + N_q)``:
    the entropy of the source label of two pooled sets, the most I(S; L) can be (log 2 for
    equal sizes).

    Raises ``ValueError`` unless both sizes are whole numbers >= 1.
    """
    n_p, n_q = check_whole(n_p, "n_p", minimum=1), check_whole(n_q, "n_q", minimum=1)
    shares = (n_p / (n_p + n_q), n_q / (n_p + n_q))
    return -sum(share * math.log(share) for share in shares)


def check_base(base: Any) -> float:
    """Return ``base``, the logarithm base of a result (``2``: bits, ``math.e``: nats), if it
    is a finite number > 0 other than 1 (``log(base)`` finite and not 0), else raise a
    ``ValueError``: the one check of every estimator and metric that takes a ``base``
    (NaN or infinity would turn every result into NaN or 0 without a word)."""
    if (
        isinstance(base, bool)
        or not isinstance(base, int | float | np.integer | np.floating)
        or not 0 < base < math.inf
        or base == 1
    ):
        raise ValueError(f"base must be a finite number > 0 other than 1 (2: bits), got {base!r}")
    return float(base)


def nats_to(value: Tensor, base: float) -> Tensor:
    """Convert a value in nats to units of ``log(base)`` (``base=2`` gives bits);
    :func:`check_base` checks ``base``."""
    base = check_base(base)
    return value if base == math.e else value / math.log(base)


#: Samples whose spread is beyond ``2**±SAFE_EXPONENT`` are rescaled by a power of two.
SAFE_EXPONENT = 256


def scale_exponent(*xs: Tensor) -> int:
    """The exponent ``e`` by which :func:`rescale` divides samples ``xs`` (one factor for
    all of them): 0 while their largest deviation from the column means lies within
    ``2**±SAFE_EXPONENT``, else its binary exponent. Squared distances of the rescaled
    samples neither underflow nor overflow in float64; dividing by ``2**e`` is exact, so an
    entropy is the rescaled one plus ``d · e · log 2`` and a divergence is unchanged."""
    spread = max(float((x - x.mean(dim=0, keepdim=True)).abs().max()) for x in xs)
    if spread == 0:  # constant samples: their magnitude decides
        spread = max(float(x.abs().max()) for x in xs)
    exponent = math.frexp(spread)[1] if spread > 0 else 0
    return exponent if abs(exponent) > SAFE_EXPONENT else 0


def rescale(x: Tensor, exponent: int) -> Tensor:
    """``x / 2**exponent``, exactly."""
    return x if exponent == 0 else torch.ldexp(x, torch.tensor(-exponent, dtype=x.dtype))


def prepare(x: Tensor, centre: Tensor | None = None, stream: int = 0) -> Tensor:
    """Centre the samples and add the documented deterministic jitter.

    Centring (subtracting the column means, or ``centre`` when two sets share one) changes
    no distance but keeps the float32 candidate search of :mod:`.neighbors` accurate for
    data far from the origin. ``stream`` picks the jitter's draws (the second set of a pair
    gets its own, so that copies across the sets are not jittered alike).

    The duplicate rule: a collapsed generator produces identical samples, whose zero
    neighbour distances would make log-distances -inf. Every value gets a jitter
    ``JITTER_SCALE * s_c * z``, with ``z`` drawn from a generator seeded with
    ``JITTER_SEED`` and ``s_c`` the column's standard deviation (its absolute mean if the
    column is constant, 1 if it is all zeros). It moves estimates by about 1e-10 relative,
    breaks every tie, and is identical from call to call (and on CPU and CUDA). Exact
    duplicates then get a tiny but finite distance: the entropy of a fully collapsed sample
    is very negative, never NaN.
    (``z`` is uniform on [-1, 1): as good as a normal for breaking ties, and cheaper.)
    """
    if x.shape[0] > 1:
        scale, mean = torch.std_mean(x, dim=0, keepdim=True)
    else:
        mean = x.mean(dim=0, keepdim=True)
        scale = torch.zeros_like(mean)
    scale = torch.where(scale > 0, scale, mean.abs())
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    mean = mean if centre is None else centre
    generator = torch.Generator(device="cpu").manual_seed(JITTER_SEED + stream)
    # float32 uniform draws are several times cheaper than float64 normal ones; in-place
    # steps: at N = 10,000 the allocations cost as much as the arithmetic
    noise = torch.rand(x.shape, generator=generator).to(device=x.device, dtype=torch.float64)
    jitter = noise.mul_(2).sub_(1).mul_(JITTER_SCALE * scale)
    return (x - mean).add_(jitter)
