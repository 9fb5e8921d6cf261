"""gan_je.slurm without a cluster: job sizing, what a job knows about itself, and the job-state
poller that reads squeue where sacct fails. The real cluster's tests are in tests/slurm/."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from submitit.slurm.slurm import SlurmJob

from gan_je import slurm
from gan_je.errors import ConfigError


@pytest.mark.parametrize(
    ("accelerator", "devices", "tasks", "gpus"),
    [
        ("cpu", 1, 1, None),
        ("cpu", "auto", 1, None),
        ("auto", 1, 1, None),
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
    watcher = slurm.QueueWatcher()
    monkeypatch.setattr(slurm, "_sacct_works", lambda: False)
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


def test_with_accounting_sacct_is_kept(monkeypatch):
    watcher = slurm.QueueWatcher()
    monkeypatch.setattr(slurm, "_sacct_works", lambda: True)
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
        assert isinstance(SlurmJob.watcher, slurm.QueueWatcher)
        assert SlurmJob.watcher._delay_s == 5
    finally:
        callback.on_multirun_end(cluster)
    assert SlurmJob.watcher is original
