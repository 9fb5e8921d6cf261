"""Experiment loggers: W&B online or offline by credentials."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger


def wandb_credentials_present() -> bool:
    """True when W&B could log online: ``WANDB_API_KEY`` set, or a ``~/.netrc`` (or
    ``$NETRC``) entry for ``api.wandb.ai`` as ``wandb login`` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.is_file() and netrc.netrc(path).authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_logger(offline: bool | None = None, **kwargs: Any) -> WandbLogger:
    """A Lightning ``WandbLogger`` that logs offline unless W&B credentials are configured.

    ``offline=None`` decides from :func:`wandb_credentials_present` (and an explicit
    ``WANDB_MODE`` in the environment wins); ``True``/``False`` force either. Other keyword
    arguments go to ``WandbLogger`` (project, name, group, save_dir, tags, ...).
    """
    if offline is None:
        mode = os.environ.get("WANDB_MODE")
        offline = mode in ("offline", "dryrun") if mode else not wandb_credentials_present()
    save_dir = kwargs.get("save_dir")
    if save_dir is not None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(offline=bool(offline), **kwargs)
