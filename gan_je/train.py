"""``python -m gan_je.train``: train a GAN from the Hydra config ``conf/train.yaml``.

Examples::

    python -m gan_je.train                                  # DCGAN on 5,000 MNIST digits
    python -m gan_je.train experiment=ring                  # MLP GAN on the 8-Gaussian ring
    python -m gan_je.train model=dcgan estimator=gaussian loss=hinge trainer.max_epochs=5
    python -m gan_je.train debug=fdr                        # one batch of everything

Everything is built with ``hydra.utils.instantiate``; :func:`train` is the whole program
and returns the run's summary (also written to ``<run dir>/summary.json``).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning
import torch
import wandb
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from gan_je import CONFIG_PATH, parts, resolvers, slurm
from gan_je.callbacks import CheckpointOnSignal, RunRecord
from gan_je.checkpoints import current_hyperparameters, read_checkpoint
from gan_je.commands import build_from_config, chosen, import_packages, run_command
from gan_je.errors import CheckpointError, ConfigError, PartError, StoppedBySignalError
from gan_je.extras import check_hydra_plugins
from gan_je.module import GANModule
from gan_je.records import write_atomically
from gan_je.redaction import public_config, public_overrides

log = logging.getLogger(__name__)
#: The top-level settings gan_je reads (conf/train.yaml); anything else is warned about.
SETTINGS = (
    "data", "model", "loss", "estimator", "trainer", "logger", "callbacks", "paths", "seed",
    "ckpt_path", "resume", "optimized_metric", "imports",
)  # fmt: skip


def checkpoint_to_resume(cfg: DictConfig) -> str | None:
    """``ckpt_path`` when given, else with ``resume=true`` this run directory's last
    checkpoint (rerun with ``hydra.run.dir=<the run's directory>`` to continue it); with
    ``resume=auto`` that checkpoint when there is one, else none. A SLURM job that has been
    requeued (``$SLURM_RESTART_COUNT`` > 0) continues from its own ``last.ckpt`` when there is
    one (whatever ``ckpt_path`` it started from), else as with ``resume=auto``.
    :func:`check_resumable` then reads it."""
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    restarts = slurm.restart_count()
    if restarts and last.is_file():  # its own progress, not the ckpt_path it started from
        log.info("SLURM restart %d of job %s: resuming from %s", restarts, slurm.job_id(), last)
        return str(last)
    if cfg.get("ckpt_path"):
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise ConfigError(f"ckpt_path={path} does not exist")
        return str(path)
    resume = cfg.get("resume") or ("auto" if restarts else False)
    if resume:
        if resume == "auto" and not last.is_file():
            return None  # a first start; a requeued job finds its checkpoint
        if not last.is_file():
            raise ConfigError(
                f"resume=true found no {last}; pass hydra.run.dir=<the run's directory> "
                f"or ckpt_path=<file>"
            )
        return str(last)
    return None


def check_resumable(path: str, module: GANModule, cfg: DictConfig) -> None:
    """Before resuming from checkpoint ``path``, read as data (an empty, truncated or foreign
    file fails in one sentence): refuse parts naming unregistered code, networks of other
    shapes and a run that has nothing left to do, and say which settings differ from the
    checkpoint's (the new learning rates apply; shapes cannot change)."""
    checkpoint = read_checkpoint(path)
    old = current_hyperparameters(checkpoint["hyper_parameters"])
    try:  # train builds from its own config, but a checkpoint naming code is refused anyway
        for key in GANModule.PARTS:
            parts.check_registered(old.get(key), key)
        parts.check_registered((old.get("run_config") or {}).get("data"), "data")
    except ConfigError as err:
        raise CheckpointError(f"{path}: {err}") from None
    saved = checkpoint["state_dict"]
    for key, tensor in module.state_dict().items():
        if key.startswith(("generator.", "discriminator.", "ema.")):
            before = tuple(saved[key].shape) if key in saved else "nothing"
            if before != tuple(tensor.shape):
                raise ConfigError(
                    f"{path} holds other networks than this config builds ({key}: {before} "
                    f"there, {tuple(tensor.shape)} here); resume with the settings it was "
                    f"trained with"
                )
    done, max_epochs = epochs_trained(checkpoint), cfg.trainer.get("max_epochs")
    if max_epochs not in (None, -1) and done >= max_epochs:
        raise ConfigError(
            f"{path} has trained {done} epochs and trainer.max_epochs={max_epochs}: nothing "
            f"to do; raise trainer.max_epochs to train on"
        )
    # a setting the checkpoint predates had its default then
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(GANModule.__init__).parameters.items()
    }
    changed = [
        key
        for key in sorted(old.keys() | module.hparams.keys())
        if key not in ("run_config", "data_spec")
        and old.get(key, defaults.get(key)) != module.hparams.get(key, defaults.get(key))
    ]
    if changed:
        log.warning(
            "resuming with settings that differ from the checkpoint's: %s (new learning "
            "rates apply unless a scheduler sets them)",
            ", ".join(f"model.{key}" for key in changed),
        )


