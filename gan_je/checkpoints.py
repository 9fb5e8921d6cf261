"""Opening a trained run's checkpoint for the evaluate and generate commands.

A checkpoint is data: it is read with ``torch.load(weights_only=True)`` (tensors and plain
values only), and the module is rebuilt from the part descriptions it holds through
:mod:`gan_je.parts`, which builds registered gan_je parts and nothing else. No training
data is needed: the checkpoint holds the data's shape and the fitted features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gan_je import parts
from gan_je.errors import CheckpointError, ConfigError
from gan_je.sampling import build_generator

if TYPE_CHECKING:  # Lightning is imported only where the whole module is restored
    import lightning

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
            f"{path} was not written by `python -m gan_je.train` of this gan_je version (it "
            f"holds no GANModule description; checkpoints from before the model config built "
            f"the module cannot be restored)"
        )
    return checkpoint


#: Hyperparameters that moved from the model to its metric (the ``estimator`` group), with
#: their names there: checkpoints written before the move keep them in the model's.
MOVED_TO_METRIC = {
    "n_fake": "n_fake",
    "features_fit_samples": "features_fit_samples",
    "coverage": "mode_coverage",
}


def current_hyperparameters(hparams: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's module hyperparameters in this version's terms: the settings of
    :data:`MOVED_TO_METRIC` moved into the metric's description (a copy; ``hparams`` is
    left as it was)."""
    hparams = dict(hparams)
    moved = {new: hparams.pop(old) for old, new in MOVED_TO_METRIC.items() if old in hparams}
    if moved and isinstance(hparams.get("metric"), dict):
        hparams["metric"] = moved | hparams["metric"]
    return hparams


@dataclass
class Sampler:
    """What sampling needs of a trained run: the network (the EMA generator when the run kept
    one), its generator step and the data spec (``sample_shape``, mixture ``centers``)."""

    network: nn.Module
    g_step: int
    data_spec: dict[str, Any]


def load_sampler(path: str | Path, device: str = "cpu") -> Sampler:
    """The sampling network of checkpoint ``path`` alone, without Lightning, the metric or the
    discriminator: the generator built from its description and the data spec, with the EMA
    weights when the run kept them (``ema.module.*``), else the generator's."""
    checkpoint = read_checkpoint(path)
    hparams, state = checkpoint["hyper_parameters"], checkpoint["state_dict"]
    spec = hparams["data_spec"]
    try:
        network = build_generator(hparams["generator"], spec)
        prefix = "ema.module." if hparams.get("ema_decay") is not None else "generator."
        weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        network.load_state_dict(weights)
    except (ConfigError, KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path} cannot be restored ({_reason(err)})") from err
    return Sampler(network.to(device).eval(), int(checkpoint.get("g_step", 0)), spec)


def load_module(path: str | Path, device: Any = "cpu", **overrides: Any) -> GANModule:
    """The trained :class:`GANModule` of checkpoint ``path`` (EMA generator and fitted
    features included) on ``device``; ``overrides`` replace hyperparameters. This is what
    ``GANModule.load_from_checkpoint`` does: a local file read with ``weights_only=True``,
    every part built through :mod:`gan_je.parts`."""
    from gan_je.module import GANModule

    checkpoint = read_checkpoint(path)
    try:
        module = GANModule(**(current_hyperparameters(checkpoint["hyper_parameters"]) | overrides))
        module.on_load_checkpoint(checkpoint)
        # the mode-coverage centres were saved before they moved into the metric's data spec
        state = {k: v for k, v in checkpoint["state_dict"].items() if k != "coverage.centers"}
        module.load_state_dict(state)
    except (ConfigError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} cannot be restored ({_reason(err)})") from err
    return module.to(device)


def _reason(err: BaseException) -> str:
    """An error's message on one line (torch's state-dict errors span several)."""
    reason = " ".join(str(err).split()) or type(err).__name__
    return reason if len(reason) <= 300 else reason[:297] + "..."


def load_data(module: GANModule, stage: str = "validate") -> lightning.LightningDataModule:
    """The datamodule the module was trained on, rebuilt from the data part of its run
    config (a registered gan_je data module only, never downloading) and set up for
    ``stage``."""
    config = (module.hparams.get("run_config") or {}).get("data")
    if not isinstance(config, dict):
        raise CheckpointError("the checkpoint does not say which data it was trained on")
    if "download" in config:  # a checkpoint does not get to fetch files from the network
        config = config | {"download": False}
    datamodule = parts.build(config, "data")
    datamodule.prepare_data()
    datamodule.setup(stage)
    return datamodule
