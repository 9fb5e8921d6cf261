"""gan_je's mutual-information estimators on the 40 tasks of the Beyond Normal benchmark
(Czyż et al., NeurIPS 2023), printed as Markdown tables.

    /tmp/bmi-venv/bin/python benchmarks/bmi_tasks.py   # once, in bmi's own environment
    python benchmarks/bmi.py [DATA_DIR] [--sizes 5000 10000] [--seed 0]

Reads ``DATA_DIR/bmi_N{n}_seed{seed}.npz`` (default ``benchmarks/results/bmi/``, written by
``bmi_tasks.py``) and runs, on each task: KSG (algorithm 1) with k = 5 and k = 3 on the raw
samples, KSG k = 5 on samples standardised per column (what ``bmi``'s own KSG does first),
and the Gaussian plug-in (``bmi``'s CCA). A task passes when estimate / truth lies in
[1/1.5, 1.5]; a negative estimate fails. The ratio needs a truth clear of 0: a task whose
truth is below ``TRUTH_FLOOR`` nats is left out of the count (and shown as ``—``); every
task of the suite has a truth of at least 0.178 nats.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gan_je.estimators import gaussian
from gan_je.estimators.knn import mutual_information as ksg
from gan_je.progress import progress
from gan_je.tables import markdown_table

DEFAULT_DATA = Path(__file__).resolve().parent / "results" / "bmi"
FACTOR = 1.5
TRUTH_FLOOR = 0.05


def standardised(a: np.ndarray) -> np.ndarray:
    """Each column shifted to mean 0 and scaled to standard deviation 1."""
    a = a.astype(np.float64)
    return (a - a.mean(axis=0)) / a.std(axis=0)


Estimator = Callable[[np.ndarray, np.ndarray], float]

ESTIMATORS: dict[str, Estimator] = {
    "KSG k=5": lambda x, y: float(ksg(x, y, k=5)),
    "KSG k=3": lambda x, y: float(ksg(x, y, k=3)),
    "KSG k=5, standardised": lambda x, y: float(ksg(standardised(x), standardised(y), k=5)),
    "Gaussian": lambda x, y: float(gaussian.mutual_information(x, y)),
}


def within(estimate: float, truth: float) -> bool | None:
    """Whether estimate / truth lies in [1/FACTOR, FACTOR]; None for a truth below
    ``TRUTH_FLOOR``, where a ratio says nothing."""
    if truth < TRUTH_FLOOR:
        return None
    return 1 / FACTOR <= estimate / truth <= FACTOR


def flag(passed: bool | None) -> str | None:
    return None if passed is None else ("yes" if passed else "**no**")


def evaluate(path: Path) -> tuple[np.lib.npyio.NpzFile, dict[str, list[float]], dict[str, float]]:
    """Every estimator on every task of ``path``: estimates (nats) and total seconds."""
    data = np.load(path)
    estimates: dict[str, list[float]] = {name: [] for name in ESTIMATORS}
    seconds = dict.fromkeys(ESTIMATORS, 0.0)
    for i in progress(range(len(data["task_id"])), "BMI tasks"):
        x, y = data[f"x_{i}"], data[f"y_{i}"]
        for name, estimator in ESTIMATORS.items():
            start = time.perf_counter()
            estimates[name].append(estimator(x, y))
            seconds[name] += time.perf_counter() - start
    return data, estimates, seconds


def task_table(data: np.lib.npyio.NpzFile, estimates: dict[str, list[float]]) -> str:
    """One row per task: truth, KSG k = 5 with its ratio and flag, the other estimates."""
    others = [name for name in ESTIMATORS if name != "KSG k=5"]
    rows = []
    for i, truth in enumerate(data["mi"].tolist()):
        value = estimates["KSG k=5"][i]
        rows.append(
            [
                str(data["task_name"][i]),
                f"{data['dim_x'][i]}x{data['dim_y'][i]}",
                truth,
                value,
                value / truth,
                flag(within(value, truth)),
                *(estimates[name][i] for name in others),
            ]
        )
    header = ["task", "dims", "truth", "KSG k=5", "ratio", f"within {FACTOR}x", *others]
    return markdown_table(header, rows)


def summary_rows(
    n: int, truth: np.ndarray, estimates: dict[str, list[float]], seconds: dict[str, float]
) -> list[list[object]]:
    """Per estimator: mean absolute error, tasks within FACTOR, wall time."""
    rows: list[list[object]] = []
    for name, values in estimates.items():
        passed = [within(v, t) for v, t in zip(values, truth.tolist(), strict=True)]
        judged = [p for p in passed if p is not None]
        mae = float(np.mean(np.abs(np.asarray(values) - truth)))
        rows.append(
            [f"{n:,}", name, round(mae, 4), f"{sum(judged)} of {len(judged)}", seconds[name]]
        )
    return rows


def cpu_name() -> str:
    """The CPU's model name where Linux tells it, else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = [args.data_dir / f"bmi_N{n}_seed{args.seed}.npz" for n in args.sizes]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        parser.error(f"missing {missing}; write them with benchmarks/bmi_tasks.py (docs/bmi.md)")
    print(
        f"# gan_je on the Beyond Normal benchmark\n\n"
        f"{datetime.date.today()}, {cpu_name()}, "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), seed {args.seed}; nats"
    )
    summary: list[list[object]] = []
    start = time.perf_counter()
    for n, path in zip(args.sizes, paths, strict=True):
        data, estimates, seconds = evaluate(path)
        print(f"\n## N = {n:,}\n\n{task_table(data, estimates)}", flush=True)
        summary += summary_rows(n, data["mi"], estimates, seconds)
    header = ["N", "estimator", "mean abs. error", f"within {FACTOR}x", "seconds"]
    print(f"\n## Summary\n\n{markdown_table(header, summary)}")
    print(f"\nwall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
