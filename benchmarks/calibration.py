"""Are the standard errors right? Each estimator's reported ``return_se`` against the actual
spread of its value over independent replicates.

For every estimator, dimension d and size N: draw ``R`` independent data sets, record each
value and its reported standard error; the table gives the actual standard deviation of the
values, the mean reported error, and their ratio (1 is perfect; the target is 0.7 to 1.4).
The ratio's own noise is about ``1 / sqrt(2 R)`` (16 % at R = 20).

    python benchmarks/calibration.py              # N = 500, 2,000, 10,000; d = 2, 8, 16
    python benchmarks/calibration.py --quick      # N = 500, 2,000; fewer replicates
    python benchmarks/calibration.py --halvings 1 # as the metric's default standard_errors=1
    python benchmarks/calibration.py --cost       # their cost in JointEntropy.compute()

Data: entropy on N(0, I_d); the JSD of N(0, I_d) against N(0, 0.7^2 I_d); KSG mutual
information between x ~ N(0, I_d/2) and y = 0.8 x + 0.6 z; precision, recall, density and
coverage of N(0.2, 1.1^2 I_d) samples against N(0, I_d) ones; the classifier JSD on the
JSD's data.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable

import torch

from gan_je.estimators import (
    density_coverage,
    entropy,
    jensen_shannon,
    mutual_information,
    precision_recall,
)
from gan_je.metrics import JointEntropy
from gan_je.tables import markdown_table

#: What one draw returns: {name: (value, standard error)}.
Values = dict[str, tuple[float, float]]
#: One draw: (generator, N, d, halvings) -> values.
Draw = Callable[[torch.Generator, int, int, int], Values]


def _normal(generator: torch.Generator, n: int, d: int) -> torch.Tensor:
    return torch.randn(n, d, generator=generator, dtype=torch.float64)


def _entropy(generator: torch.Generator, n: int, d: int, halvings: int) -> Values:
    value, se = entropy(_normal(generator, n, d), return_se=halvings)
    return {"entropy": (float(value), float(se))}


def _jsd(generator: torch.Generator, n: int, d: int, halvings: int) -> Values:
    p, q = _normal(generator, n, d), 0.7 * _normal(generator, n, d)
    value, se = jensen_shannon(p, q, return_se=halvings)
    return {"jsd": (float(value), float(se))}


def _mi(generator: torch.Generator, n: int, d: int, halvings: int) -> Values:
    half = max(d // 2, 1)
    x = _normal(generator, n, half)
    y = 0.8 * x + 0.6 * _normal(generator, n, half)
    value, se = mutual_information(x, y, return_se=halvings)
    return {"mutual_information": (float(value), float(se))}


def _quality(generator: torch.Generator, n: int, d: int, halvings: int) -> Values:
    real, fake = _normal(generator, n, d), 1.1 * _normal(generator, n, d) + 0.2
    (precision, se_p), (recall, se_r) = precision_recall(real, fake, return_se=halvings)
    (density, se_d), (coverage, se_c) = density_coverage(real, fake, return_se=halvings)
    return {
        "precision": (float(precision), float(se_p)),
        "recall": (float(recall), float(se_r)),
        "density": (float(density), float(se_d)),
        "coverage": (float(coverage), float(se_c)),
    }


DRAWS: dict[str, Draw] = {
    "entropy": _entropy,
    "jsd": _jsd,
    "mutual_information": _mi,
    "quality": _quality,
}


def calibration(
    sizes: tuple[int, ...], dims: tuple[int, ...], replicates: dict[int, int], halvings: int
) -> str:
    """The calibration table: one row per estimator, d and N."""
    rows = []
    for name, draw in DRAWS.items():
        for d in dims:
            for n in sizes:
                generator = torch.Generator().manual_seed(1000 * d + n)
                start = time.perf_counter()
                runs = [draw(generator, n, d, halvings) for _ in range(replicates[n])]
                seconds = (time.perf_counter() - start) / len(runs)
                for key in runs[0]:
                    values = torch.tensor([run[key][0] for run in runs])
                    errors = torch.tensor([run[key][1] for run in runs])
                    spread, reported = float(values.std()), float(errors.mean())
                    ratio = reported / spread if spread > 0 else math.nan
                    rows.append(
                        [
                            key,
                            str(d),
                            f"{n:,}",
                            str(len(runs)),
                            f"{float(values.mean()):.4f}",
                            f"{spread:.4f}",
                            f"{reported:.4f}",
                            f"{ratio:.2f}",
                            "yes" if 0.7 <= ratio <= 1.4 else "**no**",
                            f"{seconds:.2f}",
                        ]
                    )
                print(f"  {name} d={d} N={n}: {seconds:.2f} s per draw", flush=True)
    header = [
        "estimate",
        "d",
        "N",
        "replicates",
        "mean value",
        "actual sd",
        "mean reported se",
        "ratio",
        "in 0.7-1.4",
        "s per draw",
    ]
    return markdown_table(header, rows)


def metric_cost() -> str:
    """``JointEntropy.compute()`` at N = 10,000 per set (quality keys on, no copying), without
    and with ``standard_errors=1``: best of 3 calls each."""
    rows = []
    generator = torch.Generator().manual_seed(0)
    for d in (8, 2):
        real, fake = _normal(generator, 10_000, d), 0.8 * _normal(generator, 10_000, d)
        seconds = []
        for halvings in (0, 1):
            metric = JointEntropy(standard_errors=halvings, copying=False)
            metric.update(real, real=True)
            metric.update(fake, real=False)
            best = math.inf
            for _ in range(3):
                metric._computed = None  # torchmetrics caches compute() until an update
                start = time.perf_counter()
                metric.compute()
                best = min(best, time.perf_counter() - start)
            seconds.append(best)
        extra = 100 * (seconds[1] / seconds[0] - 1)
        rows.append(["10,000", str(d), f"{seconds[0]:.2f}", f"{seconds[1]:.2f}", f"+{extra:.0f} %"])
    header = ["N per set", "d", "compute() s", "with standard_errors=1 s", "cost"]
    return markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 500 and 2,000, fewer draws")
    parser.add_argument("--halvings", type=int, default=2, help="return_se (default 2 = True)")
    parser.add_argument("--cost", action="store_true", help="the metric's cost of the errors")
    args = parser.parse_args()
    if args.cost:
        print(metric_cost())
        return
    if args.quick:
        sizes, replicates = (500, 2000), {500: 40, 2000: 20}
    else:
        sizes, replicates = (500, 2000, 10_000), {500: 100, 2000: 60, 10_000: 30}
    print(
        f"# Standard-error calibration: return_se={args.halvings} "
        f"({platform.processor() or platform.machine()}, torch {torch.__version__})\n"
    )
    print(calibration(sizes, (2, 8, 16), replicates, args.halvings))


if __name__ == "__main__":
    main()
