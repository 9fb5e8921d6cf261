"""Run-record files: atomic replacement, the metrics.csv round trip, settings, tables."""

import os

import pytest

from gan_je import records
from gan_je.records import (
    markdown_table,
    read_metrics,
    without_seed,
    write_atomically,
    write_metrics,
)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    write_atomically(path, "old\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(records.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, "new\n" * 1000)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["summary.json"]


def test_metrics_round_trip_with_columns_appearing_later(tmp_path):
    rows = [{"epoch": 0, "g_step": 5, "val/jsd": 0.5}, {"epoch": 1, "g_step": 10, "x": 1.5}]
    write_metrics(rows, tmp_path / "metrics.csv")
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == "epoch,g_step,val/jsd,x"
    assert read_metrics(tmp_path / "metrics.csv") == rows
    assert read_metrics(tmp_path / "missing.csv") == []


def test_settings_tables():
    assert without_seed(["seed=1", "loss=hinge", "data.data_seed=2"]) == ["loss=hinge"]
    table = markdown_table(["a", "b"], [[1.23456, None], ["x", float("nan")]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1.235 | — |", "| x | nan |"]
    with pytest.raises(ValueError, match="2 cells but the header 1"):
        markdown_table(["a"], [[1, 2]])
