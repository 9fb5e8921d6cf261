"""``python -m gan_je.generate ckpt_path=<file> [n=64] [format=png|npz]``: samples from a
trained generator (its EMA copy when the run kept one) as a picture or an array file."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor
from torchvision.utils import save_image

from gan_je.callbacks import scatter_real_fake
from gan_je.checkpoints import CheckpointError, restore
from gan_je.evaluate import CONFIG_DIR, generate, resolve_device
from gan_je.module import GANModule

log = logging.getLogger(__name__)


def interpolation(module: GANModule, n: int, seed: int) -> Tensor:
    """``n`` samples along the straight line between two seeded latents."""
    ends = torch.randn(2, module.sampler.latent_dim, generator=torch.Generator().manual_seed(seed))
    weights = torch.linspace(0, 1, n)[:, None]
    return module.generate((1 - weights) * ends[0] + weights * ends[1]).float().cpu()


def write(
    samples: Tensor, real: Tensor, path: Path, file_format: str, title: str, strip: bool
) -> None:
    """A PNG (image grid — one row when ``strip`` — or real-vs-generated scatter for 2-D
    data) or an NPZ with the samples as the data module gives them (images in [-1, 1],
    shape (n, C, H, W))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "npz":
        np.savez_compressed(path, samples=samples.numpy(), value_range=np.array([-1.0, 1.0]))
    elif samples.ndim == 4:
        nrow = samples.shape[0] if strip else max(1, round(math.sqrt(samples.shape[0])))
        save_image(samples, path, nrow=nrow, normalize=True, value_range=(-1, 1), padding=1)
    elif samples.ndim == 2 and samples.shape[1] == 2:
        scatter_real_fake(real, samples, path, title=title)
    else:
        raise CheckpointError(
            f"samples of shape {tuple(samples.shape[1:])} have no picture; use format=npz"
        )


def run(cfg: DictConfig) -> Path:
    """Generate as configured; return the file written."""
    if cfg.format not in ("png", "npz"):
        raise CheckpointError(f"format must be png or npz, got {cfg.format}")
    if cfg.n < 1:
        raise CheckpointError(f"n must be at least 1, got {cfg.n}")
    datamodule, module = restore(cfg.ckpt_path, resolve_device(cfg.device))
    if cfg.interpolate:
        samples = interpolation(module, cfg.n, cfg.seed)
    else:
        samples = generate(module, cfg.n, cfg.seed, batch_size=1024)
    kind = "interpolation" if cfg.interpolate else "samples"
    default = Path(cfg.ckpt_path).with_name(f"{Path(cfg.ckpt_path).stem}-{kind}.{cfg.format}")
    path = Path(cfg.out) if cfg.out else default
    title = f"generator step {module.g_step}"
    real = datamodule.val_tensor()[: max(cfg.n, 2000)]
    write(samples, real, path, cfg.format, title, strip=bool(cfg.interpolate))
    return path


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="generate")
def main(cfg: DictConfig) -> None:
    try:
        path = run(cfg)
    except CheckpointError as err:
        raise SystemExit(f"gan_je.generate: {err}") from None
    log.info("written: %s", path)


if __name__ == "__main__":
    main()
