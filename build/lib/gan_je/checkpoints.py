"""Opening a trained run's checkpoint for the evaluate and generate commands.

A checkpoint is data: it is read with ``torch.load(weights_only=True)`` (tensors and plain
values only), and the module is rebuilt from the part descriptions it holds through
:mod:`gan_je.parts`, which builds registered gan_je parts and nothing else. No training
data is needed: the checkpoint holds the data's shape and the fitted features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import torch

from gan_je import parts
from gan_je.errors import CheckpointError, ConfigError
from gan_je.module import GANModule


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict of a ``gan_je.train`` run, loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; pass ckpt_path=<run dir>/checkpoints/…")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt or foreign file: one sentence, not a traceback
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({reason})") from err
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or not hparams.get("data_spec"):
        raise CheckpointError(
            f"{path} was not written by `python -m gan_je.train` (it holds no GANModule)"
        )
    return checkpoint


def load_module(path: str | Path, device: str = "cpu") -> GANModule:
    """The trained :class:`GANModule` of checkpoint ``path`` (EMA generator and fitted
    features included), in eval mode on ``device``."""
    checkpoint = read_checkpoint(path)
    try:
        module = GANModule(**checkpoint["hyper_parameters"])
        module.on_load_checkpoint(checkpoint)
        module.load_state_dict(checkpoint["state_dict"])
    except (ConfigError, TypeError, ValueError, RuntimeError) as err:
        reason = " ".join(str(err).split())  # torch's state-dict errors span several lines
        reason = reason if len(reason) <= 300 else reason[:297] + "..."
        raise CheckpointError(f"{path} cannot be restored ({reason})") from err
    return module.to(device).eval()


def load_data(module: GANModule, stage: str = "validate") -> lightning.LightningDataModule:
    """The datamodule the module was trained on, rebuilt from the data part of its run
    config (a registered gan_je data module only) and set up for ``stage``."""
    config = (module.hparams.get("run_config") or {}).get("data")
    if config is None:
        raise CheckpointError("the checkpoint does not say which data it was trained on")
    datamodule = parts.build(config, "data")
    datamodule.prepare_data()
    datamodule.setup(stage)
    return datamodule
