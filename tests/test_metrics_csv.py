"""metrics.csv: the round trip, with columns that appear in later rows."""

from gan_je.metrics_csv import read_metrics, write_metrics


def test_metrics_round_trip_with_columns_appearing_later(tmp_path):
    rows = [{"epoch": 0, "g_step": 5, "val/jsd": 0.5}, {"epoch": 1, "g_step": 10, "x": 1.5}]
    write_metrics(rows, tmp_path / "metrics.csv")
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == "epoch,g_step,val/jsd,x"
    assert read_metrics(tmp_path / "metrics.csv") == rows
    assert read_metrics(tmp_path / "missing.csv") == []
