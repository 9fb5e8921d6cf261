"""The Jensen-Shannon divergence in high dimension: the cross-fitted classifier estimate
against the k-NN ones, printed as Markdown tables.

    python benchmarks/jsd_high_dim.py                  # everything
    python benchmarks/jsd_high_dim.py targets          # or: accuracy, calibration
    python benchmarks/jsd_high_dim.py --quick          # small sizes and few draws
    python benchmarks/jsd_high_dim.py --threads 1      # torch.set_num_threads(1) first
    python benchmarks/jsd_high_dim.py targets --draws 3 --repeats 1   # the docs' table

On the 2-core VM shared with other jobs (load average 7-8): ``targets --draws 3 --repeats
1`` 16 minutes, ``accuracy --repeats 1`` 3 minutes, ``calibration --quick`` 3 minutes. The
classifier fits on one torch thread whatever ``--threads`` says; the k-NN estimates use the
threads given (torch's default unless ``--threads``).

Cases, p against q (the classifier's p-label is the first): ``scale s``, N(0, I) against
N(0, s^2 I); ``mixture``, 1/2 N(-3 e1, I) + 1/2 N(3 e1, I) against the Gaussian with the
same mean and covariance, N(0, diag(10, 1, ..., 1)) (the JSD lives in e1 alone and is the
same in every d); ``rotated``, N(0, I) against N(0, R diag(lambda) R^T) with eigenvalues
lambda_i = 2^(-1 + 2 (i - 1) / (d - 1)), log-evenly in [1/2, 2], and a seeded random rotation
R (no coordinate sees the difference: the additive model reads about 0);
``student-t 3``, a multivariate Student-t with 3 degrees of freedom and scale matrix I
(covariance 3 I) against N(0, I); ``student-t 3 matched``, the same t scaled to covariance I.
The truth is a Monte Carlo mean of the exact log densities (float64; scipy's
``multivariate_normal`` and ``multivariate_t`` for the rotated and t cases), with its standard
error, checked against quadrature where the JSD reduces to one dimension (the scale and t
cases to the law of |x|^2, chi-square or d F(d, 3) times the scale, the mixture to x_1).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import integrate, stats

from gan_je.estimators.classifier import classifier_jensen_shannon, cross_fit
from gan_je.estimators.knn import jensen_shannon, sliced_jensen_shannon
from gan_je.tables import markdown_table

MIXTURE_SHIFT = 3.0
STUDENT_DOF = 3
TRUTH_SAMPLES = 1_000_000
TRUTH_CHUNK = 100_000

# ----------------------------------------------------------------------------- cases


def sample(case: str, n: int, d: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """``(p, q)``, ``n`` float64 draws of each in ``d`` dimensions."""
    p = torch.randn(n, d, generator=generator, dtype=torch.float64)
    q = torch.randn(n, d, generator=generator, dtype=torch.float64)
    if case.startswith("scale"):
        q *= float(case.split()[1])
    elif case == "mixture":
        sign = torch.randint(0, 2, (n,), generator=generator).double() * 2 - 1
        p[:, 0] += MIXTURE_SHIFT * sign
        q[:, 0] *= math.sqrt(1 + MIXTURE_SHIFT**2)
    elif case == "rotated":
        q = (q * rotated_eigenvalues(d).sqrt()) @ rotation(d).T
    elif case.startswith("student-t"):  # z / sqrt(w / nu), w ~ chi-square(nu)
        w = torch.randn(n, STUDENT_DOF, generator=generator, dtype=torch.float64)
        p = p / (w.square().mean(dim=1, keepdim=True)).sqrt() * student_scale(case)
    elif case != "equal":
        raise ValueError(f"unknown case {case!r}")
    return p, q


def rotated_eigenvalues(d: int) -> torch.Tensor:
    """The eigenvalues of the rotated case's covariance, log-evenly spaced in [1/2, 2]."""
    return 2.0 ** torch.linspace(-1.0, 1.0, d, dtype=torch.float64)


def rotation(d: int) -> torch.Tensor:
    """A random rotation of R^d, the same for every call with this ``d``."""
    draws = torch.randn(d, d, generator=torch.Generator().manual_seed(777 + d), dtype=torch.float64)
    orthogonal, upper = torch.linalg.qr(draws)
    return orthogonal * torch.sign(torch.diagonal(upper))


def student_scale(case: str) -> float:
    """The t's scale: 1, or sqrt((nu - 2) / nu) for covariance I when ``matched``."""
    return math.sqrt((STUDENT_DOF - 2) / STUDENT_DOF) if case.endswith("matched") else 1.0


