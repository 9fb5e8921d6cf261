"""One run per run directory: a running ``gan_je.train`` marks its directory with its process
id (``.gan_je.pid``), so a second run started there, as two runs with one inherited
``$GAN_JE_RUN_ID`` would be, is refused before it mixes their records."""

from __future__ import annotations

import os
from pathlib import Path

from gan_je import resolvers, slurm
from gan_je.atomic_files import write_atomically
from gan_je.errors import ConfigError

LOCK = ".gan_je.pid"


def hold_run_directory(output_dir: str | Path) -> Path:
    """Mark ``output_dir`` as this process's (``.gan_je.pid``) and return the mark; refuse a
    directory a running process holds, as two runs with one inherited ``$GAN_JE_RUN_ID``
    would share. A mark left by a process that has ended is taken over, and so is any mark
    in a requeued SLURM job (SLURM ended its earlier run, maybe on another node). Only
    rank 0 of a multi-task SLURM job marks the directory; :func:`release_run_directory`
    removes the mark."""
    lock = Path(output_dir) / LOCK
    if slurm.global_rank() != 0:  # the other tasks of one SLURM job share rank 0's directory
        return lock
    try:
        holder = None if slurm.restart_count() > 0 else int(lock.read_text())
    except (OSError, ValueError):
        holder = None
    if holder is not None and holder != os.getpid() and _running(holder):
        raise ConfigError(
            f"{output_dir} is in use by the running process {holder}; a second run would mix "
            f"their records (an inherited {resolvers.RUN_ID}? unset it, or pass another "
            f"hydra.run.dir)"
        )
    write_atomically(lock, f"{os.getpid()}\n")
    return lock


def release_run_directory(lock: Path) -> None:
    """Remove the mark :func:`hold_run_directory` returned (rank 0 of a SLURM job only)."""
    if slurm.global_rank() == 0:
        lock.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
