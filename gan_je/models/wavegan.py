"""WaveGAN (Donahue, McAuley & Puckette 2019, "Adversarial Audio Synthesis"): DCGAN's pair
flattened to one dimension, for waveforms ``(C, L)``.

The generator maps z to ``16·width`` channels at ``L / 4^5`` positions (16 at the paper's
16,384 samples) and five transposed convolutions (kernel 25, stride 4) each multiply the
length by 4 and halve the channels, the last one producing C channels:

    L 16384: 16 → 64 → 256 → 1024 → 4096 → 16384      (the paper's SC09 clips, 16 kHz)
    L  8192:  8 → 32 → 128 →  512 → 2048 →  8192      (the CPU presets, 8 kHz)

So any length that is a multiple of 4^5 = 1024 is supported; an 8 kHz second costs half the
paper's computation (every layer is half as long) with the paper's layers unchanged. (The
paper's code reaches longer clips by adding layers instead; for shorter ones it has none.)
The discriminator mirrors the generator with five strided convolutions, phase shuffle after
each but the last, and a linear head. Neither network has batch norm (the paper's default),
so the WGAN-GP penalty, the paper's objective, applies.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gan_je.checks import non_negative_int, positive_int
from gan_je.models._checks import check_samples, shape_tuple

#: the paper's number of strided layers in each network
N_LAYERS = 5
#: their stride and kernel size along time
STRIDE, KERNEL = 4, 25
#: the paper's phase shuffle: shifts of up to 2 positions either way
PHASE_SHUFFLE = 2


def waveform_geometry(sample_shape: Sequence[int], network: str) -> tuple[int, int, int]:
    """``(channels, length, base)`` of waveforms ``(C, L)`` with L a multiple of
    ``STRIDE^N_LAYERS`` (1024); ``base = L / 1024`` positions where the generator starts."""
    shape = shape_tuple(sample_shape)
    step = STRIDE**N_LAYERS
    if len(shape) != 2 or shape[1] % step:
        raise ValueError(
            f"{network} needs waveforms of shape (channels, length) with a length that is a "
            f"multiple of {step} (e.g. 8192 at 8 kHz, 16384 at 16 kHz as the paper), got "
            f"samples of shape {shape}; set the data's clip length"
        )
    return shape[0], shape[1], shape[1] // step


def phase_shuffle(x: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Each example of ``x`` ``(B, C, L)`` shifted circularly along time by its own k, drawn
    uniformly from ``[-n, n]``: ``out[b, :, t] = x[b, :, (t - k_b) mod L]``, as
    ``torch.roll(x[b], k_b, -1)``.

    WaveGAN's phase shuffle (Donahue et al. 2019, section 3.3) keeps the discriminator from
    judging by the phase of the periodic artefacts that transposed convolutions leave. The
    paper shifts and fills the ``k`` vacated positions by reflection padding, which drops
    ``k`` values and repeats others. A circular shift moves the same features by the same k
    but keeps every value exactly once (a permutation), and only the ``k`` wrapped positions
    at the edges differ from the paper's. The shifts are drawn on the CPU from ``generator``
    (``None``: torch's global stream, which gan_je seeds and checkpoints), so that a seed
    gives the same shifts on every device.
    """
    n = non_negative_int("n (phase shuffle)", n)
    if x.ndim != 3:
        raise ValueError(f"phase_shuffle needs x of shape (batch, channels, length), got {x.shape}")
    if n == 0:
        return x
    batch, channels, length = x.shape
    shifts = torch.randint(-n, n + 1, (batch, 1), generator=generator).to(x.device)
    index = (torch.arange(length, device=x.device) - shifts) % length
    return x.gather(2, index[:, None, :].expand(batch, channels, length))


def _init_(module: nn.Module) -> None:
    """The paper's code: weights Glorot-uniform (TensorFlow's default), biases 0."""
    if isinstance(module, nn.Conv1d | nn.ConvTranspose1d | nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


class WaveGANGenerator(nn.Module):
    """z ``(B, latent_dim)`` -> waveforms ``(B, C, L)`` in [-1, 1] (unbounded with
    ``bounded=False``).

    A linear layer maps z to ``16·width`` channels at ``L / 1024`` positions; ReLU; five
    transposed convolutions (kernel 25, stride 4) with ``8·width, 4·width, 2·width, width``
    and C output channels, ReLU between them, tanh after the last. The paper: ``latent_dim``
    100, ``width`` 64 at 16,384 samples (19 million parameters).
    """

    def __init__(
        self,
        sample_shape: Sequence[int],
        bounded: bool = True,
        latent_dim: int = 100,
        width: int = 64,
    ) -> None:
        super().__init__()
        channels, self.length, self.base = waveform_geometry(sample_shape, "WaveGANGenerator")
        self.latent_dim = positive_int("latent_dim", latent_dim)
        self.width = positive_int("width", width)
        self.bounded = bool(bounded)
        top = self.width * 2 ** (N_LAYERS - 1)
        self.input = nn.Linear(self.latent_dim, top * self.base)
        layers: list[nn.Module] = []
        for i in range(N_LAYERS):
            n_in = top // 2**i
            n_out = channels if i == N_LAYERS - 1 else n_in // 2
            # output length 4·L_in: (L_in - 1)·4 - 2·11 + 25 + 1
            layers += [nn.ReLU(), nn.ConvTranspose1d(n_in, n_out, KERNEL, STRIDE, 11, 1)]
        if self.bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.apply(_init_)

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"the generator expects z of shape (batch, {self.latent_dim}), got {tuple(z.shape)}"
            )
        return self.net(self.input(z).view(z.shape[0], -1, self.base))


class WaveGANDiscriminator(nn.Module):
    """Waveforms ``(B, C, L)`` -> logits ``(B,)``.

    Five convolutions (kernel 25, stride 4) with ``width, 2·width, …, 16·width`` channels,
    each followed by LeakyReLU(0.2) and, all but the last, by :func:`phase_shuffle` of up to
    ``phase_shuffle`` positions (train mode only: eval mode draws nothing); a linear layer
    reads the ``16·width x L / 1024`` features. C may be any number (a PacGAN pack of m
    clips has m·C channels). No normalisation, so the WGAN-GP penalty applies.
    """

    def __init__(
        self, sample_shape: Sequence[int], width: int = 64, phase_shuffle: int = PHASE_SHUFFLE
    ) -> None:
        super().__init__()
        channels, length, base = waveform_geometry(sample_shape, "WaveGANDiscriminator")
        self.sample_shape = (channels, length)
        self.width = positive_int("width", width)
        self.phase_shuffle = non_negative_int("phase_shuffle", phase_shuffle)
        sizes = [channels] + [self.width * 2**i for i in range(N_LAYERS)]
        self.convs = nn.ModuleList(
            nn.Conv1d(n_in, n_out, KERNEL, STRIDE, padding=11)
            for n_in, n_out in itertools.pairwise(sizes)
        )
        self.activation = nn.LeakyReLU(0.2)
        self.output = nn.Linear(sizes[-1] * base, 1)
        self.apply(_init_)

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer, flattened: ``(B, 16·width · L / 1024)``."""
        check_samples(x, self.sample_shape)
        for i, conv in enumerate(self.convs):
            x = self.activation(conv(x))
            if self.training and i < N_LAYERS - 1:
                x = phase_shuffle(x, self.phase_shuffle)
        return x.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.features(x)).squeeze(1)
