"""Bias-corrected k-NN entropy: plain Kozachenko-Leonenko (k = 3), the weighted estimator of
Berrett, Samworth & Yuan (2019) and the subsample extrapolation on distributions of known
entropy, printed as a Markdown table.

    python benchmarks/weighted_entropy.py            # d = 1..64, N = 2,000 and 10,000, 3 seeds
    python benchmarks/weighted_entropy.py --quick    # d = 1, 4, 16, 32, N = 2,000, 1 seed
    python benchmarks/weighted_entropy.py --dims 32 --ns 20000 40000 80000 --seeds 4 \
        --no-weighted                                # how large N must be at d = 32
    python benchmarks/weighted_entropy.py --distributions Laplace^d "uniform [0, 2]^d" \
        --dims 8 16 32 --ns 10000 --no-weighted      # off the Gaussians

The default table holds two Gaussians, ``N(0, I_d)`` and a correlated ``N(0, Sigma)``.

Each cell is the relative error ``(estimate - truth) / truth`` in percent, mean +- standard
deviation over the seeds (one seed: the value alone). ``weighted`` uses the paper's
``m = floor(d/4)`` moment conditions and ``k = default_k(d)``; ``weighted m=1`` the same
orders with one condition only (the estimates with every order are computed once and
combined with both weight vectors). ``|w|_1`` is the paper weights' absolute sum: the factor
by which they can amplify the noise of the per-order estimates. Times are one call's wall
seconds (median over the seeds) on this machine.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable

import torch
from scipy.special import digamma

from gan_je.estimators import entropy
from gan_je.estimators.weighted import (
    default_k,
    extrapolated_entropy,
    kl_entropies,
    kl_weights,
)
from gan_je.tables import markdown_table

FULL = {"dims": (1, 2, 4, 8, 16, 32, 64), "ns": (2_000, 10_000), "seeds": 3}
QUICK = {"dims": (1, 4, 16, 32), "ns": (2_000,), "seeds": 1}


def standard(n: int, d: int, gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """``n`` draws of ``N(0, I_d)`` and its entropy ``d/2 log(2 pi e)``."""
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x, 0.5 * d * math.log(2 * math.pi * math.e)


def correlated(n: int, d: int, gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """``n`` draws of ``N(0, Sigma)``, ``Sigma = A A^T / d + I / 2`` with ``A`` seeded by
    ``d`` alone (unequal variances, correlations), and ``1/2 log det(2 pi e Sigma)``."""
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(1000 + d), dtype=torch.float64)
    cov = a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64)
    truth = 0.5 * (d * math.log(2 * math.pi * math.e) + torch.logdet(cov).item())
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    return x, truth


def laplace(n: int, d: int, gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """``n`` draws of ``d`` independent standard Laplace variables (heavier tails, a kink at
    0) and their entropy ``d (1 + log 2)``."""
    u = torch.rand(n, d, generator=gen, dtype=torch.float64)
    e = -torch.log1p(-u)  # Exp(1)
    sign = torch.randint(0, 2, (n, d), generator=gen, dtype=torch.float64) * 2 - 1
    return sign * e, d * (1 + math.log(2))


def cube(n: int, d: int, gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """``n`` draws uniform on ``[0, 2]^d`` (edges: the bias falls as ``N^(-1/d)``) and its
    entropy ``d log 2``."""
    return 2 * torch.rand(n, d, generator=gen, dtype=torch.float64), d * math.log(2)


def student_t_entropy(d: int, df: float = 3.0) -> float:
    """Differential entropy (nats) of the standard multivariate Student-t with ``df``
    degrees of freedom in ``d`` dimensions (identity shape matrix):
    ``log Gamma(df/2) - log Gamma((df+d)/2) + d/2 log(df pi)
    + (df+d)/2 (psi((df+d)/2) - psi(df/2))``."""
    half, half_total = df / 2, (df + d) / 2
    return (
        math.lgamma(half)
        - math.lgamma(half_total)
        + 0.5 * d * math.log(df * math.pi)
        + half_total * (digamma(half_total) - digamma(half))
    )


def student_t(n: int, d: int, gen: torch.Generator) -> tuple[torch.Tensor, float]:
    """``n`` draws of the standard multivariate Student-t with 3 degrees of freedom (heavy
    tails: no fourth moment), ``z / sqrt(chi2_3 / 3)`` with ``z ~ N(0, I_d)``, and its
    entropy (:func:`student_t_entropy`)."""
    z = torch.randn(n, d, generator=gen, dtype=torch.float64)
    chi2 = torch.randn(n, 3, generator=gen, dtype=torch.float64).square().sum(1, keepdim=True)
    return z / torch.sqrt(chi2 / 3), student_t_entropy(d, 3.0)


DISTRIBUTIONS: dict[str, Callable[[int, int, torch.Generator], tuple[torch.Tensor, float]]] = {
    "N(0, I)": standard,
    "N(0, Sigma)": correlated,
    "Laplace^d": laplace,
    "uniform [0, 2]^d": cube,
    "Student-t 3 dof": student_t,
}
#: The distributions of the default table; the others on request (``--distributions``).
DEFAULT_DISTRIBUTIONS = ("N(0, I)", "N(0, Sigma)")


def timed(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def summary(errors: list[float]) -> str:
    """``mean +- sd`` of relative errors in percent (the value alone for one seed; ``—``
    for none)."""
    if not errors:
        return "—"
    mean = statistics.fmean(errors)
    if len(errors) == 1:
        return f"{mean:+.2f} %"
    return f"{mean:+.2f} ± {statistics.stdev(errors):.2f} %"


def row(name: str, d: int, n: int, seeds: int, weighted: bool = True) -> list[str]:
    """One table row: every estimator on ``seeds`` fresh samples of ``name`` in ``d``, ``N``
    (the weighted ones only when ``weighted``: they query the neighbours once per order)."""
    k = default_k(d)
    orders, paper = kl_weights(d, k)
    _, one = kl_weights(d, k, moments=min(1, d // 4))
    errors: dict[str, list[float]] = {"kl": [], "weighted": [], "m1": [], "extrapolated": []}
    seconds: dict[str, list[float]] = {"kl": [], "weighted": [], "extrapolated": []}
    for seed in range(seeds):
        gen = torch.Generator().manual_seed(10**6 * seed + 1000 * d + n // 1000)
        x, truth = DISTRIBUTIONS[name](n, d, gen)
        kl, seconds_kl = timed(lambda x=x: entropy(x, k=3))
        extrapolated, seconds_e = timed(lambda x=x: extrapolated_entropy(x))
        values = {"kl": kl, "extrapolated": extrapolated}
        seconds["kl"].append(seconds_kl)
        seconds["extrapolated"].append(seconds_e)
        if weighted:
            per_order, seconds_w = timed(lambda x=x: kl_entropies(x, orders))
            values.update(weighted=paper @ per_order, m1=one @ per_order)
            seconds["weighted"].append(seconds_w)
        for key, value in values.items():
            errors[key].append(100 * (value.item() - truth) / truth)
    cells = [
        name,
        str(d),
        f"{n:,}",
        f"{truth:.3f}",
        summary(errors["kl"]),
        summary(errors["weighted"]),
        f"{k} / {d // 4}",
        f"{paper.abs().sum().item():.3g}",
        summary(errors["m1"]),
        summary(errors["extrapolated"]),
        " / ".join(
            f"{statistics.median(seconds[key]):.2f}" if seconds[key] else "—" for key in seconds
        ),
    ]
    print(" | ".join(cells), file=sys.stderr, flush=True)
    return cells


HEADER = [
    "distribution",
    "d",
    "N",
    "truth (nats)",
    "KL k=3",
    "weighted",
    "weighted k / m",
    "weighted |w|_1",
    "weighted m=1",
    "extrapolated (k=3, 5 sizes)",
    "seconds KL / weighted / extrapolated",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small subset (about a minute)")
    parser.add_argument("--seeds", type=int, help="samples per cell (default 3; quick: 1)")
    parser.add_argument("--dims", type=int, nargs="+", help="dimensions (default: all)")
    parser.add_argument("--ns", type=int, nargs="+", help="sample sizes (default: all)")
    parser.add_argument(
        "--distributions",
        nargs="+",
        choices=list(DISTRIBUTIONS),
        help=f"default: {list(DEFAULT_DISTRIBUTIONS)}",
    )
    parser.add_argument(
        "--no-weighted", action="store_true", help="skip the weighted estimator (large N)"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    dims, ns = args.dims or plan["dims"], args.ns or plan["ns"]
    seeds = args.seeds or plan["seeds"]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; relative error in %, "
        f"{seeds} seed(s) per cell\n"
    )
    weighted = not args.no_weighted
    rows = [
        row(name, d, n, seeds, weighted)
        for name in args.distributions or DEFAULT_DISTRIBUTIONS
        for n in ns
        for d in dims
    ]
    print(markdown_table(HEADER, rows))


if __name__ == "__main__":
    main()
