"""Drawing samples from a generator network: one home for the GANModule (validation,
pictures, ``sample``) and for the ``generate`` command, which loads only the network."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_je.checks import positive_int


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


def draw(
    network: nn.Module,
    n: int,
    latents: torch.Generator | None = None,
    batch_size: int = 1024,
) -> Tensor:
    """``n`` samples ``(n, *sample_shape)`` of ``network`` from latents z ~ N(0, I) of
    ``network.latent_dim`` dimensions, drawn on the CPU ``batch_size`` at a time from the
    generator ``latents`` (``None``: torch's global random state), so that the same seed gives
    the same latents on every device."""
    n, batch_size = positive_int("n", n), positive_int("batch_size", batch_size)
    dim = positive_int("the generator's latent_dim", getattr(network, "latent_dim", None))
    parts = [
        apply(network, torch.randn(min(batch_size, n - start), dim, generator=latents))
        for start in range(0, n, batch_size)
    ]
    return torch.cat(parts)


def seeded(seed: int | None) -> torch.Generator | None:
    """A CPU generator seeded with ``seed`` (``None``: none, torch's global random state)."""
    return None if seed is None else torch.Generator().manual_seed(seed)
