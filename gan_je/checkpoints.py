"""Rebuilding a trained ``GANModule`` (and its data) from a checkpoint, for the evaluate and
generate commands. A gan_je checkpoint carries the run's resolved config (``run_config``),
so the networks, data and estimator features are rebuilt exactly as they were trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import torch
from omegaconf import OmegaConf

from gan_je.build import build
from gan_je.module import GANModule


class CheckpointError(ValueError):
    """The checkpoint is missing or was not written by gan_je's training."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, loaded with ``weights_only=True`` (tensors and plain values)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; pass ckpt_path=<run dir>/checkpoints/…")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt or foreign file: one sentence, not a traceback
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({reason})") from err
    if not isinstance(checkpoint, dict) or "run_config" not in checkpoint:
        raise CheckpointError(
            f"{path} was not written by `python -m gan_je.train` (it has no run_config)"
        )
    return checkpoint


def restore(
    path: str | Path, device: str = "cpu"
) -> tuple[lightning.LightningDataModule, GANModule]:
    """``(datamodule, module)``: the run's data (set up) and its module with the
    trained weights (EMA generator and fitted features included), in eval mode on
    ``device``."""
    checkpoint = load_checkpoint(path)
    cfg = OmegaConf.create(checkpoint["run_config"]["config"])
    lightning.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build(cfg)
    try:
        module.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[0]
        raise CheckpointError(
            f"{path} does not match the networks its config builds ({reason})"
        ) from err
    module.g_step = int(checkpoint.get("g_step", 0))
    return datamodule, module.to(device).eval()
