"""A run directory belongs to one run, and holds one run at a time.

- :func:`check_run_directory` (before Hydra creates the directory, from the Hydra callback
  :class:`CheckRunDirectory`, and again by ``gan_je.train``): a path the file system can hold
  (no name over its limit) in a place this user can write.
- :func:`hold_run_directory`: an exclusive lock (``flock``) on ``<dir>/.gan_je.lock``, taken
  before anything is written there and held for the run's life, so a second run started
  there (two runs with one inherited ``$GAN_JE_RUN_ID``, say) is refused. The kernel
  releases it when the process ends however it ends (``kill -9`` included), so a stale mark,
  a reused process id or a slow file system cannot block or admit a run wrongly.
- :func:`claim_for_fresh_run`: a run that starts afresh (no ``resume``, no ``ckpt_path``)
  refuses a directory that already holds a run's records, unless ``overwrite=true``.
- :func:`correct_killed_run`: a ``summary.json`` left ``running`` by a killed process says
  ``killed`` (``report`` calls it; a run taking its directory over does the same).

Only the primary process of a run takes part (rank 0 of a SLURM job, not the processes a
DDP strategy starts): the others share the primary's directory.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

from gan_je import resolvers, slurm
from gan_je.atomic_files import write_atomically
from gan_je.errors import ConfigError, RecordError, RunDirectoryError

log = logging.getLogger(__name__)
LOCK = ".gan_je.lock"
#: What ``gan_je.train`` writes in a run directory: a directory holding any of these holds a
#: run's records, which a fresh run would replace or mix with its own.
RUN_ENTRIES = (
    "summary.json", "metrics.csv", "curves.png", "train.log", "checkpoints", "samples",
    ".hydra", "wandb", "csv", "tensorboard",
)  # fmt: skip
#: How long a requeued SLURM job waits for its earlier instance's lock to be released (a
#: network file system frees the lock of a crashed node when its lease expires).
REQUEUE_WAIT_S = 120.0


def is_primary() -> bool:
    """Whether this process speaks for its run: rank 0 of a SLURM job, and not one of the
    processes Lightning's DDP launcher starts (``$LOCAL_RANK`` / ``$NODE_RANK`` > 0)."""
    ranks = (os.environ.get(name, "0") for name in ("LOCAL_RANK", "NODE_RANK"))
    return slurm.global_rank() == 0 and all(not r.isdigit() or int(r) == 0 for r in ranks)


