"""Experiment loggers: W&B online or offline by credentials, pictures sent to them, and the
W&B run ended."""

from __future__ import annotations

import http.client
import logging
import netrc
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import wandb
from lightning import Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from PIL import Image

log = logging.getLogger(__name__)


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


def wandb_server_reachable(timeout: float = 15.0) -> bool:
    """Whether the W&B server (``WANDB_BASE_URL``, by default https://api.wandb.ai) answers
    an HTTP request within ``timeout`` seconds (any answer, an error status included). A
    server that accepts connections but never answers counts as unreachable: W&B would wait
    for it until its own timeout."""
    url = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:  # an answer, if not a page
        return True
    except (OSError, ValueError, http.client.HTTPException):  # no answer, or a bad URL
        return False


class FallbackWandbLogger(WandbLogger):
    """A ``WandbLogger`` whose run, when it cannot start online (a rejected key, a server
    that fails or times out after ``init_timeout``), starts offline instead, saying so in
    one log line: the logger never fails a run. It passes W&B no ``anonymous`` setting (W&B
    warns that it has no effect on every run where Lightning passes ``None``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)

    @property
    def experiment(self) -> Any:
        try:
            return super().experiment
        except Exception as err:  # wandb raises CommError, UsageError, ...
            if self._offline:
                raise
            reason = " ".join(str(err).split())[:200]
            log.warning("W&B did not start online (%s): logging offline", reason)
            self._offline = True
            self._wandb_init.pop("settings", None)
            self._wandb_init["mode"] = "offline"  # wandb's settings outlive the failed init
            return super().experiment


def wandb_logger(
    offline: bool | None = None, init_timeout: float = 15.0, **kwargs: Any
) -> WandbLogger:
    """A Lightning ``WandbLogger`` that logs offline unless W&B credentials are configured
    and the server answers.

    ``offline=None`` decides from :func:`wandb_credentials_present` (an explicit
    ``WANDB_MODE`` in the environment wins) and, with credentials, falls back to offline in
    one log line when :func:`wandb_server_reachable` says no within ``init_timeout``
    seconds, so a run never fails on the network nor waits longer than that for a server
    that does not answer; ``True``/``False`` force either. An online run that does not start
    within ``init_timeout`` seconds (plus W&B's own start, about 2 s), or fails to, logs
    offline (:class:`FallbackWandbLogger`). Other keyword arguments go to ``WandbLogger`` (project,
    name, group, save_dir, tags, ...).
    """
    if offline is None:
        mode = os.environ.get("WANDB_MODE")
        offline = mode in ("offline", "dryrun") if mode else not wandb_credentials_present()
        if not offline and not mode and not wandb_server_reachable(init_timeout):
            log.warning("W&B credentials found but the server does not answer: logging offline")
            offline = True
    save_dir = kwargs.get("save_dir")
    if save_dir is not None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
    if offline:  # explicit: wandb's process-wide settings may hold an earlier online mode
        kwargs.setdefault("mode", "offline")
    else:
        kwargs.setdefault("settings", wandb.Settings(init_timeout=float(init_timeout)))
    return FallbackWandbLogger(offline=bool(offline), **kwargs)


def send_picture(trainer: Trainer, key: str, path: Path, g_step: int) -> None:
    """Log a PNG to the run's W&B and TensorBoard loggers (others have no image API)."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key, [str(path)], step=trainer.global_step)
        elif isinstance(logger, TensorBoardLogger):
            image = np.asarray(Image.open(path).convert("RGB"))
            logger.experiment.add_image(key, image, g_step, dataformats="HWC")


def finish_wandb(trainer: Trainer) -> None:
    """End the W&B run of ``trainer``'s W&B logger, if it has one (the next multirun job
    starts a fresh run); say how to upload an offline run."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and trainer.is_global_zero and wandb.run is not None:
            offline = wandb.run.settings.mode in ("offline", "dryrun")
            run_dir = Path(wandb.run.dir).parent
            wandb.finish()
            if offline:
                log.info("W&B run saved offline; upload it with: wandb sync %s", run_dir)
