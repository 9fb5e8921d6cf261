"""``python -m gan_je.train``: train a GAN from the Hydra config ``conf/train.yaml``.

Examples::

    python -m gan_je.train                                  # DCGAN, SN in D, hinge: 5,000 digits
    python -m gan_je.train experiment=ring                  # MLP GAN on the 8-Gaussian ring
    python -m gan_je.train model=dcgan estimator=gaussian loss=nonsaturating trainer.max_epochs=5
    python -m gan_je.train debug=fdr                        # one batch of everything

Everything is built with ``hydra.utils.instantiate``. :func:`train` is the whole program:
Hydra composes the config, :func:`train` builds the data, module, callbacks, loggers and
trainer, fits, and returns the run's record (``<run dir>/summary.json``). What a run needs
around that lives beside it: checkpoints (:mod:`gan_je.checkpoints`), the run directory's
lock (:mod:`gan_je.run_directory`), the Hydra launcher (:mod:`gan_je.launcher`), the stop at
a signal (:mod:`gan_je.stopping`), ending the W&B run (:mod:`gan_je.loggers`).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gan_je import CONFIG_PATH, slurm
from gan_je.commands import build_from_config, chosen, import_packages, run_command
from gan_je.errors import (
    ConfigError,
    GanJeError,
    PartError,
)
from gan_je.extras import check_hydra_plugins
from gan_je.launcher import share_cpus_with_joblib_jobs
from gan_je.quiet import silence_third_party_noise
from gan_je.redaction import public_config, public_overrides
from gan_je.run_directory import (
    HeldLogFile,
    claim_for_fresh_run,
    hold_run_directory,
    is_primary,
    release_run_directory,
    run_entries,
    write_hydra_record,
)
from gan_je.run_settings import continued_settings, given_settings
from gan_je.sweep_outcome import exit_status, run_job

if TYPE_CHECKING:
    import lightning

    from gan_je.module import GANModule

log = logging.getLogger(__name__)
silence_third_party_noise()  # here, so that spawned DDP processes run it too
#: The top-level settings gan_je reads (conf/train.yaml); anything else is warned about.
SETTINGS = (
    "data", "model", "loss", "estimator", "trainer", "logger", "callbacks", "paths", "seed",
    "ckpt_path", "resume", "overwrite", "optimized_metric", "imports", "tags",
)  # fmt: skip


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
    _check_no_lightning_clipping(cfg)
    return datamodule, module


def _check_no_lightning_clipping(cfg: DictConfig) -> None:
    """Lightning clips gradients only under automatic optimisation; gan_je steps its two
    networks by hand (:mod:`gan_je.module`) and clips them itself (``model.grad_clip``)."""
    for key in ("gradient_clip_val", "gradient_clip_algorithm"):
        value = cfg.trainer.get(key)
        if value is not None:
            raise ConfigError(
                f"trainer.{key}={value} cannot work: gan_je optimises its two networks by hand, "
                f"which Lightning's clipping does not support; use model.grad_clip=<max norm> "
                f"(each network's gradient norm) instead"
            )


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


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train as configured; return the summary written to ``summary.json``.

    The run directory is this run's alone: it is locked for the run's life, and a run that
    starts afresh refuses one that holds another run's records (``overwrite=true`` replaces
    them), touching nothing there (:mod:`gan_je.run_directory`)."""
    # torch and Lightning only here, where a run starts, so that --help answers at once
    import lightning
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from gan_je.callbacks import (
        CheckpointOnSignal,
        CheckpointPathsGuard,
        RunRecord,
        without_progress_bars,
    )
    from gan_je.checkpoints import check_resumable, checkpoint_to_resume
    from gan_je.loggers import finish_wandb
    from gan_je.seeding import check_seed
    from gan_je.stopping import stopped_by_signal

    # imported after Hydra set up logging, Lightning's lines reach Hydra's handlers (console,
    # train.log): not also the console handler Lightning adds for itself, which doubles them
    logging.getLogger("lightning").handlers.clear()
    output_dir = cfg.paths.output_dir
    try:  # read only: what the run continues, if anything
        ckpt_path, early_error = checkpoint_to_resume(cfg), None
    except GanJeError as err:
        ckpt_path, early_error = None, err
    continues = slurm.restart_count() > 0 or _own_checkpoint(ckpt_path, output_dir)
    # a continued run trains with its recorded settings; a refused override writes nothing
    settings = continued_settings(cfg, output_dir) if continues else given_settings(cfg)
    cfg = settings.config
    record = RunRecord(
        output_dir, overrides=public_overrides(settings.overrides), tags=cfg.get("tags")
    )
    overwrite = bool(cfg.get("overwrite"))
    if not continues and not overwrite and run_entries(output_dir):
        if early_error:  # a resume that cannot start: say why, touching nothing
            raise early_error
        claim_for_fresh_run(output_dir, overwrite=False)  # refuses
    lock = hold_run_directory(output_dir)  # before anything is written there
    held_log = HeldLogFile(output_dir) if continues else None  # train.log as it was if refused
    signals = CheckpointOnSignal(output_dir)
    signals.install()  # SLURM's time-limit warning, from now to the end of the run
    try:  # anything failing before training is recorded too (fit records its own)
        if early_error:
            raise early_error
        if not continues:  # again, now that no other run can start here
            claim_for_fresh_run(output_dir, overwrite=overwrite)
        unread = [key for key in cfg if key not in SETTINGS]
        if unread:  # e.g. +lr=... where model.optimizer_g.lr was meant
            log.warning("gan_je reads no top-level setting %s: nothing uses it", ", ".join(unread))
        import_packages(cfg.get("imports"))
        share_cpus_with_joblib_jobs(cfg)
        lightning.seed_everything(check_seed(cfg.seed), workers=True)
        resolved = public_config(OmegaConf.to_container(cfg, resolve=True))
        datamodule, module = build(cfg, run_config=resolved)
        if ckpt_path:
            check_resumable(ckpt_path, module, cfg)
        callbacks = [signals, record, CheckpointPathsGuard()]
        callbacks += [
            build_from_config(c, "callbacks") for c in (cfg.get("callbacks") or {}).values() if c
        ]
        callbacks = without_progress_bars(callbacks, cfg.trainer.get("enable_progress_bar"))
        loggers = [build_from_config(c, "logger") for c in (cfg.get("logger") or {}).values() if c]
        trainer = build_from_config(
            cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False
        )
        write_hydra_record(output_dir, cfg, settings.overrides, settings.choices)
        if held_log:
            held_log.hand_back(write=True)
        for logger in trainer.loggers:
            logger.log_hyperparams(resolved)
    except Exception as err:
        signals.restore()
        if is_primary():
            record.fail(err)
        if held_log:
            held_log.hand_back(write=False)
        release_run_directory(lock)
        raise
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:  # a SystemExit with status 0: say what happened, exit 1
        raise stopped_by_signal(module.g_step, cfg.paths.output_dir, signals) from None
    finally:
        finish_wandb(trainer)
        signals.restore()
        release_run_directory(lock)
    # written by global rank 0, also when the ranks ran in spawned processes
    return json.loads((Path(output_dir) / "summary.json").read_text())


