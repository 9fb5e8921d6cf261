"""The sweep report on a constructed sweep directory: finished, failed and starting jobs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from gan_je.report import load_jobs, main, report, setting_rows


def _job(root: Path, number: int, overrides: list[str], status: str, jsd: list[float]) -> None:
    run = root / str(number)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if status == "starting":
        return
    rows = [
        {"epoch": i, "g_step": 10 * (i + 1), "val/jsd": v, "val/entropy_fake": -v}
        for i, v in enumerate(jsd)
    ]
    with open(run / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    final = {"val/jsd": jsd[-1], "val/entropy_fake": -jsd[-1], "val/entropy_real": 1.0}
    summary = {
        "status": status,
        "final": final,
        "best": {"val/jsd": min(jsd)},
        "g_steps": 10 * len(jsd),
        "wall_time_s": 1.5,
        "overrides": overrides,
    }
    (run / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    _job(tmp_path, 0, ["loss=hinge", "seed=0"], "finished", [0.6, 0.4, 0.2])
    _job(tmp_path, 1, ["loss=hinge", "seed=1"], "finished", [0.6, 0.5, 0.4])
    _job(tmp_path, 2, ["loss=lsgan", "seed=0"], "failed", [0.7])
    _job(tmp_path, 3, ["loss=lsgan", "seed=1"], "starting", [])
    return tmp_path


def test_jobs_are_read_in_order_with_their_status(sweep):
    jobs = load_jobs(sweep)
    assert [job.path.name for job in jobs] == ["0", "1", "2", "3"]
    assert [job.status for job in jobs] == ["finished", "finished", "failed", "starting"]
    assert jobs[3].overrides == ["loss=lsgan", "seed=1"]  # from .hydra when no summary yet
    assert jobs[0].setting == jobs[1].setting == "loss=hinge"


def test_jobs_of_nested_sweeps_sort_naturally(tmp_path):
    for number in (10, 2):
        _job(tmp_path, number, [f"seed={number}"], "finished", [0.5])
    _job(tmp_path / "more", 1, ["loss=hinge"], "finished", [0.4])
    names = [str(job.path.relative_to(tmp_path)) for job in load_jobs(tmp_path)]
    assert names == ["2", "10", "more/1"]


def test_settings_average_finished_jobs_over_seeds(sweep):
    hinge, lsgan = setting_rows(load_jobs(sweep))
    assert hinge["val/jsd mean"] == pytest.approx(0.3)
    assert hinge["val/jsd std"] == pytest.approx(0.1414213, rel=1e-5)
    assert (lsgan["jobs"], lsgan["finished"], lsgan["val/jsd mean"]) == (2, 0, None)


def test_a_finished_job_without_final_values_adds_none_to_its_setting(sweep):
    summary_path = sweep / "0" / "summary.json"
    summary = json.loads(summary_path.read_text())
    del summary["final"]  # e.g. a record written by hand, status still finished
    summary_path.write_text(json.dumps(summary))
    hinge, _ = setting_rows(load_jobs(sweep))
    assert (hinge["jobs"], hinge["finished"]) == (2, 2)
    assert hinge["val/jsd mean"] == pytest.approx(0.4)  # job 1's alone
    assert hinge["val/jsd std"] is None


def test_report_writes_tables_and_plots(sweep, tmp_path):
    out = tmp_path / "report"
    text = report(sweep, out)
    assert "4 jobs (1 failed, 2 finished, 1 starting)" in text
    for name in ("report.md", "report.csv", "jsd.png", "entropy_fake.png", "settings.png"):
        assert (out / name).stat().st_size > 0
    with open(out / "report.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == ["finished", "finished", "failed", "starting"]
    assert float(rows[0]["best val/jsd"]) == pytest.approx(0.2)


def test_a_missing_sweep_directory_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nowhere")])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith("gan_je.report: no sweep directory")
    with pytest.raises(FileNotFoundError, match="no gan_je runs"):
        load_jobs(tmp_path)


def test_a_job_killed_while_running_is_reported_and_recorded_as_killed(tmp_path, lock_holder):
    _job(tmp_path, 0, ["seed=0"], "running", [0.5, 0.4])  # killed: no process holds it
    _job(tmp_path, 1, ["seed=1"], "finished", [0.5, 0.3])
    _job(tmp_path, 2, ["seed=2"], "running", [0.5])
    lock_holder(tmp_path / "2")  # still running
    (tmp_path / "2" / "summary.json").write_text(
        json.dumps({"status": "running", "final": {}, "overrides": ["seed=2"]})
    )
    assert [job.status for job in load_jobs(tmp_path)] == ["killed", "finished", "running"]
    assert json.loads((tmp_path / "0" / "summary.json").read_text())["status"] == "killed"
