"""gan_je.slurm without a cluster: job sizing, what a job knows about itself, and the job-state
poller that reads squeue where sacct fails. The real cluster's tests are in tests/slurm/."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
from omegaconf import OmegaConf
from submitit.slurm.slurm import SlurmJob

from gan_je import run_directory, slurm, slurm_queue
from gan_je.callbacks import CheckpointOnSignal
from gan_je.checkpoints import checkpoint_to_resume
from gan_je.errors import ConfigError
from gan_je.stopping import stopped_by_signal


@pytest.mark.parametrize(
    ("accelerator", "devices", "tasks", "gpus"),
    [
        ("cpu", 1, 1, None),
        ("cpu", "auto", 1, None),
        ("cpu", 2, 2, None),
        ("gpu", 4, 4, 4),
        ("cuda", "2", 2, 2),
        ("gpu", [0, 1, 3], 3, 3),
        ("gpu", OmegaConf.create([0, 1]), 2, 2),
    ],
)
def test_a_job_has_one_task_per_device_and_gpus_only_for_gpu_runs(
    accelerator, devices, tasks, gpus
):
    assert slurm.tasks_per_node(accelerator, devices) == tasks
    assert slurm.gpus_per_node(accelerator, devices) == gpus


@pytest.mark.parametrize("devices", ["auto", -1])
def test_a_gpu_job_must_say_how_many_gpus(devices):
    with pytest.raises(ConfigError, match=r"needs trainer\.devices=<GPUs per node>"):
        slurm.gpus_per_node("gpu", devices)


def test_a_job_must_say_cpu_or_gpu_and_not_spawn_its_own_processes():
    with pytest.raises(ConfigError, match=r"trainer\.accelerator=cpu or gpu \(not auto\)"):
        slurm.tasks_per_node("auto", 1)
    with pytest.raises(ConfigError, match="not auto"):
        slurm.gpus_per_node("auto", 1)
    with pytest.raises(ConfigError, match="start_method=spawn starts its own processes"):
        slurm.tasks_per_node("cpu", 2, "spawn")


@pytest.mark.parametrize("devices", [0, -2, 1.5, True, "two"])
def test_device_counts_that_cannot_be_a_job_size_are_refused(devices):
    with pytest.raises(ConfigError, match=r"trainer\.devices"):
        slurm.tasks_per_node("cpu", devices)


def test_a_job_knows_its_id_restarts_and_rank(monkeypatch):
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert (slurm.job_id(), slurm.restart_count()) == (None, 0)
    with pytest.raises(RuntimeError, match="not a SLURM job"):
        slurm.requeue()
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert (slurm.job_id(), slurm.restart_count(), slurm.global_rank()) == ("41", 2, 1)
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "40")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    assert slurm.job_id() == "40_1"  # what scontrol requeue takes for an array task


def test_without_accounting_job_states_come_from_squeue(monkeypatch, caplog):
    watcher = slurm_queue.QueueWatcher()
    monkeypatch.setattr(slurm_queue, "_sacct_works", lambda: False)
    for job in ("7_0", "7_1", "7_2", "9"):
        watcher.register_job(job)
    with caplog.at_level("INFO"):
        command = watcher._make_command()
        assert watcher._make_command() == command
    assert command[0] == "squeue" and "--me" in command
    assert caplog.text.count("accounting (sacct) is off") == 1
    info = watcher.read_info("7_0|COMPLETED|vm\n7_1|RUNNING|vm\n7_2|PENDING|\n")
    states = {job: info[job]["State"] for job in ("7_0", "7_1", "7_2", "9")}
    assert states == {"7_0": "COMPLETED", "7_1": "RUNNING", "7_2": "PENDING", "9": "LEFT_QUEUE"}
    watcher._info_dict.update(info)
    assert [watcher.is_done(j, mode="cache") for j in states] == [True, False, False, True]
    # states only squeue reports: not over, whatever submitit's (sacct's) list says
    for state in ("CONFIGURING", "REQUEUE_HOLD", "SUSPENDED", "STAGE_OUT", "SIGNALING"):
        watcher._info_dict.update(watcher.read_info(f"7_1|{state}|vm\n"))
        assert not watcher.is_done("7_1", mode="cache"), state


def test_with_accounting_sacct_is_kept(monkeypatch):
    watcher = slurm_queue.QueueWatcher()
    monkeypatch.setattr(slurm_queue, "_sacct_works", lambda: True)
    watcher.register_job("5")
    assert watcher._make_command()[0] == "sacct"
    assert watcher.read_info("JobID|State|NodeList\n5|RUNNING|vm\n")["5"]["State"] == "RUNNING"


def test_queue_polling_swaps_the_watcher_only_for_slurm_sweeps():
    original = SlurmJob.watcher
    callback = slurm.QueuePolling(delay_s=5)
    local = OmegaConf.create({"hydra": {"launcher": {"_target_": "x.LocalLauncher"}}})
    callback.on_multirun_start(local)
    assert SlurmJob.watcher is original
    cluster = OmegaConf.create({"hydra": {"launcher": {"_target_": "x.SlurmLauncher"}}})
    callback.on_multirun_start(cluster)
    try:
        assert isinstance(SlurmJob.watcher, slurm_queue.QueueWatcher)
        assert SlurmJob.watcher._delay_s == 5
    finally:
        callback.on_multirun_end(cluster)
    assert SlurmJob.watcher is original


def _requeued_job(monkeypatch, restarts: str = "1", rank: str = "0") -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", restarts)
    monkeypatch.setenv("SLURM_PROCID", rank)
    for name in ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)


def test_a_requeued_job_continues_from_its_own_checkpoint(monkeypatch, tmp_path):
    """Restarted, a job goes on from its last.ckpt, not from the ckpt_path it first started
    from (which would restart it from there at every requeue); without one it starts as
    configured."""
    first = tmp_path / "pretrained.ckpt"
    first.write_bytes(b"")
    cfg = OmegaConf.create({"ckpt_path": str(first), "resume": False})
    cfg.paths = {"output_dir": str(tmp_path / "run")}
    _requeued_job(monkeypatch)
    assert checkpoint_to_resume(cfg) == str(first)  # nothing saved yet
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"")
    assert checkpoint_to_resume(cfg) == str(last)
    cfg.ckpt_path = None
    assert checkpoint_to_resume(cfg) == str(last)  # resume=false: auto anyway
    monkeypatch.setenv("SLURM_RESTART_COUNT", "0")
    assert checkpoint_to_resume(cfg) is None  # a first start: as configured


def test_only_rank_0_of_a_job_locks_the_run_directory(monkeypatch, tmp_path, lock_holder):
    holder = lock_holder(tmp_path)  # a live run holds it
    _requeued_job(monkeypatch, restarts="0", rank="1")
    lock = run_directory.hold_run_directory(tmp_path)  # task 1 of rank 0's job: no refusal
    assert lock.file is None
    _requeued_job(monkeypatch, restarts="0", rank="0")
    with pytest.raises(
        ConfigError, match=f"in use by a running gan_je.train .process {holder.pid}"
    ):
        run_directory.hold_run_directory(tmp_path)
    # a requeued job waits for its earlier instance's lock to be released
    monkeypatch.setattr(run_directory, "REQUEUE_WAIT_S", 5.0)
    _requeued_job(monkeypatch, restarts="1", rank="0")
    threading.Timer(1.0, holder.kill).start()
    lock = run_directory.hold_run_directory(tmp_path)
    assert (tmp_path / run_directory.LOCK).read_text().split()[0] == str(os.getpid())
    run_directory.release_run_directory(lock)


def test_the_time_limit_requeues_only_a_job_that_trained_and_survives_a_failed_requeue(
    monkeypatch, tmp_path
):
    _requeued_job(monkeypatch, restarts="0")
    signals = CheckpointOnSignal(str(tmp_path))
    signals.time_limit, signals.start_step = True, 40
    requeued = []
    monkeypatch.setattr(slurm, "requeue", lambda: requeued.append(1) or "77")
    stopped = stopped_by_signal(40, str(tmp_path), signals)  # no step since the start
    assert "not requeued (no progress" in str(stopped) and not requeued
    assert "requeued SLURM job 77" in str(stopped_by_signal(41, str(tmp_path), signals))

    def refused():
        raise subprocess.CalledProcessError(1, ["scontrol", "requeue", "77"])

    monkeypatch.setattr(slurm, "requeue", refused)
    assert "requeueing failed" in str(stopped_by_signal(41, str(tmp_path), signals))
    signals.time_limit = False  # pre-emption: SLURM requeues, the job does not
    assert "if SLURM requeues job 77" in str(stopped_by_signal(41, str(tmp_path), signals))
