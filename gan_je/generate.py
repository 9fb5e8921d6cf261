"""``python -m gan_je.generate ckpt_path=<file> [n=64] [format=png|npz|txt|wav]``: samples from
a trained generator (its EMA copy when the run kept one) as a picture, an array file, for
token sequences text, and for waveforms WAV files, in the formats the data's kind of sample
offers (:mod:`gan_je.data.kinds`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig

from gan_je import CONFIG_PATH
from gan_je.checks import check_writable, is_int
from gan_je.commands import import_packages, resolve_device, run_command
from gan_je.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor, nn

log = logging.getLogger(__name__)


def interpolation(network: nn.Module, n: int, seed: int) -> Tensor:
    """``n`` samples along the straight line between two seeded latents."""
    import torch

    from gan_je import sampling

    ends = torch.randn(2, network.latent_dim, generator=sampling.seeded(seed))
    weights = torch.linspace(0, 1, n)[:, None]
    return sampling.apply(network, (1 - weights) * ends[0] + weights * ends[1]).float().cpu()


def run(cfg: DictConfig) -> Path:
    """Generate as configured; return the file written. Needs no training data. The
    formats offered are the data's kind's (:mod:`gan_je.data.kinds`): ``png``, its picture
    (an image grid, one row for an interpolation; a scatter plot of 2-D points with the
    mixture's modes, log-mel spectrograms of waveforms), ``npz``, the samples as the data
    module gives them, for token sequences ``txt``, the decoded samples one a line, and for
    waveforms ``wav``, every clip in one file with silence between them and one file per clip
    in the folder of the same name beside it (:meth:`~gan_je.data.kinds.Waveform.write_wav`).
    Before any
    sampling: the file must be writable and the samples must fit in memory."""
    # torch only here, where samples are drawn, so that --help answers at once
    from gan_je import sampling
    from gan_je.checkpoints import checkpoint_file, load_sampler
    from gan_je.data.kinds import kind_of

    if not is_int(cfg.n) or cfg.n < 1:
        raise ConfigError(f"n must be a whole number of at least 1, got {cfg.n!r}")
    checkpoint_file(cfg.ckpt_path)
    path = output_path(cfg)
    check_writable(path, "choose another out=<file or folder>")
    import_packages(cfg.get("imports"))
    sampler = load_sampler(cfg.ckpt_path, resolve_device(cfg.device))
    sampling.set_temperature(sampler.network, cfg.get("temperature"))
    kind = kind_of(sampler.data_spec)
    kind.check_format(cfg.format)
    if cfg.format == "wav":  # the folder of one file per clip beside it, before any sampling
        kind.check_clip_folder(path)
    if cfg.format == "txt" and not cfg.interpolate:  # text: only the ids are kept
        sampling.check_draw_fits("n", cfg.n, kind.sample_shape[:1])
        latents = sampling.seeded(cfg.seed)
        ids = sampling.token_ids(sampler.network, cfg.n, kind.sample_shape, latents, "generating")
        kind.write_text(ids, path)
        return path
    sampling.check_draw_fits("n", cfg.n, kind.sample_shape)
    if cfg.interpolate:
        samples = interpolation(sampler.network, cfg.n, cfg.seed)
    else:
        latents = sampling.seeded(cfg.seed)
        samples = sampling.draw(sampler.network, cfg.n, latents, desc="generating").float().cpu()
    title = f"generator step {sampler.g_step}"
    kind.write(samples, path, cfg.format, title, strip=bool(cfg.interpolate))
    return path


def output_path(cfg: DictConfig) -> Path:
    """The file ``generate`` writes: ``out`` when it names a file ending in ``.<format>``;
    inside ``out`` when it is an existing folder (as ``cp`` does), and without ``out`` next
    to the checkpoint, as ``<checkpoint stem>-samples.<format>`` (``-interpolation`` for an
    interpolation). Another ending is refused: the picture and array writers would add
    their own or write another format than the one asked for. (``format=wav`` also fills the
    folder named as the file without its ending.)"""
    what = "interpolation" if cfg.interpolate else "samples"
    name = f"{Path(cfg.ckpt_path).stem}-{what}.{cfg.format}"
    if not cfg.out:
        return Path(cfg.ckpt_path).with_name(name)
    out = Path(cfg.out)
    if out.is_dir():
        return out / name
    if out.suffix != f".{cfg.format}":
        raise ConfigError(
            f"out={out} does not end in .{cfg.format} (format={cfg.format}); name a "
            f".{cfg.format} file or an existing folder"
        )
    return out


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="generate")
def main(cfg: DictConfig) -> None:
    log.info("written: %s", run_command("generate", lambda: run(cfg)))


if __name__ == "__main__":
    main()
