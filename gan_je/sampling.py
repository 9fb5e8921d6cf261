"""Building a generator network and drawing samples from it: one home for the GANModule
(validation, pictures, ``sample``) and for the ``generate`` command, which loads only the
network."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from gan_je import parts
from gan_je.checks import check_fits_in_memory, positive_float, positive_int
from gan_je.data.kinds import kind_of
from gan_je.errors import ConfigError
from gan_je.models import contract
from gan_je.progress import progress

#: Samples are made at most this many bytes at a time where many are drawn (validation,
#: ``evaluate``, ``generate``): at V = 5,000 one token sequence of 20 takes 400 KB.
CHUNK_BYTES = 64 * 2**20


def build_generator(description: dict, data_spec: dict) -> nn.Module:
    """The generator network a description builds for samples described by ``data_spec``:
    completed with ``sample_shape`` and ``bounded`` (whether the data's kind of sample lies
    in [-1, 1], :mod:`gan_je.data.kinds`). The one rule for training
    (``GANModule.build_networks``) and for ``generate``
    (:func:`gan_je.checkpoints.load_sampler`)."""
    kind = kind_of(data_spec)
    network = parts.build(
        description, "model.generator", sample_shape=kind.sample_shape, bounded=kind.bounded
    )
    contract.check_latent_dim(network)
    return network


@torch.no_grad()
def apply(network: nn.Module, z: Tensor) -> Tensor:
    """``network(z)`` in eval mode (batch norm uses its running statistics) without
    gradients, on the network's device, leaving the network's mode as it was."""
    device = next(network.parameters()).device
    was_training = network.training
    network.eval()
    try:
        return network(z.to(device))
    finally:
        network.train(was_training)


def batches(
    network: nn.Module,
    n: int,
    latents: torch.Generator | None = None,
    batch_size: int = 1024,
    desc: str | None = None,
    chunk: int | None = None,
) -> Iterator[Tensor]:
    """``n`` samples of ``network`` in batches ``(b, *sample_shape)``, one at a time, from
    latents z ~ N(0, I) of ``network.latent_dim`` dimensions drawn on the CPU ``batch_size``
    at a time from the generator ``latents`` (``None``: torch's global random state), so that
    the same seed gives the same latents on every device. ``chunk``: the network is applied
    to (and a batch yielded for) at most this many latents at a time (``None``:
    ``batch_size``); the latents do not depend on it. With ``desc``, a progress bar of that
    name counts the latent batches on a terminal (:func:`gan_je.progress.progress`)."""
    n, batch_size = positive_int("n", n), positive_int("batch_size", batch_size)
    chunk = batch_size if chunk is None else positive_int("chunk", chunk)
    dim = positive_int("the generator's latent_dim", getattr(network, "latent_dim", None))
    starts = range(0, n, batch_size)
    for start in progress(starts, desc) if desc else starts:
        z = torch.randn(min(batch_size, n - start), dim, generator=latents)
        for part in z.split(chunk):
            yield apply(network, part)


def draw(
    network: nn.Module,
    n: int,
    latents: torch.Generator | None = None,
    batch_size: int = 1024,
    desc: str | None = None,
) -> Tensor:
    """``n`` samples ``(n, *sample_shape)`` of ``network``: the batches of :func:`batches`
    joined."""
    return torch.cat(list(batches(network, n, latents, batch_size, desc)))


def chunk_rows(sample_shape: tuple[int, ...]) -> int:
    """How many float32 samples of ``sample_shape`` fit in :data:`CHUNK_BYTES` (at least 1):
    how many are made, and handed on, at a time where many are drawn."""
    return max(1, CHUNK_BYTES // (4 * math.prod(sample_shape)))


def token_ids(
    network: nn.Module,
    n: int,
    sample_shape: tuple[int, ...],
    latents: torch.Generator | None = None,
    desc: str | None = None,
) -> Tensor:
    """The token ids ``(n, length)`` (int64, on the CPU) of the ``n`` samples :func:`draw`
    gives of a generator of token sequences ``sample_shape`` ``(length, vocab)``: each
    position's ``argmax``, the one-hot samples made :func:`chunk_rows` at a time and
    dropped."""
    chunks = batches(network, n, latents, desc=desc, chunk=chunk_rows(sample_shape))
    return torch.cat([batch.argmax(dim=-1).cpu() for batch in chunks])


def check_draw_fits(setting: str, n: int, sample_shape: tuple[int, ...]) -> None:
    """Refuse, before sampling, ``n`` samples of ``sample_shape`` that :func:`draw` could not
    hold in memory: float32 values, held twice while the batches are joined (one
    :class:`~gan_je.errors.ConfigError` naming ``setting`` and the largest ``n`` that fits,
    :func:`gan_je.checks.check_fits_in_memory`)."""
    check_fits_in_memory(setting, n, 2 * 4 * math.prod(sample_shape))


def set_temperature(network: nn.Module, temperature: float | None) -> None:
    """Sample ``network`` at the sampling ``temperature`` (``None``: the one it was trained
    with), setting its ``temperature`` attribute; a generator without one is refused."""
    if temperature is None:
        return
    if not hasattr(network, "temperature"):
        raise ConfigError(
            f"temperature={temperature}: {type(network).__name__} has no sampling temperature "
            f"(autoregressive generators such as model=lstm_gan and lstm_mle have one), so "
            f"leave temperature=null"
        )
    try:
        network.temperature = positive_float("temperature", temperature)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def seeded(seed: int | None) -> torch.Generator | None:
    """A CPU generator seeded with ``seed`` (``None``: none, torch's global random state)."""
    return None if seed is None else torch.Generator().manual_seed(seed)