def epochs_trained(checkpoint: dict[str, Any]) -> int:
    """The whole epochs a checkpoint has trained: the fit loop's processed epochs, which
    leaves out an epoch stopped inside (at a signal) and counts an epoch whose batches all
    ran, whether the checkpoint was saved before or after its end-of-epoch hooks."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["total"]["processed"])
    except (KeyError, TypeError):
        return int(checkpoint.get("epoch", -1)) + 1


def _share_cpus_with_joblib_jobs(cfg: DictConfig) -> None:
    """Under ``hydra/launcher=joblib`` several jobs share one machine in worker processes:
    DataLoader worker processes inside them fail (daemonic workers may not have children)
    or oversubscribe the CPUs, and each job's torch would use every core. So: no loader
    workers (the data sets are in memory anyway) and each job gets its share of the
    threads."""
    if not HydraConfig.initialized():
        return
    launcher = HydraConfig.get().launcher
    if "JoblibLauncher" not in str(launcher.get("_target_", "")):
        return
    if cfg.data.get("num_workers", 0) > 0:
        log.warning("hydra/launcher=joblib: data.num_workers=%s set to 0", cfg.data.num_workers)
        cfg.data.num_workers = 0
    cpus = os.cpu_count() or 1
    n_jobs = launcher.get("n_jobs") or -1
    jobs = cpus if n_jobs < 0 else min(n_jobs, cpus)
    torch.set_num_threads(max(1, cpus // jobs))


def build(
    cfg: DictConfig, run_config: dict[str, Any] | None = None
) -> tuple[lightning.LightningDataModule, GANModule]:
    """The run's datamodule, set up for training, and its :class:`GANModule` with the
    networks built for the data: missing data and networks that do not fit the data fail
    here, in one sentence, before any logger or trainer starts."""
    datamodule = build_from_config(cfg.data, "data")
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = build_from_config(cfg.model, "model", run_config=run_config)
    try:
        module.build_networks(datamodule.data_spec)
    except PartError as err:  # a network refused the data's shape
        model, data = chosen("model"), chosen("data")
        raise ConfigError(f"model={model} cannot be used with data={data}: {err}") from None
    _check_validation_size(cfg, datamodule, module)
    return datamodule, module


def _check_validation_size(
    cfg: DictConfig, datamodule: lightning.LightningDataModule, module: GANModule
) -> None:
    """The metric needs at least ``min_samples`` (k + 1 for the k-NN estimators) samples of
    each side; say so before training rather than at the first validation."""
    needed = module.metric.min_samples
    n_val = len(datamodule.val_set)
    limit = cfg.trainer.get("limit_val_batches")
    if isinstance(limit, int) and not isinstance(limit, bool):
        n_val = min(n_val, limit * datamodule.batch_size)
    elif isinstance(limit, float):
        n_val = int(n_val * limit)
    if n_val and n_val < needed:
        raise ConfigError(
            f"the estimator needs at least {needed} validation samples but validation sees "
            f"{n_val}: lower estimator.k or use a larger validation split"
        )


LOCK = ".gan_je.pid"


def hold_run_directory(output_dir: str | Path) -> Path:
    """Mark ``output_dir`` as this process's (``.gan_je.pid``) and return the mark; refuse a
    directory a running process holds, as two runs with one inherited ``$GAN_JE_RUN_ID``
    would share. A mark left by a process that has ended is taken over, and so is any mark
    in a requeued SLURM job (SLURM ended its earlier run, maybe on another node). Only
    rank 0 of a multi-task SLURM job marks the directory."""
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


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train as configured; return the summary written to ``summary.json``."""
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    record = RunRecord(cfg.paths.output_dir, overrides=public_overrides(overrides))
    unread = [key for key in cfg if key not in SETTINGS]
    if unread:  # e.g. +lr=... where model.optimizer_g.lr was meant
        log.warning("gan_je reads no top-level setting %s: nothing uses it", ", ".join(unread))
    lock = hold_run_directory(cfg.paths.output_dir)  # before anything is written there
    signals = CheckpointOnSignal(cfg.paths.output_dir)
    signals.install()  # SLURM's time-limit warning, from now to the end of the run
    try:  # anything failing before training is recorded too (fit records its own)
        import_packages(cfg.get("imports"))
        _share_cpus_with_joblib_jobs(cfg)
        lightning.seed_everything(cfg.seed, workers=True)
        ckpt_path = checkpoint_to_resume(cfg)
        resolved = public_config(OmegaConf.to_container(cfg, resolve=True))
        datamodule, module = build(cfg, run_config=resolved)
        if ckpt_path:
            check_resumable(ckpt_path, module, cfg)
        callbacks = [signals, record]
        callbacks += [
            build_from_config(c, "callbacks") for c in (cfg.get("callbacks") or {}).values() if c
        ]
        loggers = [build_from_config(c, "logger") for c in (cfg.get("logger") or {}).values() if c]
        trainer = build_from_config(
            cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False
        )
        for logger in trainer.loggers:
            logger.log_hyperparams(resolved)
    except Exception as err:
        signals.restore()
        if slurm.global_rank() == 0:
            record.fail(err)
            lock.unlink(missing_ok=True)
        raise
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:  # a SystemExit with status 0: say what happened, exit 1
        raise _stopped(module.g_step, cfg.paths.output_dir, signals) from None
    finally:
        _finish_wandb(trainer)
        signals.restore()
        if slurm.global_rank() == 0:
            lock.unlink(missing_ok=True)
    # written by global rank 0, also when the ranks ran in spawned processes
    return json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())


