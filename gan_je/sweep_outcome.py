"""How the jobs of a sweep ended, and the exit status of the command that launched them.

Every job of a multirun records how it ended in the sweep directory,
``<sweep dir>/.jobs/<job number>.json`` — ``{"job", "status", "output_dir", "reason"}``, the
status one of :data:`STATUSES` — also a job refused its run directory, which writes nothing
there. Jobs may run in other processes (the joblib and submitit/SLURM launchers), so these
files are how the launching process learns what happened: at the end of the sweep
:class:`SweepOutcome` (a Hydra callback, ``conf/hydra/default.yaml``) prints one line with
the counts and the directories of the jobs that did not finish, and :func:`exit_status`, which
the entry points call after Hydra returns, is 1 when any job failed, stopped or was not run.
An Optuna study with failed trials (they return NaN) therefore exits 1 too, after writing
its ``optimization_results.yaml``.

A failing job's reason is one sentence on the console; its traceback goes to the job's log
file (``train.log``) only.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig

from gan_je.atomic_files import write_atomically
from gan_je.errors import RecordError, RunDirectoryError, StoppedBySignalError

log = logging.getLogger(__name__)

#: How a job can end; only ``finished`` counts as success.
STATUSES = ("finished", "failed", "stopped", "not run")
#: The folder of the sweep directory holding one outcome file per job.
OUTCOMES_FOLDER = ".jobs"

#: The outcomes :class:`SweepOutcome` read at the end of the last sweep of this process
#: (``None``: no sweep ended here), for :func:`exit_status`.
_last_sweep: list[dict[str, Any]] | None = None


def run_job(train: Callable[[], dict[str, Any]], output_dir: str | Path) -> dict[str, Any] | None:
    """Run one job of a multirun (``train()``, returning its summary) and record how it
    ended (:func:`record_outcome`). Returns the summary, or ``None`` when the job failed or
    was refused its run directory (``output_dir``), so the sweep goes on with the others.

    A failure is logged as one sentence with the path of ``train.log``, which alone gets the
    traceback; a refused job says so on stderr only (``train.log`` there is another run's).
    A job stopped by a signal ends its process (``SystemExit``): a local sweep stops there,
    and a SLURM job leaves no result, so submitit waits for the job SLURM requeues, whose
    outcome replaces this one.
    """
    try:
        summary = train()
    except StoppedBySignalError as err:
        log.warning("job stopped: %s", err)
        record_outcome("stopped", output_dir, str(err))
        raise SystemExit(f"gan_je.train: {err}") from None
    except RunDirectoryError as err:
        print(f"gan_je.train: job not run: {err}", file=sys.stderr)
        record_outcome("not run", output_dir, str(err))
        return None
    except Exception as err:
        reason = one_sentence(err)
        log_file = Path(output_dir) / "train.log"
        log.error("job failed: %s (traceback in %s)", reason, log_file)
        _log_to_files_only(log, "the traceback of that failure:")
        record_outcome("failed", output_dir, reason)
        return None
    record_outcome("finished", output_dir)
    return summary


def one_sentence(err: BaseException) -> str:
    """``err`` as one line: its type and the first line of its message."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _log_to_files_only(logger: logging.Logger, message: str) -> None:
    """Log ``message`` at ERROR with the current exception's traceback to the log files of
    the root logger (Hydra's ``train.log``) and to no other handler (the console)."""
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, (), sys.exc_info())
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def record_outcome(status: str, output_dir: str | Path, reason: str = "") -> None:
    """Write this job's outcome to ``<sweep dir>/.jobs/<job number>.json`` (atomically; the
    sweep directory and job number from Hydra's job config). A file that cannot be written
    is warned about, never raised over the job's own result."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    hydra = HydraConfig.get()
    outcome = {"job": hydra.job.num, "status": status, "output_dir": str(output_dir)}
    outcome["reason"] = reason
    path = Path(hydra.sweep.dir) / OUTCOMES_FOLDER / f"{hydra.job.num}.json"
    try:
        write_atomically(path, json.dumps(outcome, indent=2) + "\n")
    except RecordError as err:
        log.warning("could not record the job's outcome: %s", err)


def read_outcomes(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The outcomes the jobs of ``sweep_dir`` recorded, by job number; an outcome file that
    cannot be read is an outcome with status ``unreadable`` (which is not ``finished``)."""
    outcomes = []
    for path in Path(sweep_dir, OUTCOMES_FOLDER).glob("*.json"):
        try:
            outcome = json.loads(path.read_text())
            if not (
                isinstance(outcome, dict)
                and outcome.get("status") in STATUSES
                and isinstance(outcome.get("output_dir"), str)
            ):
                raise ValueError(f"not an outcome: {outcome!r}"[:200])
        except (OSError, ValueError) as err:
            outcome = {"job": path.stem, "status": "unreadable", "output_dir": str(path)}
            outcome["reason"] = str(err)
        outcomes.append(outcome)
    return sorted(outcomes, key=lambda o: (len(str(o["job"])), str(o["job"])))  # 2 before 10


def summary_line(sweep_dir: str | Path, outcomes: list[dict[str, Any]]) -> str:
    """One line: how many jobs ended how, with the directory of every job that did not
    finish, e.g. ``sweep outputs/multirun/x: 2 jobs: 1 finished, 1 failed (outputs/.../0)``."""
    if not outcomes:
        return f"sweep {sweep_dir}: no job recorded how it ended (in {OUTCOMES_FOLDER}/ there)"
    parts = []
    for status in (*STATUSES, "unreadable"):
        dirs = [o["output_dir"] for o in outcomes if o["status"] == status]
        if dirs:
            shown = "" if status == "finished" else f" ({', '.join(dirs)})"
            parts.append(f"{len(dirs)} {status}{shown}")
    return f"sweep {sweep_dir}: {len(outcomes)} jobs: {', '.join(parts)}"


def failed(outcomes: list[dict[str, Any]] | None) -> bool:
    """Whether a sweep with these outcomes failed: no outcome at all, or any job that did
    not finish. ``None`` (no sweep) has not failed."""
    if outcomes is None:
        return False
    return not outcomes or any(o["status"] != "finished" for o in outcomes)


def exit_status() -> int:
    """The exit status for the command once Hydra has returned: 1 when the sweep it ran
    (if any) had a job that failed, stopped or was not run, else 0. The entry points end
    with ``sys.exit(exit_status())``."""
    return 1 if failed(_last_sweep) else 0


class SweepOutcome(HydraCallback):
    """Hydra callback (``conf/hydra/default.yaml``), in the launching process: clears the
    outcomes an earlier sweep left in the sweep directory, and at the end prints
    :func:`summary_line` and keeps the outcomes for :func:`exit_status`."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _last_sweep
        _last_sweep = None
        shutil.rmtree(Path(config.hydra.sweep.dir) / OUTCOMES_FOLDER, ignore_errors=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _last_sweep
        sweep_dir = config.hydra.sweep.dir
        _last_sweep = read_outcomes(sweep_dir)
        print(f"gan_je.train: {summary_line(sweep_dir, _last_sweep)}", flush=True)
