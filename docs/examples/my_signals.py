"""A kind of sample, a data set and a pair of networks from a package of one's own: 1-D
signals, sine waves of random phase. Nothing in gan_je is edited; ``imports=[my_signals]``
makes every command import this module, which registers what it defines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_je.data import ArrayDataModule, SampleKind, register_kind
from gan_je.errors import ConfigError
from gan_je.parts import register
from gan_je.pictures import plot_signals


@register_kind
class Signal(SampleKind):
    """One-channel signals ``(1, length)`` in [-1, 1], pictured as line plots."""

    name = "signal"  # what a data spec names: {"kind": "signal", ...}
    bounded = True  # generators end in tanh

    def check(self) -> None:
        if len(self.sample_shape) != 2 or self.sample_shape[0] != 1:
            raise ConfigError(f"a signal has shape (1, length), got {self.sample_shape}")

    def picture(
        self,
        samples: Tensor,
        path: Path,
        title: str,
        real: Tensor | None = None,
        strip: bool = False,
    ) -> None:
        plot_signals(samples, path, title)


@register
class Sines(ArrayDataModule):
    """``sin(2π cycles t / length + φ)`` at 0.9 amplitude, phase φ uniform in [0, 2π)."""

    kind = "signal"

    def __init__(
        self, length: int = 32, cycles: int = 2, n_train: int = 512, n_val: int = 256, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.length, self.cycles, self.n_train, self.n_val = length, cycles, n_train, n_val

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (1, self.length)

    @property
    def n_classes(self) -> int:
        return 1

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        g = torch.Generator().manual_seed(self.data_seed)
        n = self.n_train + self.n_val
        phase = 2 * math.pi * torch.rand(n, 1, 1, generator=g)
        t = torch.arange(self.length) / self.length
        x = 0.9 * torch.sin(2 * math.pi * self.cycles * t + phase)
        y = torch.zeros(n, dtype=torch.int64)
        return x[: self.n_train], y[: self.n_train], x[self.n_train :], y[self.n_train :]


@register
class SignalGenerator(nn.Module):
    """z ``(B, latent_dim)`` -> signals ``(B, *sample_shape)``: ``n_layers`` hidden layers of
    ``hidden`` units, then a linear layer, squashed into [-1, 1] when ``bounded``."""

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        bounded: bool,
        latent_dim: int = 8,
        hidden: int = 64,
        n_layers: int = 2,
    ) -> None:
        super().__init__()
        self.sample_shape, self.latent_dim = tuple(sample_shape), latent_dim  # an int: required
        layers: list[nn.Module] = []
        for width in [latent_dim] + [hidden] * (n_layers - 1):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
        layers.append(nn.Linear(hidden, math.prod(self.sample_shape)))
        self.net = nn.Sequential(*layers, nn.Tanh() if bounded else nn.Identity())

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.sample_shape)


@register
class SignalDiscriminator(nn.Module):
    """Signals ``(B, channels, length)`` -> logits ``(B,)``: ``n_layers`` strided 1-D
    convolutions of ``hidden`` channels (spectrally normalised with ``spectral_norm``)."""

    def __init__(
        self,
        sample_shape: tuple[int, ...],
        hidden: int = 16,
        n_layers: int = 2,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        channels, length = sample_shape
        layers: list[nn.Module] = []
        for _ in range(n_layers):
            conv = nn.Conv1d(channels, hidden, 5, stride=2, padding=2)
            if spectral_norm:
                conv = nn.utils.parametrizations.spectral_norm(conv)
            layers += [conv, nn.LeakyReLU(0.2)]
            channels, length = hidden, (length + 1) // 2
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(hidden * length, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)
