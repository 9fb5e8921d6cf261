"""Digits: scikit-learn's 8 x 8 handwritten digits.

1,797 images of the digits 0..9, each an 8 x 8 grid of counts 0..16 (the number of "on"
pixels in a 4 x 4 block of a 32 x 32 bitmap). Source: the UCI "Optical Recognition of
Handwritten Digits" data set (Alpaydin and Kaynak, 1998), as bundled with scikit-learn:
``sklearn.datasets.load_digits``. Tiny and download-free: a smoke test for image GANs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from gan_je.data._checks import check_val_size, resolve_val_size
from gan_je.data._images import to_unit_range
from gan_je.data.base import ArrayDataModule, split

#: Largest value of a digits pixel.
DIGITS_MAX = 16.0


class Digits(ArrayDataModule):
    """scikit-learn's 1,797 digits as ``(1, 8, 8)`` images in [-1, 1], split with ``data_seed``.

    Args:
        val_size: validation samples, a count (int) or a fraction (float in (0, 1)); the
            default 297 leaves 1,500 for training.
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ... of :class:`ArrayDataModule`.
    """

    kind = "image"

    def __init__(self, val_size: int | float = 297, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.val_size = check_val_size(val_size)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (1, 8, 8)

    @property
    def n_classes(self) -> int:
        return 10

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        digits = _load_digits()
        x = to_unit_range(torch.from_numpy(digits.images), DIGITS_MAX).unsqueeze(1)
        y = torch.from_numpy(digits.target)
        n_val = resolve_val_size(self.val_size, len(x))
        return split(x, y, n_val, self.data_seed)


def _load_digits() -> Any:
    try:
        from sklearn.datasets import load_digits
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("Digits needs scikit-learn: pip install scikit-learn") from err
    return load_digits()