def _own_checkpoint(ckpt_path: str | None, output_dir: str) -> bool:
    """Whether ``ckpt_path`` lies in the run directory (continuing that run there), rather
    than elsewhere (another run's: a new run that starts from it)."""
    if ckpt_path is None:
        return False
    return Path(output_dir).resolve() in Path(ckpt_path).resolve().parents


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point: returns the final value of ``optimized_metric`` for sweepers.

    In a multirun a failing job (bad settings, divergence) is logged in one sentence,
    recorded as failed in its ``summary.json`` and returns NaN, so the other jobs go on;
    every job records how it ended for the sweep's summary and exit status
    (:mod:`gan_je.sweep_outcome`). A single run that fails for a reason the user can fix
    ends with one sentence.
    """
    # W&B records the command line in its metadata: no secret values there (Hydra has read it)
    sys.argv[1:] = public_overrides(sys.argv[1:])
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        summary = run_job(lambda: train(cfg), cfg.paths.output_dir)
        if summary is None:  # failed or not run: recorded, the sweep goes on
            return math.nan
    else:
        summary = run_command("train", lambda: train(cfg))
    log.info("run finished: %s", cfg.paths.output_dir)
    metric = cfg.get("optimized_metric")
    return summary["final"].get(metric) if metric else None


def cli() -> None:
    """The command: ``python -m gan_je.train`` and the console script ``gan-je-train``."""
    run_command("train", lambda: check_hydra_plugins(sys.argv[1:]))  # before Hydra looks
    main()
    sys.exit(exit_status())  # 1 when a job of a sweep failed or did not run


if __name__ == "__main__":
    cli()
