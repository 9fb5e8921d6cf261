"""Markdown tables: cell formats and rows that do not fit the header."""

import pytest

from gan_je.tables import markdown_table


def test_cells_and_a_row_of_the_wrong_length():
    table = markdown_table(["a", "b"], [[1.23456, None], ["x", float("nan")]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1.235 | — |", "| x | nan |"]
    with pytest.raises(ValueError, match="2 cells but the header 1"):
        markdown_table(["a"], [[1, 2]])
