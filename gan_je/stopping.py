"""What a run stopped by a signal says, and the SLURM job it requeues: the run has saved its
checkpoint (:class:`gan_je.callbacks.CheckpointOnSignal`); a job warned of its time limit
(SIGUSR1) is requeued by its rank 0 and resumes from that checkpoint."""

from __future__ import annotations

import logging
import subprocess
from typing import TYPE_CHECKING

from gan_je import slurm
from gan_je.checkpoints import last_checkpoint
from gan_je.errors import StoppedBySignalError
from gan_je.run_settings import resume_command

if TYPE_CHECKING:
    from gan_je.callbacks import CheckpointOnSignal

log = logging.getLogger(__name__)


def stopped_by_signal(
    g_step: int, output_dir: str, signals: CheckpointOnSignal
) -> StoppedBySignalError:
    """The error a run stopped by a signal at generator step ``g_step`` ends with. A SLURM
    job warned of its time limit is first requeued by its rank 0, and SLURM restarts it to
    resume from its checkpoint, but only if it trained since it started: a job that cannot
    reach a step within its time slot is not requeued forever."""
    last = last_checkpoint(output_dir)
    if slurm.job_id() is None:
        return StoppedBySignalError(
            f"stopped by SIGTERM at generator step {g_step}; continue from its checkpoint "
            f"with {resume_command(output_dir)}"
        )
    if signals.time_limit and slurm.global_rank() == 0:
        if g_step <= signals.start_step:
            return StoppedBySignalError(
                f"stopped before the time limit at generator step {g_step}, the step it "
                f"started from: not requeued (no progress within the job's time limit; "
                f"raise hydra.launcher.timeout_min)"
            )
        try:
            job = slurm.requeue()
        except (OSError, subprocess.SubprocessError) as err:
            log.error("scontrol requeue failed (%s): the job is not requeued", err)
            return StoppedBySignalError(
                f"stopped before the time limit at generator step {g_step}; requeueing "
                f"failed ({err}): resubmit with {resume_command(output_dir)}"
            )
        return StoppedBySignalError(
            f"stopped before the time limit at generator step {g_step}; requeued SLURM job "
            f"{job}, which resumes from {last}"
        )
    return StoppedBySignalError(
        f"stopped by SIGTERM at generator step {g_step}; if SLURM requeues job "
        f"{slurm.job_id()}, it resumes from {last}"
    )