def check_run_directory(output_dir: str | Path) -> Path:
    """``output_dir`` as an absolute path, refused in one sentence where a run cannot write:
    a name longer than the file system allows, a path longer than ``PATH_MAX``, or a
    directory (or the nearest existing folder above a new one) that is read-only for this
    user."""
    path = Path(output_dir).absolute()
    existing = next(folder for folder in (path, *path.parents) if os.path.exists(folder))
    if not existing.is_dir():
        raise RunDirectoryError(f"the run directory {path} lies under {existing}, which is a file")
    name_max = os.pathconf(existing, "PC_NAME_MAX")
    long = [part for part in path.parts if len(os.fsencode(part)) > name_max]
    if long:
        raise RunDirectoryError(
            f"the run directory's name {long[0][:40]}... has {len(os.fsencode(long[0]))} "
            f"bytes, more than the {name_max} this file system allows: choose a shorter "
            f"hydra.run.dir"
        )
    path_max = os.pathconf(existing, "PC_PATH_MAX")
    if len(os.fsencode(str(path))) + 64 > path_max:  # room for the files inside
        raise RunDirectoryError(
            f"the run directory's path has {len(os.fsencode(str(path)))} bytes, too close to "
            f"the {path_max} this system allows: choose a shorter hydra.run.dir"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "the run directory" if existing == path else f"{existing}, where it would be made,"
        raise RunDirectoryError(
            f"{where} is not writable for this user ({path}): choose another hydra.run.dir"
        )
    return path


@dataclass
class RunLock:
    """The lock :func:`hold_run_directory` took (``file`` is ``None`` in a secondary
    process, which takes none)."""

    path: Path
    file: Any = None


def hold_run_directory(output_dir: str | Path) -> RunLock:
    """Lock ``output_dir`` for this run (``flock`` on ``.gan_je.lock``, which then names
    this process and host) until :func:`release_run_directory`; refuse, in one sentence
    naming the holder, a directory another live process holds. A requeued SLURM job waits
    up to :data:`REQUEUE_WAIT_S` for its earlier instance's lock. Secondary processes
    (:func:`is_primary`) take no lock."""
    path = check_run_directory(output_dir)
    lock = RunLock(path / LOCK)
    if not is_primary():
        return lock
    path.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + (REQUEUE_WAIT_S if slurm.restart_count() > 0 else 0.0)
    while True:
        lock.file = _try_lock(lock.path)
        if lock.file is not None:
            break
        if time.monotonic() >= deadline:
            raise RunDirectoryError(_held_message(path))
        time.sleep(1.0)
    try:  # who holds it, for the message a second run gets (a full disk leaves it empty)
        lock.file.seek(0)
        lock.file.truncate()
        lock.file.write(f"{os.getpid()} {socket.gethostname()} {time.strftime('%F %T')}\n")
        lock.file.flush()
    except OSError:
        pass
    _record_killed_run(path)
    return lock


def release_run_directory(lock: RunLock) -> None:
    """Release the lock :func:`hold_run_directory` took (the file stays: removing it would
    let a process that opened it just before lock a file nobody else sees)."""
    if lock.file is not None:
        lock.file.close()  # closing the file releases the flock
        lock.file = None


def correct_killed_run(output_dir: str | Path) -> bool:
    """Whether ``output_dir``'s ``summary.json`` said ``running`` although no process runs
    there (it was killed, or its machine stopped), in which case it now says ``killed``
    (``report`` calls this; ``gan_je.train`` does the same when it takes a directory over).
    A directory a live process holds, or that cannot be locked, is left alone."""
    path = Path(output_dir) / LOCK
    if not (Path(output_dir) / "summary.json").is_file():
        return False
    try:
        file = _try_lock(path) if path.is_file() else None
    except RunDirectoryError:  # cannot even open it (a read-only folder): leave it
        return False
    if path.is_file() and file is None:
        return False  # a live run holds it
    try:
        return _record_killed_run(Path(output_dir))
    finally:
        if file is not None:
            file.close()


def _record_killed_run(output_dir: Path) -> bool:
    """With ``output_dir`` held by this process: a ``summary.json`` that still says
    ``running`` was left by a process that ended without recording its end; say so."""
    summary = _summary(output_dir)
    if summary is None or summary.get("status") != "running":
        return False
    summary["status"] = "killed"
    summary["error"] = (
        "the process ended without recording its end (killed, or its machine stopped); "
        "resume=true continues from its last checkpoint"
    )
    try:
        write_atomically(output_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    except RecordError:  # a full disk: the record stays as it was
        return False
    log.warning("%s: the run there was killed; its summary.json now says so", output_dir)
    return True


def run_entries(output_dir: str | Path) -> list[str]:
    """The :data:`RUN_ENTRIES` that ``output_dir`` holds: the records of a run. The record
    of a start that failed before training (a ``summary.json`` with no generator step and
    no validation, and its ``train.log``) holds nothing to lose: a fixed command may start
    there again."""
    path = Path(output_dir)
    found = [name for name in RUN_ENTRIES if (path / name).exists()]
    return [] if set(found) <= {"summary.json", "train.log"} and _failed_start(path) else found


def _summary(output_dir: Path) -> dict[str, Any] | None:
    """``output_dir``'s ``summary.json`` as a dict; ``None`` for none, or one that is not
    (``report`` names such a record as unreadable)."""
    try:
        summary = json.loads((output_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def _failed_start(output_dir: Path) -> bool:
    summary = _summary(output_dir)
    return (
        summary is not None
        and summary.get("status") in ("failed", "interrupted")
        and summary.get("g_steps") == 0
        and summary.get("validations") == 0
    )


def claim_for_fresh_run(output_dir: str | Path, overwrite: bool) -> None:
    """A run that starts afresh in ``output_dir``: refuse, in one sentence and touching
    nothing, a directory holding another run's records (:func:`run_entries`); with
    ``overwrite`` (and the directory held: :func:`hold_run_directory`) remove those records
    first (the lock and any file gan_je does not write stay). Secondary processes check
    nothing."""
    path = Path(output_dir)
    found = run_entries(path)
    if not found or not is_primary():
        return
    if not overwrite:
        raise RunDirectoryError(
            f"{path} already holds a run ({', '.join(found)}): continue it with resume=true, "
            f"choose another hydra.run.dir, or pass overwrite=true to replace its records"
        )
    log.warning("overwrite=true: removing the earlier run's %s from %s", ", ".join(found), path)
    for name in found:
        entry = path / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def write_hydra_record(
    output_dir: str | Path,
    cfg: DictConfig,
    overrides: list[str] | None = None,
    choices: dict[str, Any] | None = None,
) -> None:
    """Hydra's record of the run in ``<output_dir>/.hydra/``, as Hydra writes it
    (``config.yaml``: the composed config, unresolved; ``hydra.yaml``: Hydra's own;
    ``overrides.yaml``: the command line's overrides), but only once the run has started
    (``hydra.output_subdir`` is null), each file replaced atomically. A resumed run records
    the ``overrides`` and group ``choices`` of the settings it continues with
    (:mod:`gan_je.run_settings`) in place of its command line's. The full config, secrets
    included, stays on the local disk here (:mod:`gan_je.redaction`). Outside a Hydra run
    (the tests' composed configs without Hydra's runtime) only ``config.yaml``."""
    from hydra.core.hydra_config import HydraConfig

    if not is_primary():
        return
    folder = Path(output_dir) / ".hydra"
    write_atomically(folder / "config.yaml", OmegaConf.to_yaml(cfg))
    if HydraConfig.initialized():
        hydra = OmegaConf.to_container(HydraConfig.get(), resolve=False)
        if overrides is not None:
            hydra["overrides"]["task"] = list(overrides)
        if choices is not None:
            hydra["runtime"]["choices"] = dict(choices)
        write_atomically(folder / "hydra.yaml", OmegaConf.to_yaml({"hydra": hydra}))
        write_atomically(folder / "overrides.yaml", OmegaConf.to_yaml(hydra["overrides"]["task"]))


class HeldLogFile(logging.Handler):
    """The log lines a resumed run writes while it starts, held back from the run's log
    file (Hydra's ``train.log`` handler, and any other file handler of the root logger
    writing into the run directory) until :meth:`hand_back`: a resume refused before training
    leaves ``train.log`` as it was. The console still shows every line at once."""

    def __init__(self, output_dir: str | Path) -> None:
        super().__init__()
        folder = Path(output_dir).absolute()
        root = logging.getLogger()
        self.files = [
            handler
            for handler in root.handlers
            if isinstance(handler, logging.FileHandler)
            and folder in Path(handler.baseFilename).parents
        ]
        self.records: list[logging.LogRecord] = []
        for handler in self.files:
            root.removeHandler(handler)
        root.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def hand_back(self, write: bool) -> None:
        """Give the log file back, with the held lines written (``write``, once the run has
        started) or dropped (a refused start)."""
        root = logging.getLogger()
        if self not in root.handlers:
            return
        root.removeHandler(self)
        for handler in self.files:
            root.addHandler(handler)
            for record in self.records if write else []:
                if record.levelno >= handler.level:
                    handler.handle(record)
        self.records = []


def _try_lock(path: Path) -> Any:
    """``path`` opened and exclusively locked, or ``None`` when another process holds it."""
    try:
        file = open(path, "a+")  # noqa: SIM115 (held open for the run's life)
    except OSError as err:
        raise RunDirectoryError(
            f"cannot open the run directory's lock {path} ({err.strerror})"
        ) from err
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        file.close()
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise RunDirectoryError(f"cannot lock {path} ({err.strerror})") from err
    return file


def _held_message(path: Path) -> str:
    try:
        holder = (path / LOCK).read_text().split()
    except OSError:
        holder = []
    who = f"process {holder[0]} on {holder[1]}" if len(holder) >= 2 else "another process"
    since = f", since {' '.join(holder[2:4])}" if len(holder) >= 4 else ""
    cause = (
        f" (it was started with the same ${resolvers.RUN_ID}, which this process inherited: "
        f"unset it)"
        if resolvers.inherited_run_id()
        else ""
    )
    return (
        f"{path} is in use by a running gan_je.train ({who}{since}); a second run would mix "
        f"their records{cause}: wait for it to end, or pass another hydra.run.dir"
    )


class CheckRunDirectory(HydraCallback):
    """Hydra callback (``conf/hydra/default.yaml``): :func:`check_run_directory` on the run
    (or sweep) directory before Hydra creates it, so a path that cannot be written ends the
    command in one sentence rather than in Hydra's traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "run")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "sweep")

    @staticmethod
    def _check(config: DictConfig, mode: str) -> None:
        from gan_je.commands import run_command  # the commands' way to end in one sentence

        def check() -> None:
            try:
                folder = OmegaConf.select(config, f"hydra.{mode}.dir", throw_on_missing=True)
            except Exception as err:  # a resolver refused (a run id leaving outputs/)
                cause: BaseException | None = err
                while cause is not None and not isinstance(cause, ConfigError):
                    cause = cause.__cause__ or cause.__context__
                raise ConfigError(f"hydra.{mode}.dir: {cause or err}") from None
            check_run_directory(folder)

        run_command("train", check)
