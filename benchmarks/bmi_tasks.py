"""Sample the 40 tasks of the Beyond Normal benchmark (``bmi``) into one ``.npz`` per N.

Runs in a separate virtual environment that has ``benchmark-mi`` (see ``docs/bmi.md``), not
in gan_je's::

    /tmp/bmi-venv/bin/python benchmarks/bmi_tasks.py [OUT_DIR] [--sizes 5000 10000] [--seed 0]

Each ``OUT_DIR/bmi_N{n}_seed{seed}.npz`` holds, for task ``i`` in ``bmi``'s order,
``x_{i}`` (N, dim_x) and ``y_{i}`` (N, dim_y) as ``bmi`` samples them (float32), and the
per-task arrays ``task_id``, ``task_name``, ``dim_x``, ``dim_y`` and ``mi`` (the ground
truth, nats). ``benchmarks/bmi.py`` reads them in gan_je's environment.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "bmi"


def import_bmi() -> ModuleType:
    """The installed ``bmi`` package, not ``benchmarks/bmi.py`` next to this script (Python
    puts the script's folder first on ``sys.path``)."""
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    return importlib.import_module("bmi")


def sample_suite(bmi: ModuleType, n: int, seed: int) -> dict[str, np.ndarray]:
    """Every task of ``bmi.benchmark.BENCHMARK_TASKS`` sampled at ``n`` points, as npz arrays."""
    tasks = list(bmi.benchmark.BENCHMARK_TASKS.values())
    arrays: dict[str, np.ndarray] = {
        "task_id": np.array([task.id for task in tasks]),
        "task_name": np.array([task.name for task in tasks]),
        "dim_x": np.array([task.dim_x for task in tasks]),
        "dim_y": np.array([task.dim_y for task in tasks]),
        "mi": np.array([task.mutual_information for task in tasks], dtype=np.float64),
        "n": np.array(n),
        "seed": np.array(seed),
    }
    for i, task in enumerate(tasks):
        x, y = task.sample(n, seed)
        arrays[f"x_{i}"], arrays[f"y_{i}"] = np.asarray(x), np.asarray(y)
    return arrays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bmi = import_bmi()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    version = importlib.metadata.version("benchmark-mi")
    print(f"benchmark-mi {version}: {len(bmi.benchmark.BENCHMARK_TASKS)} tasks")
    for n in args.sizes:
        start = time.perf_counter()
        path = args.out_dir / f"bmi_N{n}_seed{args.seed}.npz"
        np.savez(path, **sample_suite(bmi, n, args.seed))
        print(f"{path}: {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
