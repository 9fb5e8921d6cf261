"""Pictures written as PNG files. Of samples: image grids, 2-D scatter plots, line plots of
signals, grids of spectrograms and decoded token sequences as text; the kinds of sample
(:mod:`gan_je.data.kinds`) draw with them for the sample callback during training and for the
``generate`` command. Of a run: its estimates against generator steps with their error bands
(``curves.png``)."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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


def plot_signals(
    signals: torch.Tensor, path: str | Path, title: str, rate: float = 1.0, max_rows: int = 8
) -> None:
    """A PNG of the first ``max_rows`` signals ``(n, length)`` or ``(n, channels, length)``,
    one panel each (channels overlaid), against time in seconds at ``rate`` samples per
    second (``rate=1``: against the sample index)."""
    from matplotlib.figure import Figure

    if signals.ndim not in (2, 3) or signals.shape[0] == 0:
        raise ValueError(
            f"signals must have shape (n >= 1, length) or (n, channels, length), "
            f"got {tuple(signals.shape)}"
        )
    signals = signals.detach().float().cpu()
    signals = signals[:max_rows] if signals.ndim == 3 else signals[:max_rows, None]
    time = np.arange(signals.shape[-1]) / rate
    fig = Figure(figsize=(8, 1.2 * len(signals) + 0.6), dpi=100)
    axes = fig.subplots(len(signals), 1, sharex=True, squeeze=False)[:, 0]
    for ax, signal in zip(axes, signals, strict=True):
        for channel in signal:
            ax.plot(time, channel.numpy(), linewidth=0.8)
    axes[-1].set_xlabel("seconds" if rate != 1 else "sample")
    axes[0].set_title(title)
    fig.tight_layout()
    fig.savefig(path)


def spectrograms_figure(
    spectrograms: torch.Tensor,
    title: str,
    rate: float,
    hop: int,
    max_items: int = 16,
    columns: int | None = None,
) -> Figure:
    """The first ``max_items`` log-mel spectrograms ``(n, bands, frames)`` (as
    :func:`gan_je.audio.log_mel` makes them) as a grid of ``columns`` to a row (default: a
    square), time in seconds on the x-axis (frame ``t`` centred on ``t * hop / rate``, as
    the STFT's centred frames are), mel band on the y-axis (lowest at the bottom), all drawn
    on one colour scale (the shown values' minimum to maximum) with one colour bar."""
    from matplotlib.figure import Figure

    if spectrograms.ndim != 3 or 0 in spectrograms.shape:
        raise ValueError(
            f"spectrograms must have shape (n >= 1, bands, frames), got {tuple(spectrograms.shape)}"
        )
    if not (rate > 0 and hop >= 1 and max_items >= 1 and (columns is None or columns >= 1)):
        raise ValueError(
            f"spectrograms need rate > 0, hop >= 1, max_items >= 1 and columns >= 1, got "
            f"rate={rate}, hop={hop}, max_items={max_items}, columns={columns}"
        )
    shown = spectrograms[:max_items].detach().float().cpu().numpy()
    if not np.isfinite(shown).all():
        raise ValueError("spectrograms must be finite to be drawn")
    n, bands, frames = shown.shape
    columns = min(n, columns or math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    fig = Figure(figsize=(2.4 * columns + 1.2, 1.9 * rows + 0.6), dpi=100, layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    low, high = float(shown.min()), float(shown.max())
    seconds = hop / rate  # between two frames
    extent = (-0.5 * seconds, (frames - 0.5) * seconds, 0.0, float(bands))
    for index, ax in enumerate(axes.flat):
        if index >= n:
            ax.set_axis_off()
            continue
        image = ax.imshow(
            shown[index], origin="lower", aspect="auto", extent=extent, vmin=low, vmax=high
        )
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    for ax in axes[:, 0]:
        ax.set_ylabel("mel band")
    fig.suptitle(title)
    fig.colorbar(image, ax=axes, fraction=0.03, pad=0.02, label="log mel power")
    return fig


def show_spectrograms(
    spectrograms: torch.Tensor,
    path: str | Path,
    title: str,
    rate: float,
    hop: int,
    max_items: int = 16,
    columns: int | None = None,
) -> None:
    """A PNG of :func:`spectrograms_figure` (a waveform's sample picture)."""
    spectrograms_figure(spectrograms, title, rate, hop, max_items, columns).savefig(path)


def show_tokens(lines: Sequence[str], path: str | Path, title: str, max_rows: int = 16) -> None:
    """A PNG of the first ``max_rows`` decoded token sequences, one a line (strings without
    line breaks: :func:`gan_je.text.one_line`), drawn as they are (no mathtext: ``$``
    is a dollar), in a monospace font; a character the font has no glyph for (CJK, emoji,
    control characters) is drawn as U+FFFD, the replacement character."""
    from matplotlib.figure import Figure

    if isinstance(lines, str) or not lines or not all(isinstance(line, str) for line in lines):
        raise ValueError(f"show_tokens needs a non-empty list of strings, got {lines!r:.80}")
    if any(len(f"{line}x".splitlines()) > 1 for line in lines):
        raise ValueError("show_tokens draws one sequence a line: escape line breaks first")
    glyphs = _monospace_glyphs()
    shown = ["".join(c if ord(c) in glyphs else "\ufffd" for c in line) for line in lines]
    fig = Figure(figsize=(8, 0.25 * min(len(lines), max_rows) + 0.6), dpi=100)
    text = "\n".join([title, *shown[:max_rows]])
    fig.text(0.01, 0.99, text, va="top", family="monospace", fontsize=8, parse_math=False)
    fig.savefig(path)


@functools.cache
def _monospace_glyphs() -> frozenset[int]:
    """The code points the monospace font matplotlib draws with has glyphs for (no control
    characters: a tab or an escape would be drawn as a box or not at all)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    font = font_manager.findfont(font_manager.FontProperties(family="monospace"))
    return frozenset(c for c in FT2Font(font).get_charmap() if chr(c).isprintable())


#: The estimates ``curves.png`` draws: per panel, the ``metrics.csv`` column and its label.
CURVES = (
    (("val/entropy_real", "real"), ("val/entropy_fake", "generated")),
    (("val/jsd", "JSD"), ("val/jsd_sliced", "sliced JSD")),
)
#: The half-width of the shaded bands in standard errors: the normal 97.5 % quantile, so a band
#: is the 95 % interval estimate ± 1.96 se.
BAND_SE = 1.959963984540054


def curves_figure(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """The run's estimates against generator steps, from the rows of its ``metrics.csv``:
    the entropies of the real and generated samples (left), the JSD estimates (right), each
    with a shaded band ``estimate ± 1.96 se`` (a 95 % normal interval) where the metric
    logged its standard error ``<key>_se``; a validation without a value leaves a gap."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    if not rows or any("g_step" not in row for row in rows):
        raise ValueError("curves need at least one metrics row, each with its g_step")
    steps = np.array([float(row["g_step"]) for row in rows])
    fig = Figure(figsize=(10, 4), dpi=100)
    left, right = fig.subplots(1, 2)
    banded = False
    for ax, curves in zip((left, right), CURVES, strict=True):
        for key, label in curves:
            if not any(key in row for row in rows):
                continue
            values = _column(rows, key)
            (line,) = ax.plot(steps, values, marker=".", label=label)
            if any(f"{key}_se" in row for row in rows):
                half = BAND_SE * _column(rows, f"{key}_se")
                ax.fill_between(
                    steps, values - half, values + half, color=line.get_color(), alpha=0.2
                )
                banded = True
    left.set(xlabel="generator step", ylabel="entropy (nats)", title="k-NN entropy")
    right.axhline(math.log(2), color="0.5", linestyle=":", label="log 2 (disjoint)")
    right.set(xlabel="generator step", ylabel="nats", title="real vs generated")
    for ax in (left, right):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.grid(alpha=0.3)
    if banded:
        fig.suptitle("shaded: estimate ± 1.96 standard errors (95 % interval)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_curves(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """A PNG of :func:`curves_figure` (the run record's ``curves.png``)."""
    curves_figure(rows).savefig(path)


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    return np.array([float(row.get(key, math.nan)) for row in rows])
