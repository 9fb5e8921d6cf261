"""Third-party lines printed on every run that say nothing about it, each removed where it
starts. Those that no setting or argument avoids are dropped by exact message and module;
every other warning stays visible.

The others are removed at their source elsewhere: W&B's "anonymous setting" warning
(:class:`gan_je.loggers.FallbackWandbLogger` passes no ``anonymous``) and Optuna's storage
importing alembic, which logs one "setup plugin" line per plugin
(``conf/hparams_search/optuna.yaml`` sets that logger's level).
"""

from __future__ import annotations

import logging
import os
import warnings

#: Lightning's advertisement, logged by every ``Trainer`` without a ``LitLogger``
#: (lightning/pytorch/trainer/connectors/logger_connector/logger_connector.py).
LITLOGGER_TIP = "💡 Tip: For seamless cloud logging and experiment tracking"
#: The loggers Lightning's rank-zero messages go through (the last of its packages imported
#: chooses which: lightning_utilities.core.rank_zero.log).
RANK_ZERO_LOGGERS = (
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
)


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LITLOGGER_TIP)


def silence_third_party_noise() -> None:
    """Drop, for this process, the lines Lightning prints on every run that do not apply:

    - the litlogger tip: Lightning logs it unless a logger is its own ``LitLogger``, through
      the logger all its rank-zero messages share ("GPU available", ...), so a filter on that
      logger drops that one message;
    - torch's ``LeafSpec`` deprecation: Lightning 2.6 itself builds a ``LeafSpec()`` for every
      data loader (lightning/pytorch/utilities/_pytree.py), whatever the user does; only a
      newer Lightning removes it, so it is ignored from that module only;
    - the "``srun`` command is available" hint, outside a SLURM allocation only: Lightning
      gives it wherever an ``srun`` executable exists and ``SLURM_NTASKS`` is unset, a
      workstation or login node included, where it cannot apply (gan_je's SLURM jobs start
      their tasks with srun, ``hydra/launcher=slurm``). Inside an allocation it stays.

    Idempotent: calling it again adds nothing."""
    for name in RANK_ZERO_LOGGERS:
        rank_zero = logging.getLogger(name)
        if not any(isinstance(f, _DropLitLoggerTip) for f in rank_zero.filters):
            rank_zero.addFilter(_DropLitLoggerTip())
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
        module=r"lightning\.pytorch\.utilities\._pytree",
    )
    if "SLURM_JOB_ID" not in os.environ:
        warnings.filterwarnings(
            "ignore",
            message=r"The `srun` command is available on your system but is not used",
            module=r"lightning\.fabric\.plugins\.environments\.slurm",
        )
