"""Hydra multirun through the command line: the basic, joblib and submitit_local launchers,
a failing job among good ones, a tiny Optuna search, and the report on the result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gan_je.report import report

TINY = ["experiment=ring", "debug=fdr", "logger=none", "data.n_train=1024", "data.n_val=300"]


def _multirun(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gan_je.train", "-m", *TINY, *overrides]
    command.append(f"hydra.sweep.dir={sweep_dir}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _summaries(sweep_dir: Path) -> dict[str, dict]:
    return {
        path.parent.name: json.loads(path.read_text())
        for path in sorted(sweep_dir.glob("*/summary.json"))
    }


def test_basic_multirun_gives_every_job_its_directory_and_the_report_reads_them(tmp_path):
    _multirun(tmp_path, "seed=0,1")
    summaries = _summaries(tmp_path)
    assert sorted(summaries) == ["0", "1"]
    for job, summary in summaries.items():
        assert summary["status"] == "finished"
        assert f"seed={job}" in summary["overrides"]
    assert "2 jobs (2 finished)" in report(tmp_path)
    assert (tmp_path / "report.md").is_file() and (tmp_path / "settings.png").is_file()


def test_a_failing_job_is_recorded_and_the_others_run(tmp_path):
    _multirun(tmp_path, "model.optimizer_g.lr=-1,0.001")
    summaries = _summaries(tmp_path)
    assert summaries["0"]["status"] == "failed" and "learning rate" in summaries["0"]["error"]
    assert summaries["1"]["status"] == "finished"
    text = report(tmp_path)
    assert "2 jobs (1 failed, 1 finished)" in text


def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    _multirun(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1")
    assert [s["status"] for s in _summaries(tmp_path).values()] == ["finished", "finished"]


def test_submitit_local_launcher(tmp_path):
    _multirun(tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", "seed=0,1")
    assert [s["status"] for s in _summaries(tmp_path).values()] == ["finished", "finished"]


def test_optuna_search_minimises_the_returned_jsd(tmp_path):
    result = _multirun(
        tmp_path,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=1",
    )
    summaries = _summaries(tmp_path)
    assert len(summaries) == 2 and all(s["status"] == "finished" for s in summaries.values())
    optimization = (tmp_path / "optimization_results.yaml").read_text()
    best = min(s["final"]["val/jsd"] for s in summaries.values())
    assert f"best_value: {best}" in optimization, optimization + result.stderr[-2000:]
