"""A run's ``metrics.csv``: one row per validation, written by the run record
(:class:`gan_je.callbacks.RunRecord`) and read by the report, the benchmarks and the tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from gan_je.atomic_files import write_atomically


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` as floats (empty cells left out); no file: ``[]``."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [
            {key: float(value) for key, value in row.items() if value not in ("", None)}
            for row in csv.DictReader(handle)
        ]


def write_metrics(rows: Sequence[dict[str, float]], path: str | Path) -> None:
    """Write ``rows`` as ``metrics.csv`` (columns in order of first appearance), atomically."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue())
