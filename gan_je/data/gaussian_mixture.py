"""2-D Gaussian mixtures: the ring and grid benchmarks for mode collapse.

Both are mixtures of equally weighted isotropic Gaussians; a generator that covers all modes
and puts its samples near the centres is doing well, one that drops modes has collapsed. The
geometry is PacGAN's (Lin, Khetan, Fanti and Oh, "PacGAN: The power of two samples in
generative adversarial networks", NeurIPS 2018), the benchmarks VEEGAN's
(Srivastava, Valkov, Russell, Gutmann and Sutton, NeurIPS 2017):

- ring: 8 modes with means (cos 2πi/8, sin 2πi/8), standard deviation 0.01;
- grid: 25 modes with means (-4 + 2i, -4 + 2j), i, j = 0..4, standard deviation 0.05.

PacGAN evaluates on 2,500 generated samples, counting a mode as covered when a sample lies
within three standard deviations of its centre; ``centers`` and ``std`` are exposed for that.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gan_je.checks import positive_float, positive_int
from gan_je.data._checks import check_samples_fit
from gan_je.data.base import ArrayDataModule


class GaussianMixture(ArrayDataModule):
    """Equally weighted isotropic Gaussians in 2-D; the label of a sample is its mode's index.

    Args:
        centers: ``(M, 2)`` mode means.
        std: standard deviation of every mode, per coordinate.
        n_train: training samples.
        n_val: validation samples (PacGAN evaluates on 2,500).
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ... of :class:`ArrayDataModule`;
            the samples are drawn with a generator seeded by ``data_seed``.

    Attributes:
        centers: ``(M, 2)`` float32 tensor of the mode means.
        std: the modes' standard deviation.
    """

    def __init__(
        self,
        centers: Tensor,
        std: float,
        n_train: int = 20_000,
        n_val: int = 2_500,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        centers = torch.as_tensor(centers, dtype=torch.float32)
        if centers.ndim != 2 or centers.shape[0] < 1 or centers.shape[1] != 2:
            raise ValueError(f"centers must have shape (M, 2), got {tuple(centers.shape)}")
        self.centers = centers
        self.std = positive_float("std", std)
        self.n_train = positive_int("n_train", n_train)
        self.n_val = positive_int("n_val", n_val)
        check_samples_fit(self.n_train, self.n_val, self.sample_shape)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (2,)

    @property
    def n_classes(self) -> int:
        return len(self.centers)

    @property
    def data_spec(self) -> dict[str, Any]:
        """:attr:`ArrayDataModule.data_spec` (kind ``points``) plus ``"centers"``
        (``[[x, y], ...]``, floats) and ``"std"``, the geometry that mode-coverage metrics
        need."""
        return {**super().data_spec, "centers": self.centers.tolist(), "std": self.std}

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` points ``x`` (float32, ``(n, 2)``) and their mode indices ``y``."""
        y = torch.randint(len(self.centers), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator)
        return self.centers[y] + self.std * noise, y

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        generator = torch.Generator().manual_seed(self.data_seed)
        x_train, y_train = self.sample(self.n_train, generator)
        x_val, y_val = self.sample(self.n_val, generator)
        return x_train, y_train, x_val, y_val


class Ring(GaussianMixture):
    """``n_modes`` Gaussians equally spaced on a circle: PacGAN's 2D-ring with the defaults.

    Mode ``i`` is centred at ``radius * (cos 2πi/n_modes, sin 2πi/n_modes)``.
    """

    def __init__(
        self,
        n_train: int = 20_000,
        n_val: int = 2_500,
        n_modes: int = 8,
        radius: float = 1.0,
        std: float = 0.01,
        **kwargs: Any,
    ) -> None:
        centers = ring_centers(positive_int("n_modes", n_modes), positive_float("radius", radius))
        super().__init__(centers, std, n_train, n_val, **kwargs)
        self.n_modes = int(n_modes)
        self.radius = float(radius)


class Grid(GaussianMixture):
    """``side x side`` Gaussians on a square grid: PacGAN's 2D-grid with the defaults.

    The grid is centred on the origin with ``spacing`` between neighbours: with ``side=5`` and
    ``spacing=2`` the coordinates are {-4, -2, 0, 2, 4}. Mode ``i * side + j`` is at
    ``(coords[i], coords[j])``.
    """

    def __init__(
        self,
        n_train: int = 20_000,
        n_val: int = 2_500,
        side: int = 5,
        spacing: float = 2.0,
        std: float = 0.05,
        **kwargs: Any,
    ) -> None:
        centers = grid_centers(positive_int("side", side), positive_float("spacing", spacing))
        super().__init__(centers, std, n_train, n_val, **kwargs)
        self.side = int(side)
        self.spacing = float(spacing)


def ring_centers(n_modes: int, radius: float) -> Tensor:
    """``(n_modes, 2)`` points equally spaced on a circle of ``radius``, the first at angle 0."""
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_centers(side: int, spacing: float) -> Tensor:
    """``(side**2, 2)`` points of a square grid centred on the origin, row-major."""
    coords = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([rows.flatten(), cols.flatten()], dim=1).float()
