"""Hydra multirun through the command line: the basic, joblib and submitit_local launchers,
a failing job among good ones, a tiny Optuna search, and the report on the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gan_je.report import report

TINY = ["experiment=ring", "debug=fdr", "logger=none", "data.n_train=1024", "data.n_val=300"]


def _multirun(sweep_dir: Path, *overrides: str, status: int = 0) -> subprocess.CompletedProcess:
    """Run a multirun in a fresh process with its sweep in ``sweep_dir``; it must exit with
    ``status`` (1: a job failed)."""
    command = [sys.executable, "-m", "gan_je.train", "-m", *TINY, *overrides]
    command.append(f"hydra.sweep.dir={sweep_dir}")
    return _run(command, status=status)


def _run(
    command: list[str], cwd: Path | None = None, status: int = 0
) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "GAN_JE_RUN_ID"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=cwd)
    assert result.returncode == status, result.stderr[-3000:]
    return result


def _summaries(sweep_dir: Path) -> dict[str, dict]:
    return {
        path.parent.name: json.loads(path.read_text())
        for path in sorted(sweep_dir.glob("*/summary.json"))
    }


@pytest.mark.slow
def test_basic_multirun_gives_every_job_its_directory_and_the_report_reads_them(tmp_path):
    _multirun(tmp_path, "seed=0,1")
    summaries = _summaries(tmp_path)
    assert sorted(summaries) == ["0", "1"]
    for job, summary in summaries.items():
        assert summary["status"] == "finished"
        assert f"seed={job}" in summary["overrides"]
    assert "2 jobs (2 finished)" in report(tmp_path)
    assert (tmp_path / "report.md").is_file() and (tmp_path / "settings.png").is_file()


@pytest.mark.slow
def test_a_failing_job_is_recorded_and_the_others_run(tmp_path):
    result = _multirun(tmp_path, "model.optimizer_g.lr=-1,0.001", status=1)
    assert f"2 jobs: 1 finished, 1 failed ({tmp_path / '0'})" in result.stdout
    summaries = _summaries(tmp_path)
    assert summaries["0"]["status"] == "failed" and "learning rate" in summaries["0"]["error"]
    assert summaries["1"]["status"] == "finished"
    text = report(tmp_path)
    assert "2 jobs (1 failed, 1 finished)" in text


@pytest.mark.parametrize(
    "launcher",
    [
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"],
    ],
    ids=["joblib", "submitit_local"],
)
@pytest.mark.slow
def test_parallel_launchers_put_every_job_in_one_sweep_directory(tmp_path, launcher):
    """Jobs run in other processes; the default, timestamped sweep directory under the
    launch directory is still one (and the launcher resolves it before Hydra's runtime
    config exists: ``${hydra:runtime.cwd}`` there failed every submitit sweep)."""
    command = [sys.executable, "-m", "gan_je.train", "-m", *TINY, *launcher, "seed=0,1"]
    _run(command, cwd=tmp_path)
    sweeps = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len(sweeps) == 1, sweeps
    assert [s["status"] for s in _summaries(sweeps[0]).values()] == ["finished", "finished"]


@pytest.mark.slow
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
