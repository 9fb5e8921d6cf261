"""k-nearest-neighbour estimators of entropy, mutual information and the Jensen-Shannon
divergence, from samples alone.

All functions take ``(N, ...)`` tensors or arrays (flattened per sample), return a 0-dim
float64 tensor on the input's device (with ``return_se``, an :class:`.Estimate`; the
convention is in :mod:`.resampling`), in nats unless ``base`` says otherwise, and share the
exact neighbour engine of :mod:`.neighbors` and the input rules of :mod:`._inputs`
(including the documented jitter that makes duplicates safe).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ._inputs import (
    as_samples,
    check_base,
    check_enough,
    check_k,
    check_paired,
    check_same_features,
    label_entropy,
    nats_to,
    prepare,
    rescale,
    scale_exponent,
)
from .classifier import classifier_jensen_shannon
from .neighbors import count_within, kth_neighbor, kth_within_label, log_unit_ball_volume
from .resampling import Estimate, halvings, with_se


def _digamma(x: Tensor | float) -> Tensor:
    return torch.special.digamma(torch.as_tensor(x, dtype=torch.float64))


def _mean_log(values: Tensor) -> Tensor:
    """``mean(log(values))``, a 0-dim float64 tensor on the values' device.

    CPU tensors that need no gradient go through numpy: a parallel torch operation leaves
    torch's OpenMP threads spinning for milliseconds, and they slow the k-d tree query of a
    following estimate (entropy at N = 10,000, d = 2, called back to back: 11 ms instead
    of 8 ms).
    """
    if values.device.type != "cpu" or values.requires_grad:
        return values.log().mean()
    return torch.tensor(np.log(values.numpy()).mean(), dtype=torch.float64)


def _kl_entropy(sq_rho: Tensor, d: int, k: int) -> Tensor:
    """Kozachenko-Leonenko formula from squared k-th neighbour distances, in nats."""
    n = sq_rho.shape[0]
    mean_log_rho = 0.5 * _mean_log(sq_rho)
    return _digamma(n) - _digamma(k) + log_unit_ball_volume(d) + d * mean_log_rho


def _kozachenko_leonenko(x: Tensor, k: int, backend: str) -> Tensor:
    """KL entropy of prepared samples ``x`` (N, d), in nats."""
    return _kl_entropy(kth_neighbor(x, k, backend)[0], x.shape[1], k)


def entropy(
    x: Any, k: int = 3, base: float = math.e, backend: str = "auto", return_se: bool | int = False
) -> Tensor | Estimate:
    """Kozachenko-Leonenko estimate of the differential entropy H(X).

    ``H = psi(N) - psi(k) + log V_d + (d/N) sum_i log rho_i``, where ``rho_i`` is the
    Euclidean distance from ``x_i`` to its k-th nearest other sample and ``V_d`` the volume of
    the unit d-ball (Kozachenko & Leonenko 1987; Kraskov et al. 2004, eq. 20).

    Args:
        x: samples, shape ``(N, ...)``; each sample is flattened to ``d`` numbers.
        k: neighbour order; larger k lowers variance and raises bias.
        base: logarithm base of the result (``math.e``: nats, ``2``: bits).
        backend: neighbour search, see :mod:`gan_je.estimators.neighbors`.

    Any finite scale works: samples whose spread lies beyond ``2**±256`` (where squared
    distances would underflow or overflow) are divided by a power of two, exactly, and
    ``d · log`` of it is added back, so ``entropy(c · x) = entropy(x) + d log c``.

    With ``return_se=True`` returns an :class:`.Estimate` ``(value, se)``, the error from
    random halves of the samples (:mod:`.resampling`; a whole number sets how many halvings).
    Every estimator here takes ``return_se`` the same way. The standard error is the
    sampling error only: the estimate's bias (which grows with ``d`` and depends on the
    distribution: +0.87 nats on a uniform 8-cube at N = 10,000, 75 standard errors) is not
    in it; ``docs/estimators.md`` tabulates it, and :func:`.weighted.extrapolated_entropy`
    reduces it where that table shows it does.
    """
    check_base(base)
    k = check_k(k)
    x = as_samples(x, "x")
    check_enough(x, k, "x")
    exponent = scale_exponent(x)
    h = _kozachenko_leonenko(prepare(rescale(x, exponent)), k, backend)
    value = nats_to(h + x.shape[1] * exponent * math.log(2), base)
    return with_se(
        value, return_se, lambda h: entropy(h, k=k, base=base, backend=backend), [[x]], k + 1
    )


def differentiable_entropy(x: Tensor, k: int = 3, backend: str = "auto") -> Tensor:
    """Kozachenko-Leonenko entropy of a batch ``x`` (N, ...) that gradients flow through.

    The same estimate as :func:`entropy`, ``psi(N) - psi(k) + log V_d + (d/N) sum log rho_i``,
    with each sample's k-th neighbour ``j(i)`` chosen without gradient (the exact search on a
    detached copy) and ``rho_i^2 = |x_i - x_j(i)|^2 + eps^2`` recomputed from ``x``, so
    ``dH/dx_i = (d/N) sum over the pairs containing i of (x_i - x_j) / rho^2``: ascending it
    pushes every sample away from its k-th neighbour, most strongly where samples crowd
    (a collapsing generator). ``eps = 1e-6`` times the batch's mean column standard deviation
    keeps coincident samples finite. Returns a 0-dim tensor in nats with ``x``'s dtype; an
    integer or bool ``x`` (no gradient flows through it) is read as float64, as every
    estimator reads it (:func:`._inputs.as_samples`), and gives a float64 result.
    """
    k = check_k(k)
    if not isinstance(x, Tensor) or x.ndim < 2:
        raise ValueError("x must be a (N, ...) tensor with at least one feature per sample")
    flat = x.flatten(1)
    if not (flat.is_floating_point() or flat.is_complex()):  # complex: refused below
        flat = flat.double()
    detached = prepare(as_samples(flat.detach(), "x"))
    check_enough(detached, k, "x")
    _, neighbour = kth_neighbor(detached, k, backend)
    eps = 1e-6 * float(detached.std(dim=0).mean()) + 1e-30
    sq_rho = (flat - flat[neighbour.to(flat.device)]).square().sum(dim=1) + eps**2
    return _kl_entropy(sq_rho.double(), flat.shape[1], k).to(flat.dtype)


def joint_entropy(
    *xs: Any, k: int = 3, base: float = math.e, backend: str = "auto", return_se: bool | int = False
) -> Tensor | Estimate:
    """Joint entropy H(X_1, ..., X_m): the Kozachenko-Leonenko estimate on the concatenation.

    Row i of every variable must come from the same draw. ``H(X, Y) <= H(X) + H(Y)``, with
    equality only for independent variables: it is not the sum of the entropies.
    """
    check_base(base)
    if not xs:
        raise ValueError("joint_entropy needs at least one variable")
    k = check_k(k)
    names = [f"xs[{i}]" for i in range(len(xs))]
    samples = [as_samples(x, name) for x, name in zip(xs, names, strict=True)]
    check_paired(samples, names)
    check_enough(samples[0], k, names[0])
    joint = torch.cat(samples, dim=1)
    exponent = scale_exponent(joint)
    h = _kozachenko_leonenko(prepare(rescale(joint, exponent)), k, backend)
    value = nats_to(h + joint.shape[1] * exponent * math.log(2), base)
    return with_se(
        value, return_se, lambda j: entropy(j, k=k, base=base, backend=backend), [[joint]], k + 1
    )


def conditional_entropy(
    x: Any,
    y: Any,
    k: int = 3,
    base: float = math.e,
    backend: str = "auto",
    return_se: bool | int = False,
) -> Tensor | Estimate:
    """Conditional entropy ``H(X | Y) = H(X, Y) - H(Y)``, both terms Kozachenko-Leonenko."""

    check_base(base)

    def difference(x: Any, y: Any) -> Tensor:
        h_xy = joint_entropy(x, y, k=k, base=base, backend=backend)
        return h_xy - entropy(y, k=k, base=base, backend=backend)

    value = difference(x, y)
    groups = [[as_samples(x, "x"), as_samples(y, "y")]] if halvings(return_se) else []
    return with_se(value, return_se, difference, groups, k + 1)


def mutual_information(
    x: Any,
    y: Any,
    k: int = 3,
    base: float = math.e,
    backend: str = "auto",
    return_se: bool | int = False,
) -> Tensor | Estimate:
    """KSG estimate of the mutual information I(X; Y) (Kraskov, Stoegbauer, Grassberger 2004,
    algorithm 1).

    In the joint space the distance is ``max(|x - x'|, |y - y'|)`` (Euclidean norm within each
    variable); ``eps_i`` is the distance to the k-th joint neighbour,
    ``n_x(i) = #{j != i : |x_j - x_i| < eps_i}`` (strictly), likewise ``n_y``, and
    ``I = psi(k) + psi(N) - < psi(n_x + 1) + psi(n_y + 1) >``. Radii and counts come from the
    same distance values. Finite-sample estimates can dip slightly below zero. A variable
    whose spread lies beyond ``2**±256`` is first rescaled by a power of two (the true MI is
    scale-invariant; KSG's value depends on the variables' relative scale).
    """
    check_base(base)
    k = check_k(k)
    x, y = as_samples(x, "x"), as_samples(y, "y")
    check_paired([x, y], ["x", "y"])
    check_enough(x, k, "x")
    samples = [x, y]
    x, y = prepare(rescale(x, scale_exponent(x))), prepare(rescale(y, scale_exponent(y)))
    sq_eps, neighbour = kth_neighbor([x, y], k, backend)
    n_x = count_within(x, sq_eps, inclusive=False, backend=backend, defining=neighbour)
    n_y = count_within(y, sq_eps, inclusive=False, backend=backend, defining=neighbour)
    n = x.shape[0]
    mi = _digamma(k) + _digamma(n) - (_digamma(n_x + 1) + _digamma(n_y + 1)).mean()

    def halves(x: Tensor, y: Tensor) -> Tensor:
        return mutual_information(x, y, k=k, base=base, backend=backend)

    return with_se(nats_to(mi, base), return_se, halves, [samples], k + 1)


def jensen_shannon(
    p: Any,
    q: Any,
    k: int = 3,
    base: float = math.e,
    backend: str = "auto",
    return_se: bool | int = False,
    method: str = "knn",
) -> Tensor | Estimate:
    """Jensen-Shannon divergence between the distributions of two sample sets, as the mutual
    information I(S; L) between a pooled sample S and its source label L, estimated with
    Ross's discrete-continuous k-NN estimator (Ross 2014, PLoS ONE 9(2): e87357).

    For each pooled sample i with label l_i: ``d_i`` is the distance to its k-th nearest
    neighbour among samples with the same label, ``m_i = #{j != i : |x_j - x_i| <= d_i}``
    over all samples, and ``I = psi(N) - <psi(N_{l_i})> + psi(k) - <psi(m_i)>``.

    With equal sizes the label prior is uniform and ``I(S; L) = JSD(P || Q)`` in
    ``[0, log 2]``. With sizes ``N_p != N_q`` the prior is ``(N_p/N, N_q/N)`` and the result
    is the weighted JSD ``H(pi_p P + pi_q Q) - pi_p H(P) - pi_q H(Q)``, bounded by the label
    entropy. Finite-sample estimates can dip slightly below zero.

    ``method="classifier"`` estimates the same I(S; L) with a cross-fitted classifier
    instead (:func:`.classifier.classifier_jensen_shannon`, ``k`` and ``backend`` unused):
    a lower bound in expectation that holds up in high dimension, where the k-NN estimate
    of a variance mismatch collapses (beyond about d = 8) and turns negative (d = 32).
    """
    check_base(base)
    if method == "classifier":
        return classifier_jensen_shannon(p, q, base=base, return_se=return_se)
    if method != "knn":
        raise ValueError(f"method must be 'knn' or 'classifier', got {method!r}")
    k = check_k(k)
    pair = _pooled(p, q, k, names=("p", "q"))  # a divergence: no scale to restore
    pooled, n_p = pair.pooled, pair.n_p
    _, _, count = kth_within_label(pooled, n_p, k, backend)
    value = nats_to(_ross_jsd(n_p, pooled.shape[0], count, k), base)

    def halves(p: Tensor, q: Tensor) -> Tensor:
        return jensen_shannon(p, q, k=k, base=base, backend=backend)

    return with_se(value, return_se, halves, [[pair.inputs[0]], [pair.inputs[1]]], k + 1)


class _Pair(NamedTuple):
    """Two sample sets prepared for one pooled search (see :func:`_pooled`)."""

    pooled: Tensor  # (N_p + N_q, d): p's rows, then q's
    n_p: int
    exponent: int  # both were divided by 2**exponent
    sets: tuple[Tensor, Tensor]  # p and q, rescaled, before centring and jitter
    centre: Tensor
    inputs: tuple[Tensor, Tensor]  # p and q as given (as float64 (N, D) samples)


def _pooled(p: Any, q: Any, k: int, names: tuple[str, str]) -> _Pair:
    """Check two sample sets and prepare them for one pooled search, rescaled together by
    ``2**e`` (:func:`scale_exponent`). Each set gets its own jitter, following its own
    spread, so that its entropy does not depend on the other set; both are centred on the
    pooled mean; the second draws its jitter from another stream, so that copies across the
    sets stay apart."""
    p, q = as_samples(p, names[0]), as_samples(q, names[1])
    check_same_features(p, q)
    check_enough(p, k, names[0])
    check_enough(q, k, names[1])
    exponent = scale_exponent(p, q)
    inputs = (p, q)
    p, q = rescale(p, exponent), rescale(q, exponent)
    centre = torch.cat([p, q]).mean(dim=0, keepdim=True)
    pooled = torch.cat([prepare(p, centre), prepare(q, centre, stream=1)])
    return _Pair(pooled, p.shape[0], exponent, (p, q), centre, inputs)


def _set_entropy(pair: _Pair, which: int, sq_d: Tensor, k: int, backend: str) -> Tensor:
    """KL entropy of one set of a pair from its within-set radii ``sq_d`` in the pooled
    frame; searched again in the set's own frame when the pooled centre lies more than
    2**20 of its spreads away (the pooled coordinates would have lost its precision)."""
    x = pair.sets[which]
    own_centre = x.mean(dim=0, keepdim=True)
    spread = float((x - own_centre).abs().max())
    if float((own_centre - pair.centre).abs().max()) <= spread * 2.0**20:
        return _kl_entropy(sq_d, x.shape[1], k)
    return _kozachenko_leonenko(prepare(x, stream=which), k, backend)


def _ross_jsd(n_p: int, n: int, count: Tensor, k: int) -> Tensor:
    """Ross's estimate of I(S; L) from the pooled counts ``m_i`` of
    :func:`.neighbors.kth_within_label`, in nats."""
    n_q = n - n_p
    mean_psi_label = (n_p * _digamma(n_p) + n_q * _digamma(n_q)) / n
    return _digamma(n) - mean_psi_label + _digamma(k) - _digamma(count).mean()


def compare_samples(
    real: Any,
    fake: Any,
    k: int = 3,
    base: float = math.e,
    backend: str = "auto",
    return_se: bool | int = False,
) -> dict[str, Tensor] | dict[str, Estimate]:
    """Entropies and divergence of two sample sets from shared neighbour searches.

    Returns ``entropy_real`` H(P), ``entropy_fake`` H(Q), ``entropy_mixture`` H(M) of the
    pooled samples, ``joint_entropy`` H(S, L) = H(L) + pi_p H(P) + pi_q H(Q) (with equal sizes
    ``log 2 + (H(P) + H(Q)) / 2``) and ``jsd`` I(S; L) (:func:`jensen_shannon`). The
    within-label neighbour distances serve both the entropies and the JSD. Each set's entropy
    depends on that set alone (its own jitter; its own frame when the other set is so far
    away or so much larger that the pooled coordinates lose its precision). With
    ``return_se=True`` every value is an :class:`.Estimate` with its standard error (all
    from the same random halves, :mod:`.resampling`).
    """
    check_base(base)
    k = check_k(k)
    pair = _pooled(real, fake, k, names=("real", "fake"))
    pooled, n_p = pair.pooled, pair.n_p
    n, d = pooled.shape
    shift = d * pair.exponent * math.log(2)  # entropies of the rescaled samples, scaled back
    sq_d, _, count = kth_within_label(pooled, n_p, k, backend)
    h_real = _set_entropy(pair, 0, sq_d[:n_p], k, backend) + shift
    h_fake = _set_entropy(pair, 1, sq_d[n_p:], k, backend) + shift
    pi_p, pi_q = n_p / n, 1 - n_p / n
    h_label = label_entropy(n_p, n - n_p)
    nats = {
        "entropy_real": h_real,
        "entropy_fake": h_fake,
        "entropy_mixture": _kozachenko_leonenko(pooled, k, backend) + shift,
        "joint_entropy": h_label + pi_p * h_real + pi_q * h_fake,
        "jsd": _ross_jsd(n_p, n, count, k),
    }
    result = {key: nats_to(value, base) for key, value in nats.items()}

    def halves(real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        return compare_samples(real, fake, k=k, base=base, backend=backend)

    return with_se(result, return_se, halves, [[pair.inputs[0]], [pair.inputs[1]]], k + 1)


class SlicedJensenShannon(NamedTuple):
    """Result of :func:`sliced_jensen_shannon`: mean and max over projections, and each one
    (with ``return_se``, each an :class:`.Estimate`)."""

    mean: Tensor | Estimate
    max: Tensor | Estimate
    per_projection: Tensor | Estimate


def random_projections(
    d: int, dim: int, n_projections: int, seed: int, device: torch.device | str = "cpu"
) -> Tensor:
    """``(n_projections, d, dim)`` random orthonormal frames (QR of Gaussian matrices)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    gauss = torch.randn(n_projections, d, dim, generator=generator, dtype=torch.float64)
    frames, _ = torch.linalg.qr(gauss)
    return frames.to(device)


