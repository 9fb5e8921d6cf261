"""The plain files a run leaves and the commands read: ``metrics.csv`` rows, the overrides
that name a setting, and Markdown tables. One home for each rule, used by the run record
(:mod:`gan_je.callbacks`), the W&B fields of a sweep (:mod:`gan_je.train`), the report,
``evaluate`` and the benchmarks."""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO


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


def write_atomically(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one step (see :func:`replaced_atomically`)."""
    with replaced_atomically(path) as file:
        file.write(text.encode())


@contextmanager
def replaced_atomically(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write that replaces ``path`` in one step when the block ends: it is
    written to a temporary file in the same folder, flushed to disk, then renamed over
    ``path`` (``os.replace``), so a reader or a crash (``kill -9``, a full disk) sees the old
    file or the new one, never a truncated one; on an error the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def without_seed(overrides: Iterable[str]) -> list[str]:
    """The overrides that are not a seed (``seed=1``, ``data.data_seed=2``): what tells a
    setting apart from the other seeds of the same setting."""
    return [item for item in overrides if not item.split("=", 1)[0].endswith("seed")]


def cell(value: Any) -> str:
    """A table cell: 4 significant digits for floats, ``—`` for a missing value."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; cells are formatted by :func:`cell`."""
    header = [str(name) for name in header]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} cells but the header {len(header)}")
        lines.append("| " + " | ".join(cell(value) for value in row) + " |")
    return "\n".join(lines)
