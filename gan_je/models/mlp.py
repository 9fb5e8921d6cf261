"""Fully connected generator and discriminator for samples of any shape (flattened inside).

Meant for toy data (2-D rings and grids of Gaussians, small vectors) and as a baseline on
small images. The generator maps z of shape (B, latent_dim) to samples of shape
(B, *sample_shape); the discriminator maps samples to one logit each, shape (B,).
"""

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from gan_je.checks import positive_int
from gan_je.models._checks import check_samples, shape_tuple


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> samples (B, *sample_shape).

    ``n_layers`` hidden layers of ``hidden`` units with ReLU, then a linear output layer
    (``n_layers + 1`` linear layers in all). The output is ``tanh``-squashed into [-1, 1] when
    ``bounded`` (images scaled to [-1, 1]) and left linear otherwise (unbounded data).
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        latent_dim: int = 64,
        hidden: int = 256,
        n_layers: int = 3,
        bounded: bool = False,
    ) -> None:
        super().__init__()
        self.sample_shape = shape_tuple(sample_shape)
        self.latent_dim = latent_dim = positive_int("latent_dim", latent_dim)
        hidden = positive_int("hidden", hidden)
        n_layers = positive_int("n_layers", n_layers)
        self.bounded = bool(bounded)

        layers: list[nn.Module] = []
        width_in = latent_dim
        for _ in range(n_layers):
            layers += [nn.Linear(width_in, hidden), nn.ReLU()]
            width_in = hidden
        layers.append(nn.Linear(width_in, math.prod(self.sample_shape)))
        if self.bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"the generator expects z of shape (batch, {self.latent_dim}), got {tuple(z.shape)}"
            )
        return self.net(z).view(z.shape[0], *self.sample_shape)


class MLPDiscriminator(nn.Module):
    """Samples (B, *sample_shape) -> logits (B,).

    ``n_layers`` hidden layers of ``hidden`` units with LeakyReLU(0.2), then a linear layer to
    one logit. With ``spectral_norm`` every linear layer is spectrally normalised
    (Miyato et al. 2018), which bounds the Lipschitz constant of the discriminator.
    No batch norm, so the network is valid for WGAN-GP's per-sample gradient penalty.
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        hidden: int = 256,
        n_layers: int = 3,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.sample_shape = shape_tuple(sample_shape)
        hidden = positive_int("hidden", hidden)
        n_layers = positive_int("n_layers", n_layers)
        self.spectral_norm = bool(spectral_norm)

        def linear(n_in: int, n_out: int) -> nn.Module:
            layer = nn.Linear(n_in, n_out)
            return _spectral_norm(layer) if self.spectral_norm else layer

        layers: list[nn.Module] = []
        width_in = math.prod(self.sample_shape)
        for _ in range(n_layers):
            layers += [linear(width_in, hidden), nn.LeakyReLU(0.2)]
            width_in = hidden
        layers.append(linear(width_in, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_samples(x, self.sample_shape)
        return self.net(x.flatten(start_dim=1)).squeeze(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations ``(B, hidden)``."""
        check_samples(x, self.sample_shape)
        return self.net[:-1](x.flatten(start_dim=1))
