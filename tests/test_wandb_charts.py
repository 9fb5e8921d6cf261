"""W&B charts what gan_je measures: every chart against the generator step, the run record's
final and best values in the run's summary, a resumed run continuing its own W&B run, and
the ``tags`` setting. Checked in the offline run files W&B writes (``run-<id>.wandb``)."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wandb
from omegaconf import OmegaConf
from wandb.proto import wandb_internal_pb2

from gan_je.errors import ConfigError
from gan_je.loggers import RUN_ID_FILE, STEP_METRIC, wandb_logger
from gan_je.metrics_csv import read_metrics
from gan_je.resolvers import check_tags, wandb_tags
from gan_je.train import train

SMALL_RING = ["experiment=ring", "data.n_train=2048", "data.n_val=500", "debug=limit"]
SMALL_RING += ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false"]
SMALL_RING += ["trainer.enable_model_summary=false", "logger=wandb"]


def records(path: Path) -> Iterator[Any]:
    """The records of a W&B run file: a 7-byte header (``:W&B``, magic, version), then
    protobuf ``Record`` messages in the LevelDB log format (32 KiB blocks of chunks, each
    with a 7-byte header: checksum, length, type 1 full / 2 first / 3 middle / 4 last)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, block, pending = 7, 32768, b""
    while position + 7 <= len(data):
        left = block - position % block
        length, kind = struct.unpack("<HB", data[position + 4 : position + 7])
        if left < 7 or (length == 0 and kind == 0):  # a block's padding
            position += left
            continue
        if position + 7 + length > len(data):  # still being written
            break
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def offline_runs(save_dir: Path) -> list[Path]:
    return sorted((save_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def read_run(path: Path, wait_s: float = 60.0) -> dict[str, Any]:
    """What a run file holds: its ``id``, its ``metrics`` definitions in order, its history
    ``rows`` and its ``summary`` (the updates merged). W&B's service may still be writing it
    when ``wandb.finish()`` returns: read it once it ends with its ``exit`` record."""
    deadline = time.monotonic() + wait_s
    while (kinds := [r.WhichOneof("record_type") for r in records(path)])[-1:] != ["exit"]:
        assert time.monotonic() < deadline, f"{path} has no exit record: {kinds[-3:]}"
        time.sleep(0.2)
    run: dict[str, Any] = {"metrics": [], "rows": [], "summary": {}}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["id"] = record.run.run_id
        elif kind == "metric":
            run["metrics"].append((record.metric.glob_name or record.metric.name,
                                   record.metric.step_metric))  # fmt: skip
        elif kind == "history":
            run["rows"].append(
                {
                    "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
        elif kind == "summary":
            for item in record.summary.update:
                key = "/".join(item.nested_key) if item.nested_key else item.key
                run["summary"][key] = json.loads(item.value_json)
    return run


def _x_axis(run: dict[str, Any]) -> str:
    """The step metric of the last definition of ``*`` (a later one replaces an earlier)."""
    return [step for name, step in run["metrics"] if name == "*"][-1]


def test_the_logger_charts_against_the_generator_step_and_keeps_its_run_id(wandb_offline, tmp_path):
    logger = wandb_logger(project="gan_je", save_dir=str(tmp_path / "run"))
    assert logger.version is None  # a fresh run directory: W&B picks the id
    logger.log_metrics({"val/jsd": 0.3, STEP_METRIC: 7.0}, step=13)
    run_id = logger.experiment.id
    wandb.finish()
    assert (tmp_path / "run" / RUN_ID_FILE).read_text() == f"{run_id}\n"
    (run_file,) = offline_runs(tmp_path / "run")
    run = read_run(run_file)
    assert _x_axis(run) == STEP_METRIC == "train/g_step"
    assert (STEP_METRIC, "") in run["metrics"]  # the axis itself has none
    (row,) = run["rows"]
    assert row["val/jsd"] == 0.3 and row[STEP_METRIC] == 7

    again = wandb_logger(project="gan_je", save_dir=str(tmp_path / "run"))
    assert again.version == run_id  # Lightning's WandbLogger resumes it: resume="allow"
    elsewhere = wandb_logger(project="gan_je", save_dir=str(tmp_path / "other"))
    assert elsewhere.version is None


def test_the_tags_setting_is_checked_and_goes_first_in_the_wandb_tags(train_config, monkeypatch):
    cfg = train_config("tags=[baseline,ring,7]", "logger=wandb")
    assert OmegaConf.to_container(cfg.logger.wandb, resolve=True)["tags"] == [
        "baseline", "ring", "7"
    ]  # fmt: skip
    assert train_config("logger=wandb").logger.wandb.tags == []
    assert check_tags(None) == [] and check_tags(["a", 1]) == ["a", "1"]
    monkeypatch.setattr("gan_je.resolvers.sweep_field", lambda name: ["lr=0.1", "a"])
    assert wandb_tags(["a", "b"]) == ["a", "b", "lr=0.1"]  # a multirun job's overrides after
    for bad in ("ring", ["x" * 65], [["nested"]], [""], [True]):
        with pytest.raises(ConfigError, match="tag"):
            check_tags(bad)


@pytest.mark.slow
def test_a_run_and_its_resumption_chart_one_wandb_run_against_the_generator_step(train_config):
    """Two epochs, then ``resume=true`` to three: one W&B run id in both offline run files;
    every validation row charted at the generator step ``metrics.csv`` gives it, pictures
    too; the summary holds the run record's final and best values; the tags are kept."""
    cfg = train_config(*SMALL_RING, "tags=[first-week]")
    train(cfg)
    train(train_config(*SMALL_RING, "tags=[first-week]", "resume=true", "trainer.max_epochs=3"))
    run_dir = Path(cfg.paths.output_dir)
    first, second = (read_run(path) for path in offline_runs(run_dir))
    assert first["id"] == second["id"] == (run_dir / RUN_ID_FILE).read_text().strip()

    record = json.loads((run_dir / "summary.json").read_text())
    assert record["tags"] == ["first-week"] and record["g_steps"] == 15
    rows = first["rows"] + second["rows"]
    assert all(_x_axis(run) == STEP_METRIC for run in (first, second))
    charted = [row[STEP_METRIC] for row in rows if "val/jsd" in row]
    recorded = [row["g_step"] for row in read_metrics(run_dir / "metrics.csv")]
    assert charted == recorded == [5, 10, 15]
    for row in rows:  # every row, pictures included, at a generator step
        assert 0 < row[STEP_METRIC] <= 15
    pictures = {name: [row[STEP_METRIC] for row in rows if f"{name}/_type" in row]
                for name in ("samples", "curves")}  # fmt: skip
    assert pictures == {"samples": [5, 10, 15], "curves": [10, 15]}

    summary = second["summary"]
    for key, value in record["final"].items():
        assert summary[f"final/{key}"] == pytest.approx(value, nan_ok=True)
    for key, value in record["best"].items():
        assert summary[f"best/{key}"] == pytest.approx(value, nan_ok=True)
    assert summary["best/g_step"] == record["best_g_step"]
    assert summary["status"] == "finished" and summary["g_steps"] == 15
