"""submitit's job-state poller for clusters without accounting: job states from ``squeue``
where ``sacct`` does not work (used by :class:`gan_je.slurm.QueuePolling`).

It subclasses submitit's watcher, so importing it needs submitit (the ``slurm`` extra);
nothing else in gan_je imports it.
"""

from __future__ import annotations

import logging
import subprocess
from typing import ClassVar

from submitit.slurm.slurm import SlurmInfoWatcher

log = logging.getLogger(__name__)


class QueueWatcher(SlurmInfoWatcher):
    """submitit's job-state poller, reading ``squeue`` where ``sacct`` does not work.

    The first poll asks ``sacct``; if accounting is off (a common setup for small clusters)
    it says so in one log line and from then on lists the user's jobs with ``squeue``, which
    knows a job while it is queued or running and for ``MinJobAge`` (300 s by default) after
    it ends. A job that has left the queue has state ``LEFT_QUEUE``: submitit then reads its
    result file, or reports that the job produced none.
    """

    LEFT_QUEUE = "LEFT_QUEUE"
    #: squeue states of a job that is not over, which submitit's list (sacct's) lacks
    NOT_OVER: ClassVar[dict[str, str]] = {
        "CONFIGURING": "PENDING",
        "REQUEUE_HOLD": "PENDING",
        "REQUEUE_FED": "PENDING",
        "RESV_DEL_HOLD": "PENDING",
        "SUSPENDED": "RUNNING",
        "STOPPED": "RUNNING",
        "SIGNALING": "RUNNING",
        "RESIZING": "RUNNING",
        "STAGE_OUT": "RUNNING",
    }
    SQUEUE = ("squeue", "--me", "--array", "--noheader", "--states=all", "--format=%i|%T|%N")

    def __init__(self, delay_s: int = 60) -> None:
        super().__init__(delay_s=delay_s)
        self.accounting: bool | None = None

    def _make_command(self) -> list[str] | None:
        command = super()._make_command()
        if command is None:
            return None
        if self.accounting is None:
            self.accounting = _sacct_works()
            if not self.accounting:
                log.info("SLURM accounting (sacct) is off here: job states come from squeue")
        return command if self.accounting else list(self.SQUEUE)

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        if self.accounting:
            return super().read_info(string)
        text = string.decode() if isinstance(string, bytes) else string
        info = super().read_info("JobID|State|NodeList\n" + text)
        for stats in info.values():
            stats["State"] = self.NOT_OVER.get(stats["State"], stats["State"])
        for job in self._registered - self._finished:
            info.setdefault(job, {"JobID": job, "State": self.LEFT_QUEUE, "NodeList": ""})
        return info


def _sacct_works() -> bool:
    try:
        probe = subprocess.run(
            ["sacct", "--noheader", "--allocations", "--starttime=now"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0
