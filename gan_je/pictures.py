"""Pictures of samples, written as PNG files: image grids and 2-D scatter plots. Used by the
sample callback during training and by the ``generate`` command."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def image_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 1) -> np.ndarray:
    """Images ``(n, C, H, W)`` with values in [-1, 1] (C = 1 or 3) tiled ``nrow`` to a row
    (default: a square) with ``padding`` black pixels around each, as a ``uint8`` array
    ``(rows, columns)`` or ``(rows, columns, 3)``; values are clipped to [-1, 1]."""
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"an image grid needs images of shape (n >= 1, 1 or 3, H, W), got {tuple(images.shape)}"
        )
    n, channels, height, width = images.shape
    nrow = nrow or max(1, round(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    pixels = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8)
    cell_h, cell_w = height + padding, width + padding
    grid = np.zeros((rows * cell_h + padding, nrow * cell_w + padding, channels), np.uint8)
    for index, image in enumerate(pixels.permute(0, 2, 3, 1).numpy()):
        top, left = (index // nrow) * cell_h + padding, (index % nrow) * cell_w + padding
        grid[top : top + height, left : left + width] = image
    return grid[..., 0] if channels == 1 else grid


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> None:
    """A PNG of :func:`image_grid`."""
    Image.fromarray(image_grid(images, nrow)).save(path)


def scatter_real_fake(
    real: torch.Tensor | None,
    fake: torch.Tensor,
    path: str | Path,
    title: str,
    centers: torch.Tensor | None = None,
) -> None:
    """A PNG scatter plot of 2-D real (grey) and generated (red) samples, and of the mode
    centres (black crosses) of a known mixture when given."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.subplots()
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=4, c="0.6", label="real", alpha=0.6)
    ax.scatter(fake[:, 0], fake[:, 1], s=4, c="tab:red", label="generated", alpha=0.6)
    if centers is not None:
        ax.scatter(centers[:, 0], centers[:, 1], s=40, c="k", marker="x", label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=3)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
