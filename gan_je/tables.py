"""Markdown tables, as the report, ``evaluate`` and the benchmarks print them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


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
