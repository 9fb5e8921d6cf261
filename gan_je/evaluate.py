"""``python -m gan_je.evaluate ckpt_path=<file>``: every metric of a trained generator.

The run is rebuilt from the checkpoint's config (:mod:`gan_je.checkpoints`), so the samples
are compared in the run's own feature space with the run's own estimator settings: the
entropies and JSD, precision/recall, density/coverage, the Fréchet distance, and mode
coverage for the 2-D mixtures. Writes ``eval.json`` next to the checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor

from gan_je.build import fit_metric_features
from gan_je.checkpoints import CheckpointError, restore
from gan_je.module import GANModule

log = logging.getLogger(__name__)
CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        raise CheckpointError(f"device={device} is not available here; use cpu or auto")
    return device


def generate(module: GANModule, n: int, seed: int, batch_size: int) -> Tensor:
    """``n`` samples from the module's sampler with seeded latents, on the CPU."""
    latents = torch.Generator().manual_seed(seed)
    parts, remaining = [], n
    while remaining > 0:
        parts.append(module.sample(min(batch_size, remaining), latents).float().cpu())
        remaining -= parts[-1].shape[0]
    return torch.cat(parts)


def compare(module: GANModule, real: Tensor, fake: Tensor) -> dict[str, float]:
    """The module's metrics (and mode coverage where it has it) of ``fake`` against ``real``."""
    metric = module.metric.cpu()
    metric.reset()
    metric.max_samples = None  # every sample the caller chose
    metric.update(real, real[:0])
    metric.update(fake[:0], fake)
    values = metric.compute()
    metric.reset()
    if module.coverage is not None:
        coverage = module.coverage.cpu()
        coverage.reset()
        coverage.update(fake)
        values |= coverage.compute()
        coverage.reset()
    return {key: float(value) for key, value in values.items()}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate as configured; return what is written to ``eval.json``."""
    if cfg.split not in ("val", "test", "train"):
        raise CheckpointError(
            f"split must be val (= test, the held-out split) or train, got {cfg.split}"
        )
    if cfg.n_samples < 2:
        raise CheckpointError(f"n_samples must be at least 2, got {cfg.n_samples}")
    start = time.perf_counter()
    datamodule, module = restore(cfg.ckpt_path, resolve_device(cfg.device))
    features = cfg.get("estimator", {}).get("features")
    if features:  # compare in another feature space than the run's own
        module.metric.features = instantiate(features)
        fit_metric_features(module, datamodule, max_samples=None)
        module.metric.features.to(module.device)
    held_out = cfg.split in ("val", "test")  # torchvision's test split is the val set
    real = datamodule.val_tensor() if held_out else datamodule.train_tensor()
    fake = generate(module, cfg.n_samples, cfg.seed, cfg.batch_size)
    result: dict[str, Any] = {
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "g_step": module.g_step,
        "split": cfg.split,
        "n_real": real.shape[0],
        "n_generated": fake.shape[0],
        "ema": module.ema is not None,
        "features": repr(module.metric.features),
        "metrics": compare(module, real, fake),
    }
    if cfg.baseline:
        train = datamodule.train_tensor(real.shape[0] if held_out else None)
        result["baseline_train_vs_split"] = compare(module, real, train)
    result["seconds"] = round(time.perf_counter() - start, 2)
    path = Path(cfg.ckpt_path).with_name("eval.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    if cfg.get("logger"):
        logger = instantiate(cfg.logger)
        logger.log_metrics({f"eval/{k}": v for k, v in result["metrics"].items()})
        logger.finalize("success")
    return result


def table(result: dict[str, Any]) -> str:
    """The result as a Markdown table: one row per metric."""
    columns = {"generated": result["metrics"]}
    if "baseline_train_vs_split" in result:
        columns["real train (ceiling)"] = result["baseline_train_vs_split"]
    header = f"| metric | {' | '.join(columns)} |"
    lines = [header, "|---|" + "---|" * len(columns)]
    for key in result["metrics"]:
        cells = " | ".join(f"{values.get(key, float('nan')):.4g}" for values in columns.values())
        lines.append(f"| {key} | {cells} |")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        result = evaluate(cfg)
    except CheckpointError as err:
        raise SystemExit(f"gan_je.evaluate: {err}") from None
    print(
        f"{result['n_generated']} generated vs {result['n_real']} real ({result['split']}), "
        f"generator step {result['g_step']}, {result['seconds']} s\n\n{table(result)}"
    )
    log.info("written: %s", Path(cfg.ckpt_path).with_name("eval.json"))


if __name__ == "__main__":
    main()
