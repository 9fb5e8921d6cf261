"""MNIST, Fashion-MNIST and CIFAR-10, read from torchvision's files into memory.

Sources: MNIST (LeCun, Cortes and Burges, https://yann.lecun.com/exdb/mnist/), Fashion-MNIST
(Xiao, Rasul and Vollgraf 2017, https://github.com/zalandoresearch/fashion-mnist), CIFAR-10
(Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html), downloaded by
``torchvision.datasets`` (``download=True``) and read here directly, without torchvision's
checksum pass over the files (:func:`gan_je.data.idx.read_idx` reads the IDX files). The
validation set is (a seeded subset of) the official test split.

Where the files are looked for, under ``data_dir``:

- mnist, fashion_mnist: the four IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``,
  gzip-compressed (``.gz``) or not, in ``data_dir/MNIST/raw`` (``FashionMNIST/raw``), the
  layout torchvision downloads to, or directly in ``data_dir``. Fashion-MNIST is also read
  from ``/usr/share/datasets/fashion-mnist``, where Debian's ``dataset-fashion-mnist``
  package installs the four ``.gz`` files.
- cifar10: ``data_dir/cifar-10-batches-py``, the extracted ``cifar-10-python.tar.gz``.

The train and test splits are separate files, so ``setup("validate")`` reads only the test
files. Missing or unreadable files are a :class:`~gan_je.errors.DataError` saying what to do.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from gan_je.checks import choice, positive_int
from gan_je.data._checks import check_val_size
from gan_je.data._images import pixels_to_images
from gan_je.data.base import ArrayDataModule
from gan_je.data.idx import read_idx
from gan_je.errors import DataError

#: Where Debian's ``dataset-fashion-mnist`` package installs Fashion-MNIST.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: The IDX files of each split, images then labels, without the optional ``.gz``.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


class _Info(NamedTuple):
    torchvision_class: str
    channels: int
    size: int


DATASETS = {
    "mnist": _Info("MNIST", 1, 28),
    "fashion_mnist": _Info("FashionMNIST", 1, 28),
    "cifar10": _Info("CIFAR10", 3, 32),
}


class TorchvisionImages(ArrayDataModule):
    """MNIST, Fashion-MNIST or CIFAR-10 as float32 images in [-1, 1], all in memory.

    Args:
        name: ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
        data_dir: the folder holding the data (see the module docstring for the layout).
        download: download the data into ``data_dir`` (in :meth:`prepare_data`) when it is
            not found; otherwise a missing data set is a :class:`~gan_je.errors.DataError`.
        image_size: resize the images to ``image_size x image_size`` (e.g. 32 or 64 for the
            DCGAN architecture); ``None`` keeps 28 (MNIST) or 32 (CIFAR-10).
        val_size: ``None`` validates on the whole test split (10,000 images); a count (int)
            or fraction (float in (0, 1)) validates on a seeded subset of it.
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ... of :class:`ArrayDataModule`.
    """

    kind = "image"
    separate_splits = True  # setup("validate") reads only the test files

    def __init__(
        self,
        name: str,
        data_dir: str | Path = "data",
        download: bool = False,
        image_size: int | None = None,
        val_size: int | float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = choice("name", name, tuple(DATASETS))
        self.data_dir = Path(data_dir).expanduser()
        self.download = bool(download)
        self.image_size = None if image_size is None else positive_int("image_size", image_size)
        self.val_size = None if val_size is None else check_val_size(val_size)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        info = DATASETS[self.name]
        size = self.image_size or info.size
        return (info.channels, size, size)

    @property
    def n_classes(self) -> int:
        return 10

    def prepare_data(self) -> None:
        """Download the data into ``data_dir`` if ``download`` is set and it is not found."""
        if self.download and self._find() is None:
            self._download()

    def _load_split(self, split: str) -> tuple[Tensor, Tensor]:
        """Images and labels of ``split``: "train", or "val" (read from the test files)."""
        folder = self._find()
        if folder is None:
            raise DataError(self._missing_message())
        files = "train" if split == "train" else "test"
        read = _read_cifar10 if self.name == "cifar10" else _read_idx_split
        try:
            x, y = read(folder, files)
        except (OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as err:
            raise DataError(
                f"cannot read the {files} split of {self.name} in {folder} ({err}): the files "
                f"are damaged or not {self.name}'s; delete them and set data.download=true "
                f"(download=True) to fetch them again"
            ) from err
        if split == "val":
            x, y = self._val_subset(x, y)
        return pixels_to_images(x, self.image_size), y

    def _val_subset(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if self.val_size is None:
            return x, y
        n = round(self.val_size * len(x)) if isinstance(self.val_size, float) else self.val_size
        if not 1 <= n <= len(x):
            raise DataError(
                f"val_size={self.val_size!r} asks for {n} of the {len(x)} test images of "
                f"{self.name}; pass at most {len(x)}, or None for all of them"
            )
        generator = torch.Generator().manual_seed(self.data_seed)
        keep = torch.randperm(len(x), generator=generator)[:n].sort().values
        return x[keep], y[keep]

    def _candidates(self) -> list[Path]:
        """The folders that may hold the files, in the order they are tried."""
        if self.name == "cifar10":
            return [self.data_dir / CIFAR10_FOLDER]
        raw = self.data_dir / DATASETS[self.name].torchvision_class / "raw"
        folders = [raw, self.data_dir]
        if self.name == "fashion_mnist":
            folders.append(DEBIAN_FASHION_MNIST_DIR)
        return folders

    def _find(self) -> Path | None:
        """The first candidate folder holding every file of the data set, or ``None``."""
        for folder in self._candidates():
            if self.name == "cifar10":
                if all((folder / name).is_file() for name in CIFAR10_FILES):
                    return folder
            elif all(_idx_path(folder, name) for names in IDX_FILES.values() for name in names):
                return folder
        return None

    def _missing_message(self) -> str:
        if self.name == "cifar10":
            files = ", ".join(CIFAR10_FILES)
            copy = f"extract cifar-10-python.tar.gz into {self.data_dir}"
        else:
            files = ", ".join(f"{name}[.gz]" for names in IDX_FILES.values() for name in names)
            copy = f"copy the four files into {self._candidates()[0]}"
        apt = (
            ", or on Debian/Ubuntu `apt install dataset-fashion-mnist`"
            if self.name == "fashion_mnist"
            else ""
        )
        return (
            f"{self.name} not found (looked for {files} in "
            f"{', '.join(str(folder) for folder in self._candidates())}): "
            f"set data.download=true (download=True) to download it into {self.data_dir}, "
            f"{copy}, or point data_dir at a folder that has it{apt}"
        )

    def _download(self) -> None:
        import torchvision.datasets

        dataset_class = getattr(torchvision.datasets, DATASETS[self.name].torchvision_class)
        for train in (True, False):
            dataset_class(root=str(self.data_dir), train=train, download=True)


def _idx_path(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists (the plain file first)."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def _read_idx_split(folder: Path, split: str) -> tuple[Tensor, Tensor]:
    """``(N, 1, 28, 28)`` uint8 images and int64 labels of one split of an IDX data set."""
    image_file, label_file = IDX_FILES[split]
    images = read_idx(_idx_path(folder, image_file))
    labels = read_idx(_idx_path(folder, label_file))
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(
            f"{folder}: {image_file} has shape {images.shape} and {label_file} {labels.shape}; "
            "expected (N, H, W) images and N labels"
        )
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain values and NumPy arrays; any other global is a :class:`DataError`."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise DataError(
                f"a CIFAR-10 file names {module}.{name}, which is not part of the data set: "
                f"it is refused (delete the files and set data.download=true)"
            )
        return super().find_class(module, name)


def _read_cifar10(folder: Path, split: str) -> tuple[Tensor, Tensor]:
    """``(N, 3, 32, 32)`` uint8 images and int64 labels of one CIFAR-10 split.

    Reads the pickled batches as torchvision does (each a dict with ``data``, ``(N, 3072)``
    uint8 in channel-major order, and ``labels``) but skips its MD5 check of all six files.
    The files are pickles, read by :class:`_ArrayUnpickler`, which builds NumPy arrays and
    plain values only: a file that names anything else is refused, never run.
    """
    names = CIFAR10_FILES[:-1] if split == "train" else CIFAR10_FILES[-1:]
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as file:
            batch = _ArrayUnpickler(file, encoding="latin1").load()
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch["labels"], dtype=np.int64))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))
