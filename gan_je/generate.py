"""``python -m gan_je.generate ckpt_path=<file> [n=64] [format=png|npz]``: samples from a
trained generator (its EMA copy when the run kept one) as a picture or an array file."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from gan_je import CONFIG_PATH, sampling
from gan_je.checkpoints import load_sampler
from gan_je.commands import import_packages, resolve_device, run_command
from gan_je.errors import ConfigError
from gan_je.pictures import save_grid, scatter_real_fake

log = logging.getLogger(__name__)


def interpolation(network: nn.Module, n: int, seed: int) -> Tensor:
    """``n`` samples along the straight line between two seeded latents."""
    ends = torch.randn(2, network.latent_dim, generator=sampling.seeded(seed))
    weights = torch.linspace(0, 1, n)[:, None]
    return sampling.apply(network, (1 - weights) * ends[0] + weights * ends[1]).float().cpu()


def write(
    samples: Tensor,
    path: Path,
    file_format: str,
    title: str,
    strip: bool,
    centers: Tensor | None = None,
) -> None:
    """A PNG (image grid — one row when ``strip`` — or a scatter plot for 2-D data, with the
    mixture's mode ``centers`` when known) or an NPZ with the samples as the data module
    gives them (images in [-1, 1], shape (n, C, H, W))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "npz":
        np.savez_compressed(path, samples=samples.numpy(), value_range=np.array([-1.0, 1.0]))
    elif samples.ndim == 4:
        save_grid(samples, path, nrow=samples.shape[0] if strip else None)
    elif samples.ndim == 2 and samples.shape[1] == 2:
        scatter_real_fake(None, samples, path, title=title, centers=centers)
    else:
        raise ConfigError(
            f"samples of shape {tuple(samples.shape[1:])} have no picture; use format=npz"
        )


def run(cfg: DictConfig) -> Path:
    """Generate as configured; return the file written. Needs no training data."""
    if cfg.format not in ("png", "npz"):
        raise ConfigError(f"format must be png or npz, got {cfg.format}")
    if cfg.n < 1:
        raise ConfigError(f"n must be at least 1, got {cfg.n}")
    import_packages(cfg.get("imports"))
    sampler = load_sampler(cfg.ckpt_path, resolve_device(cfg.device))
    if cfg.interpolate:
        samples = interpolation(sampler.network, cfg.n, cfg.seed)
    else:
        latents = sampling.seeded(cfg.seed)
        samples = sampling.draw(sampler.network, cfg.n, latents).float().cpu()
    kind = "interpolation" if cfg.interpolate else "samples"
    default = Path(cfg.ckpt_path).with_name(f"{Path(cfg.ckpt_path).stem}-{kind}.{cfg.format}")
    path = Path(cfg.out) if cfg.out else default
    title = f"generator step {sampler.g_step}"
    centers = sampler.data_spec.get("centers")
    centers = None if centers is None else torch.tensor(centers)
    write(samples, path, cfg.format, title, strip=bool(cfg.interpolate), centers=centers)
    return path


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="generate")
def main(cfg: DictConfig) -> None:
    log.info("written: %s", run_command("generate", lambda: run(cfg)))


if __name__ == "__main__":
    main()
