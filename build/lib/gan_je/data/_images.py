"""Image helpers: pixel values to [-1, 1], and resizing a whole stack of images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Images converted per chunk, to bound the memory of the float copies.
CHUNK = 4096


def to_unit_range(pixels: Tensor, max_value: float = 255.0) -> Tensor:
    """Map pixel values in ``[0, max_value]`` linearly to float32 in ``[-1, 1]``."""
    return pixels.to(torch.float32).mul_(2.0 / max_value).sub_(1.0)


def resize(images: Tensor, size: int) -> Tensor:
    """Resize ``(N, C, H, W)`` images in [-1, 1] to ``(N, C, size, size)``.

    Bilinear with antialiasing (a filter of non-negative weights, so values stay in [-1, 1]);
    the aspect ratio is not kept, so pass square images.
    """
    if images.shape[-2:] == (size, size):
        return images
    resized = F.interpolate(images, (size, size), mode="bilinear", antialias=True)
    return resized.clamp_(-1.0, 1.0)


def pixels_to_images(pixels: Tensor, size: int | None = None) -> Tensor:
    """``(N, C, H, W)`` uint8 pixels to float32 images in [-1, 1], resized to ``size`` if given.

    Works chunk by chunk so that only the result, not a float copy at the original size, has
    to fit in memory.
    """
    chunks = (to_unit_range(chunk) for chunk in pixels.split(CHUNK))
    return torch.cat([chunk if size is None else resize(chunk, size) for chunk in chunks])
