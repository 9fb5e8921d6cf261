"""Sweeps through ``hydra/launcher=slurm`` on a real one-node SLURM cluster (see conftest.py):
jobs that finish, a failing job among good ones, the report, and jobs stopped mid-training by
``scontrol requeue`` (SIGTERM) and by the time-limit warning (SIGUSR1) that resume and end
equal to an uninterrupted job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan_je.metrics_csv import read_metrics

# one xdist worker runs them all: one cluster, started once (pytest -n ... --dist loadgroup)
pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.xdist_group("slurm")]

SMALL = ["experiment=ring", "logger=none", "data.n_val=500", "~callbacks.progress"]
SMALL += ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
SHORT = ["data.n_train=2048", "trainer.limit_train_batches=6"]  # 6 steps an epoch
# only cluster-sizing overrides besides the experiment's: 2 CPUs run 2 jobs at once
ON_CLUSTER = ["hydra/launcher=slurm", "hydra.launcher.partition=debug"]
ON_CLUSTER += ["trainer.accelerator=cpu", "hydra.launcher.cpus_per_task=1"]
ON_CLUSTER += ["hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=20"]


def _command(sweep_dir: Path, *overrides: str) -> list[str]:
    command = [sys.executable, "-m", "gan_je.train", "-m", *ON_CLUSTER, *SMALL, *overrides]
    return [*command, f"hydra.sweep.dir={sweep_dir}"]


def _environment() -> dict[str, str]:
    """This environment for the sweep and its jobs (sbatch exports it), with one PyTorch
    thread a job: the test cluster (task/none) binds no job to its one CPU, and two jobs of
    two spinning threads each on two CPUs run many times slower."""
    environment = {key: value for key, value in os.environ.items() if key != "GAN_JE_RUN_ID"}
    return environment | {"OMP_NUM_THREADS": "1"}


def _sweep(sweep_dir: Path, *overrides: str, status: int = 0) -> subprocess.CompletedProcess:
    """Run a sweep on the test cluster; it must exit with ``status`` (1: a job failed)."""
    result = subprocess.run(
        _command(sweep_dir, *overrides),
        capture_output=True,
        text=True,
        timeout=600,
        env=_environment(),
    )
    assert result.returncode == status, result.stderr[-3000:]
    return result


def _summary(job_dir: Path) -> dict:
    return json.loads((job_dir / "summary.json").read_text())


@pytest.fixture(scope="module")
def finished_sweep(slurm_cluster, tmp_path_factory) -> tuple[Path, str]:
    sweep_dir = tmp_path_factory.mktemp("slurm") / "sweep"
    result = _sweep(sweep_dir, *SHORT, "trainer.max_epochs=2", "seed=0,1")
    return sweep_dir, result.stdout + result.stderr


def test_a_two_job_sweep_runs_through_sbatch_and_finishes(finished_sweep):
    sweep_dir, output = finished_sweep
    for job in ("0", "1"):
        summary = _summary(sweep_dir / job)
        assert summary["status"] == "finished" and summary["g_steps"] == 12
        assert f"seed={job}" in summary["overrides"]
    assert len(list((sweep_dir / ".submitit").glob("*_[01]"))) == 2  # one array task each
    assert "Bypassing sacct error" not in output
    assert output.count("accounting (sacct) is off here") == 1


def test_the_report_reads_the_slurm_sweep(finished_sweep):
    sweep_dir, _ = finished_sweep
    result = subprocess.run(
        [sys.executable, "-m", "gan_je.report", str(sweep_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = (sweep_dir / "report.md").read_text()
    jobs = [line for line in text.splitlines() if line.startswith(("| 0 |", "| 1 |"))]
    assert len(jobs) == 2 and all("| finished |" in line for line in jobs)
    assert "| (all jobs) | 2 | 2 |" in text  # the settings table: 2 jobs, 2 finished


def test_a_failing_job_is_recorded_as_failed_and_the_other_finishes(slurm_cluster, tmp_path):
    result = _sweep(
        tmp_path, *SHORT, "trainer.max_epochs=1", "model.optimizer_g.lr=-1,0.001", status=1
    )
    assert f"2 jobs: 1 finished, 1 failed ({tmp_path / '0'})" in result.stdout
    failed, finished = _summary(tmp_path / "0"), _summary(tmp_path / "1")
    assert failed["status"] == "failed" and "learning rate" in failed["error"]
    assert finished["status"] == "finished"


def _wait_for(condition, what: str, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds:.0f} s for {what}")
        time.sleep(0.5)


def _held(job: str) -> bool:
    """Whether ``job`` is requeued and waiting for its begin time."""
    queue = ["squeue", "--noheader", "--jobs", job, "--format=%T %r"]
    state = subprocess.run(queue, capture_output=True, text=True).stdout.split()
    return state == ["PENDING", "BeginTime"]


def test_jobs_stopped_by_requeue_and_by_the_time_limit_warning_resume_equal_to_uninterrupted(
    slurm_cluster, tmp_path
):
    """Three identical jobs (log_every_n_steps changes no computation). Job 0 is requeued
    with ``scontrol requeue`` (SLURM sends SIGTERM, then restarts it), job 1 gets SIGUSR1
    (the ``--signal=USR1@...`` time-limit warning: it checkpoints and requeues itself), job 2
    runs through. Both stop mid-epoch after their first validation; all three end with equal
    weights and the same rows."""
    epochs = ["data.n_train=10240", "trainer.max_epochs=4"]  # 40 steps an epoch
    sweep = subprocess.Popen(
        _command(tmp_path, *epochs, "trainer.log_every_n_steps=10,11,12"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_environment(),
    )
    try:
        _wait_for(lambda: len(list((tmp_path / ".submitit").glob("*_0"))) == 1, "submission")
        array = next((tmp_path / ".submitit").glob("*_0")).name.split("_")[0]
        for task, stop in (("0", ["scontrol", "requeue"]), ("1", ["scancel", "--signal=USR1"])):
            metrics = tmp_path / task / "metrics.csv"
            _wait_for(lambda m=metrics: len(read_metrics(m)) >= 1, f"job {task}'s first epoch")
            subprocess.run([*stop, f"{array}_{task}"], check=True, capture_output=True)
        for task in ("0", "1"):  # SLURM holds a requeued job 2 minutes: let it start now
            _wait_for(lambda t=task: _held(f"{array}_{t}"), f"job {task} to be requeued")
            subprocess.run(
                ["scontrol", "update", f"JobId={array}_{task}", "StartTime=now"], check=True
            )
        output, _ = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            subprocess.run(["scancel", array], capture_output=True)
    assert sweep.returncode == 0, output[-3000:]
    jobs = [tmp_path / str(task) for task in range(3)]
    assert [_summary(job)["status"] for job in jobs] == ["finished"] * 3
    logs = [(job / "train.log").read_text() for job in jobs]
    assert "SIGTERM at generator step" in logs[0] and "requeued SLURM job" not in logs[0]
    assert f"requeued SLURM job {array}_1" in logs[1]
    assert "SIGTERM" not in logs[2]
    for task, log in enumerate(logs[:2]):  # resumed, not trained again from the start
        last = tmp_path / str(task) / "checkpoints" / "last.ckpt"
        assert f"SLURM restart 1 of job {array}_{task}: resuming from {last}" in log
    states = [torch.load(job / "checkpoints" / "last.ckpt", weights_only=True) for job in jobs]
    assert [state["g_step"] for state in states] == [160] * 3
    for key, tensor in states[2]["state_dict"].items():
        assert torch.equal(states[0]["state_dict"][key], tensor), key
        assert torch.equal(states[1]["state_dict"][key], tensor), key
    rows = [[(r["g_step"], r["val/jsd"]) for r in read_metrics(j / "metrics.csv")] for j in jobs]
    assert rows[0] == rows[1] == rows[2] and [g for g, _ in rows[2]] == [40, 80, 120, 160]