def log_densities(case: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p(x), log q(x))``, exact."""
    d = x.shape[1]
    if case == "rotated" or case.startswith("student-t"):
        standard = stats.multivariate_normal(np.zeros(d), np.eye(d))
        if case == "rotated":
            r = rotation(d).numpy()
            other = stats.multivariate_normal(
                np.zeros(d), (r * rotated_eigenvalues(d).numpy()) @ r.T
            )
            densities = (standard, other)
        else:
            shape = student_scale(case) ** 2 * np.eye(d)
            densities = (stats.multivariate_t(np.zeros(d), shape, df=STUDENT_DOF), standard)
        return tuple(torch.from_numpy(np.asarray(f.logpdf(x.numpy()))) for f in densities)
    gauss = -0.5 * d * math.log(2 * math.pi)
    sq = x.square().sum(dim=1)
    if case.startswith("scale"):
        s = float(case.split()[1])
        return gauss - 0.5 * sq, gauss - 0.5 * sq / s**2 - d * math.log(s)
    if case == "mixture":
        a, rest = MIXTURE_SHIFT, sq - x[:, 0].square()
        parts = torch.stack([-0.5 * (x[:, 0] - a).square(), -0.5 * (x[:, 0] + a).square()])
        log_p = gauss - 0.5 * rest + torch.logsumexp(parts, dim=0) - math.log(2)
        var = 1 + a**2
        log_q = gauss - 0.5 * rest - 0.5 * x[:, 0].square() / var - 0.5 * math.log(var)
        return log_p, log_q
    return gauss - 0.5 * sq, gauss - 0.5 * sq


def truth_monte_carlo(case: str, d: int, n: int = TRUTH_SAMPLES) -> tuple[float, float]:
    """``(JSD, standard error)`` by Monte Carlo: ``1/2 E_p[log p/m] + 1/2 E_q[log q/m]``,
    ``m = (p + q)/2``, with ``n`` draws of each in chunks."""
    if case == "equal":
        return 0.0, 0.0
    generator = torch.Generator().manual_seed(12345 + d)
    terms: list[list[torch.Tensor]] = [[], []]
    for start in range(0, n, TRUTH_CHUNK):
        draws = sample(case, min(TRUTH_CHUNK, n - start), d, generator)
        for which, x in enumerate(draws):
            log_p, log_q = log_densities(case, x)
            log_m = torch.logaddexp(log_p, log_q) - math.log(2)
            terms[which].append((log_p if which == 0 else log_q) - log_m)
    t_p, t_q = torch.cat(terms[0]), torch.cat(terms[1])
    value = 0.5 * (t_p.mean() + t_q.mean())
    error = 0.5 * (t_p.var() / n + t_q.var() / n).sqrt()
    return float(value), float(error)


def truth_quadrature(case: str, d: int) -> float:
    """The same JSD by one-dimensional quadrature (NaN for the rotated case)."""
    if case == "equal":
        return 0.0
    if case == "rotated":
        return math.nan
    if case == "mixture":  # only x_1 differs
        a = MIXTURE_SHIFT
        p = lambda t: 0.5 * (stats.norm.pdf(t, -a) + stats.norm.pdf(t, a))  # noqa: E731
        q = stats.norm(0, math.sqrt(1 + a**2)).pdf
        lo, hi = -12 * math.sqrt(1 + a**2), 12 * math.sqrt(1 + a**2)
    elif case.startswith("student-t"):  # |x|^2 is s^2 d F(d, nu) under p, chi-square(d) under q
        c = student_scale(case) ** 2 * d
        p = lambda u: stats.f.pdf(u / c, d, STUDENT_DOF) / c  # noqa: E731
        q = lambda u: stats.chi2.pdf(u, d)  # noqa: E731
        lo, hi = 0.0, math.inf
    else:  # |x|^2 is chi-square(d) under p, s^2 chi-square(d) under q
        s = float(case.split()[1])
        p = lambda u: stats.chi2.pdf(u, d)  # noqa: E731
        q = lambda u: stats.chi2.pdf(u / s**2, d) / s**2  # noqa: E731
        lo, hi = 0.0, stats.chi2.ppf(1 - 1e-15, d) * max(1.0, s**2)

    def integrand(t: float) -> float:
        a_, b_ = p(t), q(t)
        m = 0.5 * (a_ + b_)
        return sum(0.5 * v * math.log(v / m) for v in (a_, b_) if v > 0)

    if hi == math.inf:  # quad takes no break points on an infinite range
        head = integrate.quad(integrand, lo, 4.0 * d, points=[float(d)], limit=500)[0]
        return head + integrate.quad(integrand, 4.0 * d, hi, limit=500)[0]
    points = [-MIXTURE_SHIFT, 0.0, MIXTURE_SHIFT] if case == "mixture" else [float(d)]
    return integrate.quad(integrand, lo, hi, points=points, limit=500)[0]


# ----------------------------------------------------------------------------- timing


def best_of(repeats: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds)``: the last value and the fastest of ``repeats``
    calls."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return value, best


def seconds(value: float) -> str:
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


# ----------------------------------------------------------------------------- sections


def target_cases(ds: tuple[int, ...]) -> list[tuple[str, int]]:
    """``(case, d)`` of the targets table: each scale and the mixture case at every d in
    ``ds``, the rotated case there and at 23 (the first d the classifier's old model choice
    got wrong), the t cases at 16, equal sets at the largest d."""
    cases = [(case, d) for case in ("scale 0.5", "scale 0.8", "mixture") for d in ds]
    cases += [("rotated", d) for d in sorted({*ds, 23})]
    cases += [("student-t 3", 16), ("student-t 3 matched", 16), ("equal", ds[-1])]
    return cases


def targets(n: int, ds: tuple[int, ...], draws: int, repeats: int) -> str:
    """Classifier against the truth at ``n`` per set; k-NN for comparison and timing."""
    rows = []
    for case, d in target_cases(ds):
        truth, mc_error = truth_monte_carlo(case, d)
        p, q = sample(case, n, d, torch.Generator().manual_seed(d))
        (value, se), t_cls = best_of(repeats, classifier_jensen_shannon, p, q, return_se=True)
        knn, t_knn = best_of(repeats, jensen_shannon, p, q)
        picked = Counter(cross_fit(p, q, 5, "auto", 0)[1])
        values = [float(value)] + [
            float(classifier_jensen_shannon(*sample(case, n, d, generator(d, r)), seed=r))
            for r in range(1, draws)
        ]
        mean = statistics.mean(values)
        if case == "equal":
            verdict = "yes" if max(abs(v) for v in values) <= 0.02 else "no"
            errors = "—"
        else:
            relative = [v / truth - 1 for v in values]
            verdict = "yes" if max(abs(e) for e in relative) <= 0.10 else "no"
            errors = f"{100 * (mean / truth - 1):+.1f} % (worst {_worst(relative)})"
        quadrature = truth_quadrature(case, d)
        rows.append(
            [
                case,
                str(d),
                f"{truth:.4f} ± {mc_error:.4f}",
                "—" if math.isnan(quadrature) else f"{quadrature:.4f}",
                f"{float(value):.4f} ± {float(se):.4f}",
                f"{mean:.4f}",
                errors,
                verdict,
                ", ".join(f"{kind} {count}" for kind, count in sorted(picked.items())),
                f"{float(knn):.3f}",
                seconds(t_cls),
                seconds(t_knn),
                f"{t_cls / t_knn:.2f}",
            ]
        )
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    header = [
        "case",
        "d",
        "truth (MC ± se)",
        "quadrature",
        "classifier ± se (draw 0)",
        f"mean of {draws} draws",
        "error of the mean (worst draw)",
        "every draw within target",
        "auto's model per fold (draw 0)",
        "k-NN",
        "classifier s",
        "k-NN s",
        "time ratio",
    ]
    note = (
        f"\n\nN = {n:,} per set; target: within 10 % of the truth, |estimate| <= 0.02 for "
        "equal distributions; time ratio = classifier / k-NN seconds on the same data (best "
        f"of {repeats} calls each, draw 0)."
    )
    return markdown_table(header, rows) + note


def _worst(relative: list[float]) -> str:
    worst = max(relative, key=abs)
    return f"{100 * worst:+.1f} %"


def generator(d: int, draw: int) -> torch.Generator:
    return torch.Generator().manual_seed(1_000 * draw + d)


def accuracy(n: int, ds: tuple[int, ...], repeats: int) -> tuple[str, str]:
    """k-NN, classifier and sliced k-NN on the scale-0.5 case, with the truth; and times."""
    case = "scale 0.5"
    rows, times = [], []
    for d in ds:
        truth, mc_error = truth_monte_carlo(case, d)
        p, q = sample(case, n, d, torch.Generator().manual_seed(d))
        knn, t_knn = best_of(repeats, jensen_shannon, p, q)
        (value, se), t_cls = best_of(repeats, classifier_jensen_shannon, p, q, return_se=True)
        sliced, t_sliced = best_of(repeats, sliced_jensen_shannon, p, q)
        models = sorted(set(cross_fit(p, q, 5, "auto", 0)[1]))
        rows.append(
            [
                str(d),
                f"{truth:.4f} ± {mc_error:.4f}",
                f"{float(knn):.4f}",
                f"{float(value):.4f} ± {float(se):.4f}",
                f"{float(sliced.mean):.4f}",
                f"{float(sliced.max):.4f}",
                ", ".join(models),
            ]
        )
        times.append([str(d), seconds(t_knn), seconds(t_cls), seconds(t_sliced)])
        print(" | ".join(rows[-1] + times[-1][1:]), file=sys.stderr, flush=True)
    header = [
        "d",
        "truth (MC ± se)",
        "k-NN (Ross)",
        "classifier ± se",
        "sliced mean",
        "sliced max",
        "auto picked",
    ]
    note = (
        f"\n\nN(0, I) against N(0, 0.5^2 I), N = {n:,} per set, one draw per d. Sliced: the "
        "k-NN estimate on 16 random 2-D projections; each projection's JSD is a lower bound "
        "on the full JSD (data processing), and a 2-D view of a d-dimensional scale change "
        "sees little of it."
    )
    timing_note = f"\n\nSeconds, best of {repeats} calls, same data as the accuracy table."
    timing = markdown_table(["d", "k-NN (Ross)", "classifier", "sliced"], times) + timing_note
    return markdown_table(header, rows) + note, timing


def calibration(ns: tuple[int, ...], ds: tuple[int, ...], replicates: dict[int, int]) -> str:
    """Reported standard error against the spread of independent estimates."""
    rows = []
    for case in ("scale 0.5", "scale 0.8", "equal"):
        for d in ds:
            truth, _ = truth_monte_carlo(case, d, n=200_000)
            for n in ns:
                values, ses = [], []
                for r in range(replicates[n]):
                    p, q = sample(case, n, d, generator(d, 10_000 + r))
                    value, se = classifier_jensen_shannon(p, q, seed=r, return_se=True)
                    values.append(float(value))
                    ses.append(float(se))
                sd = statistics.stdev(values)
                mean_se = statistics.mean(ses)
                mean = statistics.mean(values)
                bias = mean - truth
                rows.append(
                    [
                        case,
                        str(d),
                        f"{n:,}",
                        str(replicates[n]),
                        f"{truth:.4f}",
                        f"{mean:.4f}",
                        f"{bias:+.4f} ± {sd / math.sqrt(replicates[n]):.4f}",
                        f"{sd:.4f}",
                        f"{mean_se:.4f}",
                        f"{mean_se / sd:.2f}",
                    ]
                )
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    header = [
        "case",
        "d",
        "N per set",
        "draws",
        "truth",
        "mean estimate",
        "mean - truth",
        "sd of estimates",
        "mean reported se",
        "se / sd",
    ]
    note = (
        "\n\nEach draw: fresh samples and seed; target 0.7 <= se / sd <= 1.4. The sd of a "
        "sd from R draws is about sd / sqrt(2 (R - 1)). Truth by Monte Carlo (200,000 draws)."
    )
    return markdown_table(header, rows) + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sections = ("targets", "accuracy", "calibration")
    parser.add_argument("sections", nargs="*", help=f"any of {sections} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, few draws")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads first")
    parser.add_argument("--draws", type=int, help="draws per targets row (default 5, quick 2)")
    parser.add_argument("--repeats", type=int, help="timed calls per row, best kept (default 2)")
    args = parser.parse_args()
    unknown = set(args.sections) - set(sections)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {list(sections)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in ("draws", "repeats"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.quick:
        n, target_ds, draws, repeats = 2_000, (16, 64), 2, 1
        accuracy_ds, cal_ns, cal_ds, reps = (
            (1, 4, 16, 64),
            (500, 2_000),
            (2, 16),
            {500: 30, 2_000: 20},
        )
    else:
        n, target_ds, draws, repeats = 10_000, (16, 32, 64), 5, 2
        accuracy_ds = (1, 2, 4, 8, 16, 32, 64)
        cal_ns, cal_ds = (500, 2_000, 10_000), (2, 8, 16)
        reps = {500: 200, 2_000: 100, 10_000: 50}
    draws, repeats = args.draws or draws, args.repeats or repeats
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads" + (", --quick" * args.quick)
    )
    chosen = args.sections or list(sections)
    classifier_jensen_shannon(*sample("equal", 100, 2, torch.Generator()))  # one-time set-up
    if "targets" in chosen:
        print(f"\n## targets\n\n{targets(n, target_ds, draws, repeats)}", flush=True)
    if "accuracy" in chosen:
        table, timing = accuracy(n, accuracy_ds, repeats)
        print(f"\n## accuracy\n\n{table}\n\n## timing\n\n{timing}", flush=True)
    if "calibration" in chosen:
        print(f"\n## calibration\n\n{calibration(cal_ns, cal_ds, reps)}", flush=True)


if __name__ == "__main__":
    main()
