"""Evaluations accumulate: one plain-JSON record per evaluation, keyed by its settings,
beside the checkpoint (:mod:`gan_je.evaluation_records`), read by the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from gan_je.errors import RecordError
from gan_je.evaluation_records import plain, read_records, record_name, write_record
from gan_je.report import report

CONF = Path(__file__).resolve().parents[1] / "conf"
PCA = {"_target_": "gan_je.features.PCA", "dim": 8}
RANDOM = {"_target_": "gan_je.features.RandomProjection", "dim": 2, "seed": 0}


def _record(**changes) -> dict:
    record = {
        "ckpt_path": "/runs/a/checkpoints/last.ckpt",
        "g_step": 10,
        "split": "val",
        "seed": 0,
        "baseline": False,
        "n_real": 300,
        "n_generated": 300,
        "features": PCA,
        "metrics": {"jsd": 0.25, "jsd_se": 0.01},
    }
    return record | changes


def test_evaluations_with_other_features_are_both_kept(tmp_path):
    first = write_record(tmp_path, _record())
    second = write_record(tmp_path, _record(features=RANDOM))
    assert first != second and first.name.startswith("last-pca-val-")
    assert second.name.startswith("last-randomprojection-val-")
    assert [record["features"] for _, record in read_records(tmp_path)] == [PCA, RANDOM]


@pytest.mark.parametrize(
    "change",
    [{"split": "train"}, {"seed": 1}, {"n_real": 200}, {"g_step": 20}, {"baseline": True}],
    ids=lambda change: next(iter(change)),
)
def test_every_setting_keys_its_own_record(change):
    assert record_name(_record()) != record_name(_record(**change))


def test_a_sampling_temperature_keys_its_own_record_and_none_keeps_the_old_name():
    assert record_name(_record(temperature=None)) == record_name(_record())
    names = {record_name(_record(temperature=t)) for t in (None, 0.5, 1.5)}
    assert len(names) == 3


def test_an_evaluation_with_the_same_settings_replaces_its_own_record_only(tmp_path):
    kept = write_record(tmp_path, _record(features=RANDOM))
    old = write_record(tmp_path, _record())
    new = write_record(tmp_path, _record(metrics={"jsd": 0.125}, seconds=3.5))
    assert new == old
    records = dict(read_records(tmp_path))
    assert sorted(records) == sorted([kept, new])
    assert records[new]["metrics"] == {"jsd": 0.125} and records[kept]["features"] == RANDOM


def test_records_are_plain_json_that_any_reader_loads(tmp_path):
    record = _record(
        metrics={"jsd": float("nan"), "frechet": math.inf, "modes": np.int64(7)},
        sizes=(np.float32(0.5), 2),
    )
    path = write_record(tmp_path, record)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text and "<" not in text
    loaded = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the record"))
    assert loaded["metrics"] == {"jsd": None, "frechet": None, "modes": 7}
    assert loaded["sizes"] == [0.5, 2] and loaded["features"] == PCA
    assert loaded == plain(record) and json.loads(json.dumps(loaded)) == loaded


def test_an_object_in_a_record_is_refused_not_written_as_its_repr(tmp_path):
    with pytest.raises(TypeError, match=r"record\['features'\] holds a value of type object"):
        write_record(tmp_path, _record(features=object()))
    with pytest.raises(ValueError, match="needs the settings seed"):
        record_name({key: value for key, value in _record().items() if key != "seed"})
    assert not list(tmp_path.glob("*.json"))


def test_a_damaged_record_is_named(tmp_path):
    (tmp_path / "cut.json").write_text('{"metrics": {"js')
    with pytest.raises(RecordError, match=r"cut\.json is not readable JSON"):
        read_records(tmp_path)
    assert read_records(tmp_path / "none yet") == []


def test_the_report_lists_each_evaluation_with_its_record(tmp_path):
    run = tmp_path / "0"
    (run / ".hydra").mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"status": "finished", "final": {"val/jsd": 0.2}}))
    (run / "metrics.csv").write_text("epoch,g_step,val/jsd,val/entropy_fake\n0,10,0.2,1.0\n")
    folder = run / "checkpoints" / "evaluations"
    pca = write_record(folder, _record())
    write_record(folder, _record(features=RANDOM, metrics={"jsd": 0.5}))
    text = report(tmp_path)
    assert "## Evaluations" in text and "checkpoints/evaluations/" in text
    rows = [line for line in text.splitlines() if "evaluations/last-" in line]
    assert len(rows) == 2
    assert f"| 0 | {pca.relative_to(tmp_path)} | 10 | val | pca | 300 | 0.25 | 0.01 |" in rows


def _app_config(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


@pytest.mark.slow
def test_evaluate_keeps_one_record_per_setting_in_plain_json(train_config):
    from gan_je.evaluate import evaluate
    from gan_je.train import train

    ring = ["experiment=ring", "data.n_train=2048", "data.n_val=500", "debug=limit"]
    cfg = train_config(*ring, "logger=none")
    train(cfg)
    checkpoint = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    folder = checkpoint.with_name("evaluations")
    common = [f"ckpt_path={checkpoint}", "n_samples=200"]
    evaluate(_app_config("evaluate", *common, "features=identity"))
    evaluate(_app_config("evaluate", *common, "features=random", "estimator.features.dim=2"))
    records = dict(read_records(folder))
    assert len(records) == 2
    names = sorted(path.name.split("-")[1] for path in records)
    assert names == ["identity", "randomprojection"]
    for path, record in records.items():
        assert "<" not in path.read_text()  # no object's repr
        assert record["features"]["_target_"].startswith("gan_je.features.")
        assert record["ckpt_path"] == str(checkpoint.resolve()) and record["n_generated"] == 200
    identity = next(path for path in records if "-identity-" in path.name)
    identity.write_text(json.dumps(records[identity] | {"stale": True}))
    again = evaluate(_app_config("evaluate", *common, "features=identity"))
    assert sorted(records) == sorted(path for path, _ in read_records(folder))
    assert "stale" not in json.loads(identity.read_text())
    assert json.loads(identity.read_text())["metrics"] == plain(again["metrics"])
