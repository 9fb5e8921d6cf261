"""``python -m gan_je.evaluate ckpt_path=<file>``: every metric of a trained generator.

The run is rebuilt from the checkpoint's config (:mod:`gan_je.checkpoints`), so the samples
are compared in the run's own feature space with the run's own estimator settings: the
entropies and JSD with their standard errors, precision/recall, density/coverage, the
Fréchet distance, data copying (generated and held-out samples against training samples of
the same number), mode coverage for the 2-D mixtures, and the mode counts of stacked MNIST
(:mod:`gan_je.modes`; with ``baseline=true`` also those of real training images, the
ceiling). Writes ``eval.json`` next to the checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig
from torch import Tensor

from gan_je import CONFIG_PATH
from gan_je.atomic_files import write_atomically
from gan_je.checkpoints import load_data
from gan_je.commands import build_from_config, import_packages, resolve_device, run_command
from gan_je.errors import ConfigError
from gan_je.modes import StackedModeCounter
from gan_je.module import GANModule
from gan_je.tables import markdown_table

log = logging.getLogger(__name__)

#: Random halvings behind every standard error ``evaluate`` reports (see
#: :mod:`gan_je.estimators.resampling`).
EVALUATE_HALVINGS = 4


def compare(
    module: GANModule, real: Tensor, fake: Tensor, train: Tensor | None = None
) -> dict[str, float]:
    """The module's metrics (and mode coverage where it has it) of ``fake`` against
    ``real``, on every sample given; with ``train`` (training samples, ``real`` then being
    held out) also the data-copying statistic where the metric reports it."""
    metric = module.metric.cpu()
    metric.max_samples = None  # every sample the caller chose
    if getattr(metric, "standard_errors", 0):
        # a one-off: more halvings than training's, steadier errors (one halving reads 0
        # whenever the two halves of a share happen to agree)
        metric.standard_errors = EVALUATE_HALVINGS
    metric.reset_all()
    metric.update(real, real=True)
    metric.update(fake, real=False)
    if train is not None and metric.wants_training_samples():
        metric.update_training(train)
    values = metric.compute()
    metric.reset_all()
    return {key: float(value) for key, value in values.items()}


def mode_counter(
    module: GANModule, datamodule: Any, cache_dir: str | Path
) -> StackedModeCounter | None:
    """For stacked MNIST (a data module with ``digits``), its mode counter with the run's
    settings (``callbacks.stacked_modes``: epochs, threshold), fitted on the training digits
    and cached in ``cache_dir``; ``None`` for other data."""
    digits = getattr(datamodule, "digits", None)
    if not digits:
        return None
    run_callbacks = (module.hparams.get("run_config") or {}).get("callbacks") or {}
    settings = run_callbacks.get("stacked_modes") or {}
    counter = StackedModeCounter(
        epochs=settings.get("epochs", 10),
        threshold=settings.get("threshold", 0.9),
        cache_dir=str(cache_dir),
    )
    return counter.fit(*digits["train"])


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate as configured; return what is written to ``eval.json``."""
    if cfg.split not in ("val", "test", "train"):
        raise ConfigError(
            f"split must be val (= test, the held-out split) or train, got {cfg.split}"
        )
    if cfg.n_samples < 2:
        raise ConfigError(f"n_samples must be at least 2, got {cfg.n_samples}")
    start = time.perf_counter()
    import_packages(cfg.get("imports"))
    module = GANModule.load_from_checkpoint(cfg.ckpt_path, resolve_device(cfg.device)).eval()
    held_out = cfg.split in ("val", "test")  # torchvision's test split is the val set
    features = cfg.get("estimator", {}).get("features")
    copying = held_out and module.metric.wants_training_samples()
    needs_train = not held_out or cfg.baseline or bool(features) or copying
    datamodule = load_data(module, "fit" if needs_train else "validate")
    if features:  # compare in another feature space than the run's own
        module.metric.features = build_from_config(features, "features")
        module.metric.features_fit_samples = None  # fitted on every training sample
        module.fit_features(datamodule, again=True)
    real = datamodule.val_tensor() if held_out else datamodule.train_tensor()
    fake = module.sample(cfg.n_samples, seed=cfg.seed, batch_size=cfg.batch_size).float().cpu()
    counter = mode_counter(module, datamodule, Path(cfg.paths.log_dir) / ".feature_cache")
    result: dict[str, Any] = {
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "g_step": module.g_step,
        "split": cfg.split,
        "n_real": real.shape[0],
        "n_generated": fake.shape[0],
        "ema": module.ema is not None,
        "features": repr(module.metric.features),
        "metrics": compare(
            module, real, fake, datamodule.train_tensor(real.shape[0]) if copying else None
        ),
    }
    if counter is not None:
        result["metrics"] |= counter(fake)
        result["counter_accuracy"] = counter.accuracy(*datamodule.digits["val"])
    if cfg.baseline:
        train = datamodule.train_tensor(real.shape[0] if held_out else None)
        result["baseline_train_vs_split"] = compare(module, real, train)
        if counter is not None:  # as many real images as generated ones: the same KL bias
            result["baseline_train_vs_split"] |= counter(train[: fake.shape[0]])
    result["seconds"] = round(time.perf_counter() - start, 2)
    path = Path(cfg.ckpt_path).with_name("eval.json")
    write_atomically(path, json.dumps(result, indent=2) + "\n")
    if cfg.get("logger"):
        logger = build_from_config(cfg.logger, "logger")
        logger.log_metrics({f"eval/{k}": v for k, v in result["metrics"].items()})
        logger.finalize("success")
    return result


def table(result: dict[str, Any]) -> str:
    """The result as a Markdown table: one row per metric."""
    columns = {"generated": result["metrics"]}
    if "baseline_train_vs_split" in result:
        columns["real train (ceiling)"] = result["baseline_train_vs_split"]
    rows = [
        [key, *(values.get(key, float("nan")) for values in columns.values())]
        for key in result["metrics"]
    ]
    return markdown_table(["metric", *columns], rows)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    result = run_command("evaluate", lambda: evaluate(cfg))
    print(
        f"{result['n_generated']} generated vs {result['n_real']} real ({result['split']}), "
        f"generator step {result['g_step']}, {result['seconds']} s\n\n{table(result)}"
    )
    log.info("written: %s", Path(cfg.ckpt_path).with_name("eval.json"))


if __name__ == "__main__":
    main()
