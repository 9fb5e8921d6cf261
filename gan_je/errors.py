"""The failures a user causes and can fix: each is reported by the commands
(``gan_je.train``, ``gan_je.evaluate``, ``gan_je.generate``) as one sentence, without a
traceback (set ``HYDRA_FULL_ERROR=1`` to see it)."""

from __future__ import annotations


class GanJeError(Exception):
    """Base of the errors a user can act on."""


class ConfigError(GanJeError, ValueError):
    """The chosen settings cannot work (alone or together); raised before any training."""


class PartError(ConfigError):
    """A part (network, loss, metric, ...) refused the arguments it was built with."""


class RunDirectoryError(ConfigError):
    """The run directory cannot be this run's: another live run holds it, it holds another
    run's records, or it cannot be written. Nothing in it is touched."""


class DataError(GanJeError, FileNotFoundError):
    """The data set is missing, empty, unreadable or too small for the chosen settings."""


class CheckpointError(GanJeError, ValueError):
    """A checkpoint file is missing, unreadable, or was not written by ``gan_je.train``, or
    one cannot be written (a full disk)."""


class RecordError(GanJeError, ValueError):
    """A run's record (``metrics.csv``, ``summary.json``) cannot be read: edited by hand,
    truncated, or written by something else."""


class DivergenceError(GanJeError, FloatingPointError):
    """A loss became NaN or infinite; training cannot continue from this state."""


class StoppedBySignalError(GanJeError):
    """The run was stopped by a signal (SIGTERM: pre-emption); a checkpoint at that step
    was saved, from which ``resume=true`` continues."""