def sliced_jensen_shannon(
    p: Any,
    q: Any,
    dim: int = 2,
    n_projections: int = 16,
    k: int = 3,
    seed: int = 0,
    base: float = math.e,
    backend: str = "auto",
    return_se: bool | int = False,
) -> SlicedJensenShannon:
    """The Ross JSD estimate on ``n_projections`` random ``dim``-dimensional orthogonal
    projections of both sample sets (the same projections for both, seeded).

    Each projection's JSD is a lower bound on the full JSD (data processing inequality), and
    low dimension is where the k-NN estimate works: in d = 16 the full estimate of a pure
    variance mismatch reads about 0 while the slices still see it. ``dim`` is capped at the
    data's dimension. Returns the mean, the max and every projection's value; with
    ``return_se=True`` each of the three is an :class:`.Estimate` with its standard error
    (from the same random halves).
    """
    check_base(base)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a whole number >= 1, got {dim!r}")
    if isinstance(n_projections, bool) or not isinstance(n_projections, int) or n_projections < 1:
        raise ValueError(f"n_projections must be a whole number >= 1, got {n_projections!r}")
    p, q = as_samples(p, "p"), as_samples(q, "q")
    check_same_features(p, q)
    frames = random_projections(p.shape[1], min(dim, p.shape[1]), n_projections, seed, p.device)
    values = torch.stack(
        [jensen_shannon(p @ frame, q @ frame, k=k, base=base, backend=backend) for frame in frames]
    )
    result = SlicedJensenShannon(values.mean(), values.max(), values)

    def halves(p: Tensor, q: Tensor) -> SlicedJensenShannon:
        return sliced_jensen_shannon(p, q, dim, n_projections, k, seed, base, backend)

    return with_se(result, return_se, halves, [[p], [q]], k + 1)
