"""A run's ``metrics.csv``: one row per validation, written by the run record
(:class:`gan_je.callbacks.RunRecord`) and read by the report, the benchmarks and the tests."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from gan_je.atomic_files import write_atomically
from gan_je.errors import RecordError

#: The columns the run record writes, which must hold numbers: these, and every ``val/`` and
#: ``train/`` value. Other columns (a user's notes, another tool's) are kept as they are.
NUMBER_COLUMNS = ("epoch", "g_step", "time_s")
NUMBER_PREFIXES = ("val/", "train/")


def read_metrics(path: str | Path) -> list[dict[str, float | str]]:
    """The rows of a run's ``metrics.csv`` (empty cells left out; no file: ``[]``), every
    number as a float and any other cell of a column the record does not write (a user's
    note) as text. A file that is not such a table (a cell of the record's own columns,
    :data:`NUMBER_COLUMNS` and :data:`NUMBER_PREFIXES`, that is not a number, a row longer
    than the header, bytes that are not text) raises :class:`gan_je.errors.RecordError`
    naming the file, line and column."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return [_parsed(row, path, line) for line, row in enumerate(csv.DictReader(handle), 2)]
    except (csv.Error, UnicodeDecodeError, OSError) as err:
        raise RecordError(f"{path} cannot be read as a metrics table ({err})") from None


def _parsed(row: dict[str | None, str | None], path: Path, line: int) -> dict[str, float | str]:
    if None in row:  # csv.DictReader's key for cells beyond the header
        raise RecordError(f"{path}, line {line}: more cells than the header names")
    parsed: dict[str, float | str] = {}
    for key, value in row.items():
        if value in ("", None):
            continue
        try:
            parsed[key] = float(value)
        except ValueError:
            if key in NUMBER_COLUMNS or key.startswith(NUMBER_PREFIXES):
                raise RecordError(
                    f"{path}, line {line}: {key} is {value[:40]!r}, not a number"
                ) from None
            parsed[key] = value
    return parsed


def write_metrics(rows: Sequence[dict[str, float | str]], path: str | Path) -> None:
    """Write ``rows`` as ``metrics.csv`` (columns in order of first appearance), atomically."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue())
