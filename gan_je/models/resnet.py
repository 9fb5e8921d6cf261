"""Residual generator and discriminator for images (SNGAN: Miyato et al. 2018, "Spectral
Normalization for Generative Adversarial Networks", appendix B; after Gulrajani et al. 2017's
ResNet for WGAN-GP).

The sizes follow DCGAN's rule (:mod:`gan_je.models.dcgan`): images of H = W in
(8, 16, 28, 32, 64) pixels, a base resolution of 7 x 7 for 28 pixels and 4 x 4 otherwise, and
n = log2(H / base) doublings. Every block has the same number of channels, ``width``, as in
the paper's CIFAR-10 networks (generator 256, discriminator 128:
``model=resnet_paper``):

    generator      z -> linear -> base x base -> n up-blocks -> H x H -> BN-ReLU-conv3x3 -> tanh
    discriminator  H x H -> first block -> n - 2 down-blocks -> 2 blocks -> ReLU -> sum -> linear

The discriminator halves the resolution n - 1 times, down to twice the base (8 x 8 for 16, 32
and 64 pixels, 14 x 14 for 28; 8 x 8 images are not halved), then two blocks keep it: at 32
pixels these are the paper's CIFAR-10 blocks (down, down, plain, plain). The paper's STL-10
networks widen the channels as the resolution falls; here the width stays constant at every
size.

Initialisation as SNGAN's reference code: Xavier-uniform weights with gain sqrt(2) inside the
residual branches and gain 1 in the shortcuts and linear layers, zero biases.
"""

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from gan_je.checks import positive_int
from gan_je.models._checks import check_samples
from gan_je.models.dcgan import _image_geometry

NAME = "ResNet"  # in the refusal of an image shape


def _conv(n_in: int, n_out: int, kernel: int, gain: float) -> nn.Conv2d:
    """A same-padded convolution with Xavier-uniform weights of ``gain`` and zero bias."""
    conv = nn.Conv2d(n_in, n_out, kernel, padding=kernel // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    nn.init.zeros_(conv.bias)
    return conv


def _linear(n_in: int, n_out: int) -> nn.Linear:
    linear = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


class GeneratorBlock(nn.Module):
    """Doubles the resolution: x -> BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3 (x) +
    conv1x1(upsample(x)), nearest-neighbour upsampling."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.BatchNorm2d(channels), nn.BatchNorm2d(channels)
        self.conv1 = _conv(channels, channels, 3, gain=2**0.5)
        self.conv2 = _conv(channels, channels, 3, gain=2**0.5)
        self.shortcut = _conv(channels, channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DiscriminatorBlock(nn.Module):
    """x -> [ReLU]-conv3x3-ReLU-conv3x3-[avgpool] (x) + shortcut(x); no normalisation, so
    every logit depends on its own sample alone (R1 and WGAN-GP penalties are per sample).

    The first block (``first``) reads the image itself: no ReLU before its first convolution
    (Miyato et al.'s "optimized" block). The shortcut is a 1x1 convolution after the average
    pooling (the two are linear and commute; pooling first is cheaper) when the block pools
    or changes the channels, else the identity.
    """

    def __init__(self, n_in: int, n_out: int, down: bool, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = _conv(n_in, n_out, 3, gain=2**0.5)
        self.conv2 = _conv(n_out, n_out, 3, gain=2**0.5)
        learnable = down or n_in != n_out
        self.shortcut = _conv(n_in, n_out, 1, gain=1.0) if learnable else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        skip = x
        if self.down:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        return h + self.shortcut(skip)


class ResNetGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, C, H, W) in [-1, 1] (unbounded with ``bounded=False``).

    A linear layer maps z to ``width`` maps of the base resolution; ``n`` up-blocks
    (:class:`GeneratorBlock`) double it to the image size; batch norm, ReLU, a 3x3 convolution
    to C channels and tanh (none when ``bounded=False``) finish. Supported shapes: C in
    (1, 3), H = W in (8, 16, 28, 32, 64); anything else raises a ValueError at construction.
    The defaults are Miyato et al.'s CIFAR-10 generator (latent 128, width 256).
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        latent_dim: int = 128,
        width: int = 256,
        bounded: bool = True,
    ) -> None:
        super().__init__()
        self.sample_shape, self.base, n_up = _image_geometry(sample_shape, network=NAME)
        self.latent_dim = latent_dim = positive_int("latent_dim", latent_dim)
        self.width = width = positive_int("width", width)
        self.bounded = bool(bounded)
        self.input = _linear(latent_dim, width * self.base**2)
        self.blocks = nn.Sequential(*(GeneratorBlock(width) for _ in range(n_up)))
        self.norm = nn.BatchNorm2d(width)
        self.output = _conv(width, self.sample_shape[0], 3, gain=1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"the generator expects z of shape (batch, {self.latent_dim}), got {tuple(z.shape)}"
            )
        h = self.input(z).view(-1, self.width, self.base, self.base)
        x = self.output(F.relu(self.norm(self.blocks(h))))
        return torch.tanh(x) if self.bounded else x


class ResNetDiscriminator(nn.Module):
    """Images (B, C, H, W) -> logits (B,).

    Any number of channels C >= 1 (a PacGAN pack of m images of C channels has m·C);
    H = W one of the generator's sizes. A first block (:class:`DiscriminatorBlock`, halving the
    resolution unless the images are 8 x 8), down-blocks to twice the base resolution, two
    blocks at it, all of ``width`` channels; then ReLU, a sum over positions and a linear
    layer to one logit. No sigmoid: the losses take logits. No batch norm.

    ``spectral_norm`` (on by default, as in SNGAN) wraps every convolution and the linear
    layer in ``torch.nn.utils.parametrizations.spectral_norm``. The defaults are Miyato et
    al.'s CIFAR-10 discriminator (width 128).
    """

    def __init__(
        self, sample_shape: Sequence[int], width: int = 128, spectral_norm: bool = True
    ) -> None:
        super().__init__()
        self.sample_shape, _, n_up = _image_geometry(sample_shape, any_channels=True, network=NAME)
        width = positive_int("width", width)
        self.spectral_norm = bool(spectral_norm)
        n_down = max(n_up - 1, 0)  # down to twice the base resolution
        blocks = [DiscriminatorBlock(self.sample_shape[0], width, down=n_down > 0, first=True)]
        blocks += [DiscriminatorBlock(width, width, down=True) for _ in range(n_down - 1)]
        blocks += [DiscriminatorBlock(width, width, down=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.output = _linear(width, 1)
        if self.spectral_norm:  # after the init, so that it normalises the initialised weights
            for layer in list(self.modules()):
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    _spectral_norm(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x)).squeeze(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer, ReLU then a sum over positions: ``(B, width)``."""
        check_samples(x, self.sample_shape)
        return F.relu(self.blocks(x)).sum(dim=(2, 3))
