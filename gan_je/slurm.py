"""Running under SLURM: a job sized from the trainer config, a job that requeues itself, and
job states read without accounting.

- :func:`tasks_per_node` and :func:`gpus_per_node` size a ``hydra/launcher=slurm`` job from
  ``trainer.accelerator`` and ``trainer.devices`` (resolvers ``gan_je.slurm_tasks`` and
  ``gan_je.slurm_gpus`` in ``conf/hydra/launcher/slurm.yaml``): one task per device, as
  Lightning's SLURM environment expects, and GPUs only for ``accelerator=gpu``/``cuda``;
  ``accelerator=auto`` is refused (the job must say whether it wants GPUs).
- :func:`job_id`, :func:`restart_count` and :func:`requeue` are what a job knows about itself
  (``$SLURM_JOB_ID``, ``$SLURM_RESTART_COUNT``) and ``scontrol requeue``.
- :class:`QueuePolling` is a Hydra callback that makes the submitting process read job states
  from ``squeue`` when the cluster has no accounting (``sacct`` fails), instead of one
  "Bypassing sacct error" warning per poll (:class:`gan_je.slurm_queue.QueueWatcher`).

submitit (the ``slurm`` extra) is imported only when a sweep uses the SLURM launcher.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig

from gan_je.errors import ConfigError
from gan_je.extras import require

#: ``trainer.accelerator`` values that ask SLURM for GPUs.
GPU_ACCELERATORS = ("gpu", "cuda")


def devices_per_node(devices: Any) -> int | None:
    """The number of devices ``trainer.devices`` names (an int, a digit string or a list of
    device indices); ``None`` for ``auto`` and ``-1`` (all of a node's devices)."""
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if isinstance(devices, Sequence) and not isinstance(devices, str):  # also a ListConfig
        return len(devices)
    if devices in ("auto", -1):
        return None
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError(
            f"trainer.devices={devices!r}: use a number of devices per node, a list of "
            f"device indices, or auto"
        )
    return devices


def tasks_per_node(accelerator: str, devices: Any, start_method: str | None = None) -> int:
    """SLURM tasks per node: one per device (Lightning's SLURM environment runs one process
    per task). ``devices=auto`` is one task on a CPU and refused for GPUs, where the job must
    say how many it asks for. Refused: ``accelerator=auto`` (say cpu or gpu: the partition
    decides what there is) and strategies that start their own processes
    (``start_method``, as ``trainer=ddp_sim``), which would run once per task."""
    _check_accelerator(accelerator)
    if start_method is not None:
        raise ConfigError(
            f"trainer.strategy.start_method={start_method} starts its own processes, which "
            f"under hydra/launcher=slurm would run once per SLURM task: use trainer=ddp "
            f"(one task per device) or a single device"
        )
    count = devices_per_node(devices)
    if count is None:
        if str(accelerator) in GPU_ACCELERATORS:
            raise ConfigError(
                f"hydra/launcher=slurm with trainer.accelerator={accelerator} needs "
                f"trainer.devices=<GPUs per node>, not {devices!r}"
            )
        return 1
    return count


def gpus_per_node(accelerator: str, devices: Any) -> int | None:
    """GPUs to ask for per node: ``trainer.devices`` for ``accelerator=gpu``/``cuda``,
    ``None`` (no ``--gpus-per-node``) for ``cpu``."""
    count = tasks_per_node(accelerator, devices)  # refuses what cannot be sized
    return count if str(accelerator) in GPU_ACCELERATORS else None


def _check_accelerator(accelerator: str) -> None:
    if str(accelerator) == "auto":
        raise ConfigError(
            "hydra/launcher=slurm needs trainer.accelerator=cpu or gpu (not auto): the job "
            "asks SLURM for GPUs only when it says gpu"
        )


def job_id() -> str | None:
    """This SLURM job's id as ``scontrol`` names it (``<array>_<task>`` for an array task),
    or ``None`` outside a SLURM job."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID") or None


def restart_count() -> int:
    """How often SLURM has requeued and restarted this job (0 outside SLURM)."""
    return _count("SLURM_RESTART_COUNT")


def global_rank() -> int:
    """This task's rank among the job's tasks (0 outside SLURM)."""
    return _count("SLURM_PROCID")


def _count(variable: str) -> int:
    value = os.environ.get(variable, "0")
    return int(value) if value.isdigit() else 0


def requeue() -> str:
    """Put this job back in the queue (``scontrol requeue``): SLURM ends it and starts it
    again, with ``$SLURM_RESTART_COUNT`` one higher. Returns the job id."""
    job = job_id()
    if job is None:
        raise RuntimeError("not a SLURM job ($SLURM_JOB_ID is unset): nothing to requeue")
    subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True, timeout=60)
    return job


class QueuePolling(HydraCallback):
    """Hydra callback (``hydra.callbacks`` in ``conf/hydra/default.yaml``): while a multirun
    uses the submitit SLURM launcher, submitit's jobs poll through
    :class:`gan_je.slurm_queue.QueueWatcher`.

    submitit keeps one watcher for all SLURM jobs as the class attribute ``SlurmJob.watcher``;
    this swaps it for the sweep and puts the original back at its end.
    """

    def __init__(self, delay_s: int = 60) -> None:
        self.delay_s = delay_s
        self._original: Any = None  # submitit's watcher while this one is in place

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = str(config.hydra.launcher.get("_target_", ""))
        if launcher.endswith("SlurmLauncher") and self._original is None:
            job = require("submitit.slurm.slurm", "slurm", "hydra/launcher=slurm").SlurmJob
            from gan_je.slurm_queue import QueueWatcher

            self._original, job.watcher = job.watcher, QueueWatcher(self.delay_s)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._original is not None:
            job = require("submitit.slurm.slurm", "slurm", "hydra/launcher=slurm").SlurmJob
            job.watcher, self._original = self._original, None
