"""Running gan_je's commands as a user does, for the end-to-end tests: ``python -m <module>``
in a folder of its own, and reading the run record it leaves."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

#: A quiet run on the CPU: two epochs of three batches, no logger, bar or summary.
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
QUIET += ["trainer.accelerator=cpu", "trainer.max_epochs=2", "trainer.limit_train_batches=3"]


def run_module(module: str, *overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m <module> <overrides>`` in ``cwd``, with ``$GAN_JE_DATA`` an empty folder
    there (``paths.data_dir``: no data file is found or written anywhere else); fails the
    test, with the end of its stderr, unless it exits with 0."""
    data = cwd / "no_data"
    data.mkdir(exist_ok=True)
    env = os.environ | {"GAN_JE_DATA": str(data), "WANDB_MODE": "offline"}
    result = subprocess.run(
        [sys.executable, "-m", module, *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def metric_rows(run: Path) -> list[dict[str, str]]:
    """The rows of the run's ``metrics.csv``."""
    with (run / "metrics.csv").open() as file:
        return list(csv.DictReader(file))


def last_value(rows: list[dict[str, str]], key: str) -> float:
    """The last value logged under ``key``."""
    values = [float(row[key]) for row in rows if row.get(key)]
    assert values, f"{key} was never logged"
    return values[-1]
