"""Scores of generated samples from the classes a classifier trained on the real data sees in
them, as the audio and image GAN papers report them:

- ``inception_score``: ``IS = exp(E_x KL(p(y|x) || p(y)))`` (Salimans et al. 2016, "Improved
  techniques for training GANs", section 4), ``p(y|x)`` the classifier's class probabilities
  for a sample and ``p(y) = E_x p(y|x)`` their mean over the set. It is 1 when every sample
  gets the same prediction and at most the number of classes ``k``, reached when each sample
  is classified with certainty and the classes are equally frequent. Donahue et al. (2019,
  "Adversarial audio synthesis") score SC09 this way with a digit classifier: real data
  9.18, WaveGAN 4.7, SpecGAN 6.0. Computed here on the whole set at once (Salimans et al.
  average it over 10 splits, which gives a slightly lower value for the same samples).
- ``class_kl``: ``KL(p || u) = sum_c p_c log(k p_c)``, the Kullback-Leibler divergence of the
  histogram ``p`` of predicted classes from the uniform distribution ``u`` (0 for a perfectly
  balanced set; log k for a single class), as :func:`gan_je.modes.mode_statistics`'s
  ``mode_kl``. The plug-in value is biased upwards by about ``(k - 1) / (2 n)`` for ``n``
  samples (:func:`gan_je.modes.uniform_baseline`: 0.0045 for 10 classes and 1,000 samples),
  so compare it with real samples of the same number.
- ``classes_covered``: the number of classes predicted for at least one sample.

:class:`ClassScorer` owns the classifier (any fitted :class:`gan_je.features.Classifier`:
waveforms, images, points) and gives all three for a set of samples.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gan_je.checks import positive_int
from gan_je.errors import ConfigError
from gan_je.features import Classifier


def inception_score(probabilities: Tensor) -> float:
    """``exp(E_x KL(p(y|x) || p(y)))`` of class ``probabilities`` ``(N, k)`` (rows
    ``p(y|x)``, each summing to 1), with ``p(y)`` their mean (see the module doc).
    Terms with ``p(y|x) = 0`` contribute 0 (``0 log 0 = 0``).

    Raises ``ValueError`` unless ``probabilities`` is a non-empty ``(N, k)`` tensor of finite,
    non-negative rows that sum to 1.
    """
    if (
        not isinstance(probabilities, Tensor)
        or probabilities.ndim != 2
        or not probabilities.numel()
    ):
        shape = tuple(probabilities.shape) if isinstance(probabilities, Tensor) else None
        raise ValueError(f"probabilities must be a non-empty (N, k) tensor, got shape {shape}")
    p = probabilities.double().cpu()
    if not torch.isfinite(p).all() or (p < 0).any():
        raise ValueError("probabilities must be finite and non-negative")
    if not torch.allclose(p.sum(dim=1), torch.ones(len(p), dtype=p.dtype), atol=1e-4):
        raise ValueError("each row of probabilities must sum to 1 (a softmax over the classes)")
    marginal = p.mean(dim=0, keepdim=True)
    terms = torch.where(p > 0, p * (p.clamp_min(1e-300).log() - marginal.log()), 0.0)
    return math.exp(float(terms.sum(dim=1).mean()))


def class_histogram(labels: Tensor, n_classes: int) -> Tensor:
    """The share of ``labels`` (ints in ``range(n_classes)``, shape ``(N,)``) in each class:
    a float64 tensor ``(n_classes,)`` summing to 1.

    Raises ``ValueError`` for an empty or non-1-D ``labels``, or labels out of range.
    """
    n_classes = positive_int("n_classes", n_classes)
    if not isinstance(labels, Tensor) or labels.ndim != 1 or len(labels) == 0:
        shape = tuple(labels.shape) if isinstance(labels, Tensor) else None
        raise ValueError(f"labels must be a non-empty (N,) tensor of class ids, got shape {shape}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(
            f"labels must lie in range({n_classes}), got {labels.min()}..{labels.max()}"
        )
    counts = torch.bincount(labels.long().cpu(), minlength=n_classes).double()
    return counts / len(labels)


def class_kl(labels: Tensor, n_classes: int) -> float:
    """``KL(p || u) = sum_c p_c log(n_classes p_c)`` in nats, ``p`` the
    :func:`class_histogram` of ``labels`` and ``u`` uniform: 0 for equally frequent classes,
    ``log n_classes`` for one class."""
    p = class_histogram(labels, n_classes)
    p = p[p > 0]
    return float((p * (p * n_classes).log()).sum())


def classes_covered(labels: Tensor, n_classes: int) -> int:
    """The number of classes of ``range(n_classes)`` that occur in ``labels``."""
    return int((class_histogram(labels, n_classes) > 0).sum())


class ClassScorer:
    """The class scores of sets of samples under one classifier: ``fit`` trains it on labelled
    real samples (or reads its cache), ``scores`` classifies samples and gives
    ``inception_score``, ``class_kl`` and ``classes_covered`` (see the module doc), and
    ``accuracy`` says how far the classifier can be trusted on held-out data.

    ``classifier`` is any :class:`gan_je.features.Classifier` (its network chosen by the kind
    of sample; :class:`gan_je.modes.DigitClassifier` for MNIST digits), fitted here or
    before.
    """

    def __init__(self, classifier: Classifier) -> None:
        if not isinstance(classifier, Classifier):
            raise ValueError(
                f"ClassScorer needs a gan_je.features.Classifier, got {type(classifier).__name__}"
            )
        self.classifier = classifier

    def fit(
        self, x: Tensor, labels: Tensor, kind: str, sample_rate: int | None = None
    ) -> ClassScorer:
        """Train the classifier on samples ``x`` of ``kind`` with their class ``labels``
        (:meth:`gan_je.features.Classifier.fit`; waveforms need their ``sample_rate``)."""
        self.classifier.fit(x, labels, kind=kind, sample_rate=sample_rate)
        return self

    @property
    def n_classes(self) -> int:
        if self.classifier.n_classes is None:
            raise RuntimeError("ClassScorer's classifier is not fitted: call fit(x, labels, kind)")
        return self.classifier.n_classes

    def accuracy(self, x: Tensor, labels: Tensor) -> float:
        """The classifier's accuracy on samples ``x`` with their true ``labels``."""
        return self.classifier.accuracy(x, labels)

    def scores(self, samples: Tensor) -> dict[str, float]:
        """``inception_score``, ``class_kl`` (nats) and ``classes_covered`` of ``samples``
        ``(N, *sample_shape)``."""
        n_classes = self.n_classes
        probabilities = self.classifier.probabilities(samples).cpu()
        predicted = probabilities.argmax(dim=1)
        return {
            "inception_score": inception_score(probabilities),
            "class_kl": class_kl(predicted, n_classes),
            "classes_covered": float(classes_covered(predicted, n_classes)),
        }


