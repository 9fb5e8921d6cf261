"""Experiment loggers: W&B online or offline by credentials, charted against the generator
step, continued by a resumed run; pictures, text, sound and the run record's summary sent to
them; the W&B run ended."""

from __future__ import annotations

import http.client
import logging
import netrc
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import torch
import wandb
from lightning import Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image

from gan_je.atomic_files import write_atomically
from gan_je.checks import is_int
from gan_je.errors import RecordError
from gan_je.text import one_line

log = logging.getLogger(__name__)
#: Every W&B chart's x-axis: the generator step the module logs (``metrics.csv``'s ``g_step``),
#: not Lightning's ``trainer/global_step``.
STEP_METRIC = "train/g_step"
#: Where, under the logger's ``save_dir`` (the run directory), the W&B run's id is kept, so a
#: resumed run continues its W&B run; ``overwrite=true`` removes it with the ``wandb`` folder.
RUN_ID_FILE = Path("wandb") / "gan_je_run_id"


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
    warns that it has no effect on every run where Lightning passes ``None``). Once started,
    the run charts everything against :data:`STEP_METRIC` and its id is kept in
    ``<save_dir>/``:data:`RUN_ID_FILE`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)

    @property
    def experiment(self) -> Any:
        if self._experiment is not None or rank_zero_only.rank != 0:
            return super().experiment  # started, or Lightning's stand-in on other ranks
        try:
            run = super().experiment
        except Exception as err:  # wandb raises CommError, UsageError, ...
            if self._offline:
                raise
            reason = " ".join(str(err).split())[:200]
            log.warning("W&B did not start online (%s): logging offline", reason)
            self._offline = True
            self._wandb_init.pop("settings", None)
            self._wandb_init["mode"] = "offline"  # wandb's settings outlive the failed init
            run = super().experiment
        # the later definition of "*" replaces Lightning's x-axis (trainer/global_step)
        run.define_metric(STEP_METRIC)
        run.define_metric("*", step_metric=STEP_METRIC, step_sync=True)
        if self.save_dir is not None and recorded_run_id(self.save_dir) != run.id:
            try:
                write_atomically(Path(self.save_dir) / RUN_ID_FILE, f"{run.id}\n")
            except RecordError as err:  # a full disk: a resume would start a new W&B run
                log.warning("could not keep the W&B run's id: %s", err)
        return run


def recorded_run_id(save_dir: str | Path) -> str | None:
    """The id of the W&B run that logged into ``save_dir`` (a run directory) before, if any."""
    path = Path(save_dir) / RUN_ID_FILE
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


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

    A ``save_dir`` where a W&B run logged before (a resumed run's directory:
    :func:`recorded_run_id`) continues that run (``id``, with ``WandbLogger``'s
    ``resume="allow"``) unless ``id`` is given. Offline, the resumed part is a second
    ``offline-run-*`` folder with the same id; ``wandb sync`` uploads both into one run.
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
        if kwargs.get("id") is None:
            kwargs["id"] = recorded_run_id(save_dir)
    if offline:  # explicit: wandb's process-wide settings may hold an earlier online mode
        kwargs.setdefault("mode", "offline")
    else:
        kwargs.setdefault("settings", wandb.Settings(init_timeout=float(init_timeout)))
    return FallbackWandbLogger(offline=bool(offline), **kwargs)


def send_picture(trainer: Trainer, key: str, path: Path, g_step: int) -> None:
    """Log a PNG to the run's W&B and TensorBoard loggers (others have no image API), at
    generator step ``g_step``."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.log({key: wandb.Image(str(path)), STEP_METRIC: g_step})
        elif isinstance(logger, TensorBoardLogger):
            image = np.asarray(Image.open(path).convert("RGB"))
            logger.experiment.add_image(key, image, g_step, dataformats="HWC")


def send_text(trainer: Trainer, key: str, texts: list[str], g_step: int) -> None:
    """Log strings (decoded samples) to the run's W&B and TensorBoard loggers at generator
    step ``g_step``: for W&B a table with columns ``index`` and ``text``, for TensorBoard a
    text summary, one string a line of a Markdown code block (line breaks escaped:
    :func:`gan_je.text.one_line`)."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            rows = [[index, text] for index, text in enumerate(texts)]
            table = wandb.Table(columns=["index", "text"], data=rows)
            logger.experiment.log({key: table, STEP_METRIC: g_step})
        elif isinstance(logger, TensorBoardLogger):
            block = "\n".join(f"    {one_line(text)}" for text in texts)
            logger.experiment.add_text(key, block, g_step)


def send_audio(
    trainer: Trainer, key: str, clips: torch.Tensor, rate: int, g_step: int, max_clips: int = 8
) -> None:
    """Log the first ``max_clips`` clips ``(n, channels, length)`` (values in [-1, 1]) at
    ``rate`` samples per second to the run's W&B and TensorBoard loggers (others have no
    audio API), at generator step ``g_step``, each clip under ``<key>/<index>``: for W&B a
    ``wandb.Audio`` of a 16-bit WAV with every channel (one per key: a list under one key
    would need the ``soundfile`` package), for TensorBoard an audio summary of its mono mix
    (the mean of its channels: TensorBoard's writer takes one channel)."""
    from gan_je.audio import write_wav

    if clips.ndim != 3 or 0 in clips.shape:
        raise ValueError(
            f"clips must have shape (n >= 1, channels >= 1, length >= 1), got {tuple(clips.shape)}"
        )
    if not (is_int(max_clips) and max_clips >= 1):
        raise ValueError(f"max_clips must be an int >= 1, got {max_clips!r}")
    clips = clips[:max_clips].detach().float().cpu().clamp(-1, 1)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            with tempfile.TemporaryDirectory(prefix="gan_je-audio-") as folder:
                sounds: dict[str, Any] = {STEP_METRIC: g_step}
                for index, clip in enumerate(clips):
                    write_wav(Path(folder) / f"{index}.wav", clip, rate)
                    sounds[f"{key}/{index}"] = wandb.Audio(str(Path(folder) / f"{index}.wav"))
                logger.experiment.log(sounds)  # copies the files into the run
        elif isinstance(logger, TensorBoardLogger):
            for index, clip in enumerate(clips):
                logger.experiment.add_audio(
                    f"{key}/{index}", clip.mean(dim=0, keepdim=True), g_step, sample_rate=rate
                )


def send_summary(trainer: Trainer, summary: dict[str, Any]) -> None:
    """Put the run record's values (:meth:`gan_je.callbacks.RunRecord.summary`, as in
    ``summary.json``) in the summary of ``trainer``'s W&B run: ``final/<key>`` the last
    validation's, ``best/<key>`` those of the validation with the lowest ``val/jsd`` (its
    step ``best/g_step``), ``status`` and ``g_steps``. W&B's own summary keeps the last
    value of each chart."""
    if not trainer.is_global_zero:
        return
    values = {f"final/{key}": value for key, value in summary["final"].items()}
    values |= {f"best/{key}": value for key, value in summary["best"].items()}
    values |= {"best/g_step": summary["best_g_step"], "status": summary["status"]}
    values["g_steps"] = summary["g_steps"]
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(values)


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
