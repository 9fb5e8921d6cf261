"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016).

One rule fits every supported image size. The feature maps start at a base resolution of
7 x 7 for 28-pixel images and 4 x 4 otherwise, and double (generator) or halve
(discriminator) with each stride-2 layer until they reach the image size:

    size  8: 4 → 8            size 28: 7 → 14 → 28        size 64: 4 → 8 → 16 → 32 → 64
    size 16: 4 → 8 → 16       size 32: 4 → 8 → 16 → 32

Channel widths are ``width x 2^k`` and shrink as the resolution grows, as in the paper. At
64 x 64 with ``width = 128`` the generator has the channels of the paper's figure 1
(1024 → 512 → 256 → 128 → 3); the default ``width = 64`` halves every layer. The
discriminator mirrors the generator; it takes any number of channels (a PacGAN pack of m
images of C channels has m·C), while the generator produces 1 or 3.
"""

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from gan_je.checks import positive_int
from gan_je.models._checks import check_samples, shape_tuple

SUPPORTED_SIZES = (8, 16, 28, 32, 64)
SUPPORTED_CHANNELS = (1, 3)
NORMS = ("batch", "layer", "none")


def _image_geometry(
    sample_shape: Sequence[int], any_channels: bool = False, network: str = "DCGAN"
) -> tuple[tuple[int, int, int], int, int]:
    """Validate an image shape; return (shape, base resolution, number of stride-2 layers).

    C must be in ``SUPPORTED_CHANNELS`` (what a generator produces), or any C >= 1 with
    ``any_channels`` (a discriminator, which may judge PacGAN packs of m images: m·C channels).
    ``network`` names the refused network in the message (the residual networks share the
    rule).
    """
    try:
        shape = shape_tuple(sample_shape)
    except ValueError:
        shape = None
    channels_ok = shape is not None and (any_channels or shape[0] in SUPPORTED_CHANNELS)
    if (
        shape is None
        or len(shape) != 3
        or not channels_ok
        or shape[1] != shape[2]
        or shape[1] not in SUPPORTED_SIZES
    ):
        got = sample_shape if shape is None else shape
        channel_rule = "C >= 1" if any_channels else f"C in {SUPPORTED_CHANNELS}"
        raise ValueError(
            f"{network} needs square images of shape (C, H, W) with {channel_rule} and H = W in "
            f"{SUPPORTED_SIZES}, got samples of shape {got}; use model=mlp for flat data or "
            "other sizes"
        )
    size = shape[1]
    base = 7 if size == 28 else 4
    n_strided = (size // base).bit_length() - 1  # size = base · 2^n_strided
    return (shape[0], shape[1], shape[2]), base, n_strided


def dcgan_init_(module: nn.Module) -> None:
    """Initialise as Radford et al. 2016: conv/linear weights N(0, 0.02), norm weights
    N(1, 0.02), all biases 0. Use as ``model.apply(dcgan_init_)``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, C, H, W) in [-1, 1] (unbounded with ``bounded=False``).

    A transposed convolution projects z (as a 1 x 1 map) to the base resolution with
    ``width · 2^(n-1)`` channels; then ``n`` stride-2 transposed convolutions (kernel 4)
    double the resolution and halve the channels, the last one producing C channels.
    Batch norm + ReLU after every layer but the last, which is followed by tanh (none when
    ``bounded=False``, for image data outside [-1, 1]).

    Supported shapes: C in (1, 3), H = W in (8, 16, 28, 32, 64); anything else raises a
    ValueError at construction.
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        latent_dim: int = 100,
        width: int = 64,
        bounded: bool = True,
    ) -> None:
        super().__init__()
        self.sample_shape, base, n_up = _image_geometry(sample_shape)
        self.latent_dim = latent_dim = positive_int("latent_dim", latent_dim)
        width = positive_int("width", width)
        channels = self.sample_shape[0]

        ch = width * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, ch, kernel_size=base, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        ]
        for _ in range(n_up - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, kernel_size=4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(),
            ]
            ch //= 2
        layers.append(nn.ConvTranspose2d(ch, channels, kernel_size=4, stride=2, padding=1))
        if bounded:
            layers.append(nn.Tanh())
        self.bounded = bool(bounded)
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init_)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"the generator expects z of shape (batch, {self.latent_dim}), got {tuple(z.shape)}"
            )
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """Images (B, C, H, W) -> logits (B,).

    Any number of channels C >= 1 is accepted, so that the discriminator can judge PacGAN
    packs (:mod:`gan_je.models.packing`): m images of C channels joined into m·C channels.
    H = W must be one of the generator's sizes (8, 16, 28, 32, 64).

    ``n`` stride-2 convolutions (kernel 4) halve the resolution down to the base resolution,
    with ``width, 2·width, …, width · 2^(n-1)`` channels and LeakyReLU(0.2); a last
    convolution with a base-sized kernel gives one logit. No sigmoid: the losses take logits.

    ``norm`` is applied after every convolution but the first and the last (Radford et al.):

    - ``"batch"``: batch norm, as in the paper. Not for WGAN-GP: the gradient penalty is a
      per-sample quantity, but with batch norm each output depends on the whole batch, so the
      penalised gradient is not the critic's gradient at that sample (Gulrajani et al. 2017).
    - ``"layer"``: layer norm over (C, H, W) of each sample (``GroupNorm`` with one group),
      the replacement Gulrajani et al. recommend for WGAN-GP.
    - ``"none"``: no normalisation (the convolutions then get biases).

    ``spectral_norm`` wraps every convolution in
    ``torch.nn.utils.parametrizations.spectral_norm`` (Miyato et al. 2018).
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        width: int = 64,
        spectral_norm: bool = False,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        self.sample_shape, base, n_down = _image_geometry(sample_shape, any_channels=True)
        width = positive_int("width", width)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.norm = norm
        self.spectral_norm = bool(spectral_norm)

        def conv(
            n_in: int, n_out: int, kernel: int, stride: int, padding: int, bias: bool
        ) -> nn.Conv2d:
            return nn.Conv2d(n_in, n_out, kernel, stride=stride, padding=padding, bias=bias)

        def norm_layer(ch: int) -> nn.Module:
            if norm == "batch":
                return nn.BatchNorm2d(ch)
            if norm == "layer":
                return nn.GroupNorm(1, ch)
            return nn.Identity()

        ch = width
        layers: list[nn.Module] = [
            conv(self.sample_shape[0], ch, 4, 2, 1, bias=True),
            nn.LeakyReLU(0.2),
        ]
        for _ in range(n_down - 1):
            layers += [
                conv(ch, 2 * ch, 4, 2, 1, bias=norm == "none"),
                norm_layer(2 * ch),
                nn.LeakyReLU(0.2),
            ]
            ch *= 2
        layers.append(conv(ch, 1, base, 1, 0, bias=True))
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init_)
        if self.spectral_norm:  # after the init, so that it normalises the initialised weights
            for layer in self.net:
                if isinstance(layer, nn.Conv2d):
                    _spectral_norm(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_samples(x, self.sample_shape)
        return self.net(x).flatten()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations, flattened: ``(B, width · 2^(n-1) · base²)``."""
        check_samples(x, self.sample_shape)
        return self.net[:-1](x).flatten(1)