def fit_class_scorer(
    scorer: ClassScorer, datamodule: Any, n_real: int
) -> tuple[dict[str, float], float]:
    """Fit ``scorer``'s classifier on a gan_je data module's labelled training split (its
    kind and sample rate from ``data_spec``), and measure it on the held-out split: the
    :meth:`ClassScorer.scores` of ``n_real`` held-out samples (a subset seeded by the data's
    ``data_seed``; all when fewer: the ceiling generated samples are compared with) and the
    classifier's accuracy on every held-out sample.

    Raises :class:`~gan_je.errors.ConfigError` for data without labels of two classes or
    more.
    """
    train = getattr(datamodule, "train_set", None)
    labels = train.tensors[1] if train is not None and len(train.tensors) > 1 else None
    if labels is None or labels.dtype.is_floating_point or labels.unique().numel() < 2:
        raise ConfigError(
            f"class scores need labelled data (a y of two classes or more, as spoken digits "
            f"or MNIST digits have), but {type(datamodule).__name__} has none; drop the "
            f"class_scores callback"
        )
    spec = datamodule.data_spec
    scorer.fit(
        datamodule.as_samples(train.tensors[0]), labels, spec["kind"], spec.get("sample_rate")
    )
    x_val, y_val = datamodule.val_set.tensors[:2]
    accuracy = scorer.accuracy(datamodule.as_samples(x_val), y_val)
    return scorer.scores(datamodule.val_tensor(positive_int("n_real", n_real))), accuracy
