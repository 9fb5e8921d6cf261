"""Counting the modes of stacked MNIST, as the published mode-collapse benchmarks do
(Srivastava et al. 2017, VEEGAN, section 5.2; Lin et al. 2018, PacGAN, section 5.1): a digit
classifier labels each of an image's three channels, the triple is its mode (of 1,000), and
a set of samples is scored by

- ``modes_covered``: the number of distinct modes among its samples;
- ``mode_kl``: ``KL(p || u) = sum_m p_m log(1000 p_m)``, the Kullback-Leibler divergence of
  its mode histogram ``p`` from the uniform distribution ``u`` of the real data (0 for a
  perfectly balanced set; log 1000 = 6.9 for a single mode);
- ``high_quality``: the share of samples whose three digits are all classified with
  probability at least ``threshold``.

The counter itself is checked against real data: real stacked images must cover at least
950 modes with ``mode_kl`` at most 0.1 on 26,000 samples (``tests/test_modes.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_je.checks import positive_int
from gan_je.class_scores import class_kl, classes_covered
from gan_je.data.stacked_mnist import N_MODES, mode_of
from gan_je.features import Classifier


def mode_statistics(
    modes: Tensor, confidence: Tensor, threshold: float = 0.9, n_modes: int = N_MODES
) -> dict[str, float]:
    """``modes_covered``, ``mode_kl`` and ``high_quality`` of samples with the given
    ``modes`` (ints in ``range(n_modes)``) and classifier ``confidence`` (see the module
    doc)."""
    n_modes = positive_int("n_modes", n_modes)
    if modes.ndim != 1 or modes.shape != confidence.shape or len(modes) == 0:
        raise ValueError(
            f"modes and confidence must be two non-empty (N,) tensors, got shapes "
            f"{tuple(modes.shape)} and {tuple(confidence.shape)}"
        )
    if modes.min() < 0 or modes.max() >= n_modes:
        raise ValueError(f"modes must lie in range({n_modes})")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
    return {
        "modes_covered": float(classes_covered(modes, n_modes)),
        "mode_kl": class_kl(modes, n_modes),
        "high_quality": float((confidence >= threshold).double().mean()),
    }


class DigitClassifier(Classifier):
    """The mode counter's digit classifier: a :class:`gan_je.features.Classifier` whose
    network keeps the digit's layout (two 3x3 convolutions with max pooling, then two
    linear layers on the whole ``64 x S/4 x S/4`` map) instead of pooling it to 2 x 2."""

    def _network(self, sample_shape: tuple[int, ...], n_classes: int) -> torch.nn.Sequential:
        nn = torch.nn
        side = sample_shape[-1] // 4
        return nn.Sequential(
            nn.Conv2d(sample_shape[0], 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * side * side, self.embedding),
            nn.ReLU(),
            nn.Linear(self.embedding, n_classes),
        )


class StackedModeCounter:
    """The digit classifier of the stacked-MNIST benchmark and the statistics it gives.

    A :class:`DigitClassifier` (trained ``epochs`` with Adam, cached in ``cache_dir``) is
    fitted on single digits, ``(N, 1, S, S)``; stacked images
    ``(N, 3, S, S)`` are then classified channel by channel. ``threshold`` is the digit
    probability that counts as high quality.
    """

    def __init__(
        self,
        epochs: int = 10,
        seed: int = 0,
        threshold: float = 0.9,
        cache_dir: str | None = None,
    ) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
        self.classifier = DigitClassifier(
            embedding=128, epochs=positive_int("epochs", epochs), seed=seed
        )
        self.classifier.cache_dir = cache_dir
        self.threshold = float(threshold)

    def fit(self, digits: Tensor, labels: Tensor) -> StackedModeCounter:
        """Train the digit classifier on ``digits`` ``(N, 1, S, S)`` with their ``labels``."""
        if digits.ndim != 4 or digits.shape[1] != 1:
            raise ValueError(f"digits must have shape (N, 1, S, S), got {tuple(digits.shape)}")
        self.classifier.fit(digits, labels, kind="image")
        return self

    def accuracy(self, digits: Tensor, labels: Tensor) -> float:
        """The classifier's accuracy on held-out single ``digits``."""
        return self.classifier.accuracy(digits, labels)

    def classify(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The mode of each stacked image ``(N, 3, S, S)`` and the lowest of its three digit
        probabilities."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (N, 3, S, S), got {tuple(images.shape)}")
        channels = images.reshape(-1, 1, *images.shape[2:])
        probabilities = self.classifier.probabilities(channels).cpu()
        confidence, digits = probabilities.max(dim=1)
        return mode_of(digits.reshape(-1, 3)), confidence.reshape(-1, 3).min(dim=1).values

    def __call__(self, images: Tensor) -> dict[str, float]:
        """:func:`mode_statistics` of stacked ``images``."""
        modes, confidence = self.classify(images)
        return mode_statistics(modes, confidence, self.threshold)


def uniform_baseline(n_samples: int, n_modes: int = N_MODES) -> dict[str, float]:
    """What a perfect sampler, uniform over the modes, shows with ``n_samples`` draws: the
    expected ``modes_covered``, ``n_modes (1 - (1 - 1/n_modes)^n)``, and the first-order bias
    of the plug-in ``mode_kl``, ``(n_modes - 1) / (2 n)`` (good for ``n`` well above
    ``n_modes``: 0.019 for 1,000 modes and 26,000 samples)."""
    n, m = positive_int("n_samples", n_samples), positive_int("n_modes", n_modes)
    return {"modes_covered": m * (1 - (1 - 1 / m) ** n), "mode_kl": (m - 1) / (2 * n)}