def _stopped(g_step: int, output_dir: str, signals: CheckpointOnSignal) -> StoppedBySignalError:
    """What a run stopped by a signal says. A SLURM job warned of its time limit is first
    requeued by its rank 0, and SLURM restarts it to resume from its checkpoint, but only if
    it trained since it started: a job that cannot reach a step within its time slot is not
    requeued forever."""
    if slurm.job_id() is None:
        return StoppedBySignalError(
            f"stopped by SIGTERM at generator step {g_step}; continue from its checkpoint "
            f"with resume=true hydra.run.dir={output_dir}"
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
                f"failed ({err}): resubmit with resume=true hydra.run.dir={output_dir}"
            )
        return StoppedBySignalError(
            f"stopped before the time limit at generator step {g_step}; requeued SLURM job "
            f"{job}, which resumes from {output_dir}/checkpoints/last.ckpt"
        )
    return StoppedBySignalError(
        f"stopped by SIGTERM at generator step {g_step}; if SLURM requeues job "
        f"{slurm.job_id()}, it resumes from {output_dir}/checkpoints/last.ckpt"
    )


def _finish_wandb(trainer: lightning.Trainer) -> None:
    """End the W&B run (the next multirun job starts a fresh one); say how to sync it."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and trainer.is_global_zero and wandb.run is not None:
            offline = wandb.run.settings.mode in ("offline", "dryrun")
            run_dir = Path(wandb.run.dir).parent
            wandb.finish()
            if offline:
                log.info("W&B run saved offline; upload it with: wandb sync %s", run_dir)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point: returns the final value of ``optimized_metric`` for sweepers.

    In a multirun a failing job (bad settings, divergence) is logged, recorded as failed in
    its ``summary.json`` and returns NaN, so the other jobs go on. A job stopped by a signal
    ends its process instead (``SystemExit``): a local sweep stops there, and a SLURM job
    leaves no result, so submitit waits for the job SLURM requeues. A single run that fails
    for a reason the user can fix ends with one sentence.
    """
    # W&B records the command line in its metadata: no secret values there (Hydra has read it)
    sys.argv[1:] = public_overrides(sys.argv[1:])
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        try:
            summary = train(cfg)
        except StoppedBySignalError as err:
            log.warning("job stopped: %s", err)
            raise SystemExit(f"gan_je.train: {err}") from None
        except Exception:
            log.exception("job failed (recorded in %s/summary.json)", cfg.paths.output_dir)
            return math.nan
    else:
        summary = run_command("train", lambda: train(cfg))
    log.info("run finished: %s", cfg.paths.output_dir)
    metric = cfg.get("optimized_metric")
    return summary["final"].get(metric) if metric else None


if __name__ == "__main__":
    run_command("train", lambda: check_hydra_plugins(sys.argv[1:]))  # before Hydra looks
    main()
