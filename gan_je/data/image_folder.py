"""ImageFolder: any folder of image files, cropped, resized and held in memory.

Images are found recursively and labelled by the top-level subfolder they lie under
(:mod:`gan_je.data._folders`: a folder without subfolders is one class, 0, and a folder laid
out like torchvision's ``ImageFolder``, ``root/<class>/<image>``, gets the same labels).
Each image is centre-cropped to its largest square and resized (PIL, bicubic with
antialiasing), then converted to grayscale (``channels=1``, ITU-R 601-2 luma) or RGB.
A missing or empty folder and an unreadable image are a :class:`~gan_je.errors.DataError`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_je.checks import positive_int
from gan_je.data._checks import check_val_size, resolve_val_size
from gan_je.data._folders import class_name, find_files, labels
from gan_je.data._images import pixels_to_images
from gan_je.data.base import ArrayDataModule, split
from gan_je.errors import DataError

#: File name endings (lower case) that are read as images.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
#: The decoders PIL may use: these formats only, whatever a file's content claims to be.
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM")


class ImageFolder(ArrayDataModule):
    """A folder of images as ``(channels, image_size, image_size)`` float32 tensors in [-1, 1].

    Args:
        path: the folder; searched recursively for files ending in :data:`IMAGE_EXTENSIONS`.
        image_size: side of the square images after centre crop and resize.
        channels: 1 (grayscale) or 3 (RGB).
        val_size: validation images, a count (int) or a fraction (float in (0, 1)); the split
            is seeded by ``data_seed``.
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ... of :class:`ArrayDataModule`.

    Attributes:
        classes: after :meth:`setup`, the class names (subfolder names, "." for the root);
            label ``i`` is ``classes[i]``.

    Everything is loaded into memory: N x channels x image_size² x 4 bytes (a 64 x 64 RGB
    image takes 48 KiB, so 100,000 of them take 4.6 GiB).
    """

    kind = "image"

    def __init__(
        self,
        path: str | Path,
        image_size: int = 64,
        channels: int = 3,
        val_size: int | float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser()
        self.image_size = positive_int("image_size", image_size)
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        self.channels = int(channels)
        self.val_size = check_val_size(val_size)
        self.classes: list[str] | None = None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def n_classes(self) -> int:
        if self.classes is None:  # before setup: scan the folder (cheap, no decoding)
            return len({class_name(self.path, file) for file in find_images(self.path)})
        return len(self.classes)

    def prepare_data(self) -> None:
        find_images(self.path)  # fail early on a missing or empty folder

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        files = find_images(self.path)
        self.classes, y = labels(self.path, files)
        mode = "L" if self.channels == 1 else "RGB"
        with ThreadPoolExecutor() as pool:  # PIL releases the GIL while decoding
            pixels = list(pool.map(lambda f: load_image(f, self.image_size, mode), files))
        x = pixels_to_images(torch.from_numpy(np.stack(pixels)))
        n_val = resolve_val_size(self.val_size, len(x))
        return split(x, y, n_val, self.data_seed)


def find_images(path: str | Path) -> list[Path]:
    """All image files under ``path``, recursively, sorted; a :class:`DataError` if ``path``
    is not a folder or holds none."""
    return find_files(path, IMAGE_EXTENSIONS, "images", "image folder")


def load_image(file: Path, size: int, mode: str) -> np.ndarray:
    """``(C, size, size)`` uint8 pixels of ``file``: centre-cropped, resized, in ``mode``
    ("L" or "RGB"); a :class:`DataError` if the file cannot be decoded."""
    from PIL import Image, UnidentifiedImageError

    size = positive_int("size", size)
    if mode not in ("L", "RGB"):
        raise ValueError(f'mode must be "L" (grayscale) or "RGB", got {mode!r}')
    try:
        with Image.open(file, formats=IMAGE_FORMATS) as image:
            _check_pixels(file, image.width * image.height)
            image = _centre_square(_flatten_alpha(image).convert(mode))
            image = image.resize((size, size), Image.Resampling.BICUBIC)
    except Image.DecompressionBombError as err:  # more than twice PIL's limit
        raise DataError(f"{file}: {_BOMB} ({err})") from err
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(
            f"cannot read image {file} ({err}): it is damaged or not an image; "
            "delete, replace or move it"
        ) from err
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


_BOMB = "it may be a decompression bomb (too large to decode safely); shrink, delete or move it"


def _check_pixels(file: Path, pixels: int) -> None:
    """Refuse an image of more pixels than PIL's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS``, 89,478,485 by default: 256 MiB at 3 bytes a pixel),
    which PIL only warns about up to twice that: decoding one would take that memory in
    every loading thread."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and pixels > limit:
        raise DataError(f"{file} has {pixels} pixels, more than PIL's limit of {limit}: {_BOMB}")


def _flatten_alpha(image: Any) -> Any:
    """Composite images with transparency onto white, so transparent pixels are not black."""
    from PIL import Image

    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode not in ("RGBA", "LA"):
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba)


def _centre_square(image: Any) -> Any:
    """The largest square at the centre of ``image``."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))
