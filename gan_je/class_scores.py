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
- ``smallest_class``, ``largest_class``: the shares of the samples in the rarest and the
  commonest predicted class (1/k for a balanced set; a binomial spread of about
  ``sqrt((1/k)(1 - 1/k) / n)`` around it for ``n`` samples of a balanced generator).
- ``frechet_distance``: the Fréchet distance ``|mu_r - mu_g|^2 + tr(S_r + S_g -
  2 (S_r^1/2 S_g S_r^1/2)^1/2)`` between Gaussians fitted to the classifier's features of
  the reference set (``r``) and of the samples (``g``): FID (Heusel et al. 2017, "GANs
  trained by a two time-scale update rule converge to a local Nash equilibrium") with this
  classifier in place of Inception v3, computed by
  :func:`gan_je.estimators.gaussian.frechet_distance`. The features are the classifier's
  penultimate layer (:meth:`gan_je.features.Classifier.embed`: the ``embedding``-wide
  activations before the class head, 64 numbers a sample by default, not Inception's 2,048,
  so the values are comparable neither with published FIDs nor between networks). The
  reference is every sample of the training split the classifier learned from; generated
  samples and as many held-out real ones (the floor: what a generator of new samples from
  the data's distribution would score) are each measured against it. A generator that
  copies training samples scores below the floor (500 training digits: 16.7 against the
  held-out 25.9 in ``benchmarks/recipes.py real``); :mod:`gan_je.estimators.copying` and
  ``val/copying`` tell the two apart.
  FID is biased upwards for small sets (the covariance of ``n`` samples is noisy, and
  the noise adds to the trace term, roughly in proportion to ``1/n``; Chong & Forsyth 2020,
  "Effectively unbiased FID"), so compare values only at equal ``n``, never with a floor of
  another size. It needs more samples than features (a full-rank covariance), and is
  left out of the scores of smaller sets.

:class:`ClassScorer` owns the classifier (any fitted :class:`gan_je.features.Classifier`:
waveforms, images, points; :class:`gan_je.modes.DigitClassifier` for digits) and gives all
four for a set of samples.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gan_je.checks import positive_int
from gan_je.errors import ConfigError
from gan_je.estimators.gaussian import frechet_distance
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
    real samples (or reads its cache) and keeps their features as the Fréchet distance's
    reference, ``scores`` classifies samples and gives ``inception_score``, ``class_kl``,
    ``classes_covered`` and ``frechet_distance`` (see the module doc), and ``accuracy`` says
    how far the classifier can be trusted on held-out data.

    ``classifier`` is any :class:`gan_je.features.Classifier` (its network chosen by the kind
    of sample; :class:`gan_je.modes.DigitClassifier` for MNIST digits), fitted here or
    before (then without a reference: no ``frechet_distance``).
    """

    def __init__(self, classifier: Classifier) -> None:
        if not isinstance(classifier, Classifier):
            raise ValueError(
                f"ClassScorer needs a gan_je.features.Classifier, got {type(classifier).__name__}"
            )
        self.classifier = classifier
        self.reference: Tensor | None = None  # the fitted samples' features (N, embedding)

    def fit(
        self, x: Tensor, labels: Tensor, kind: str, sample_rate: int | None = None
    ) -> ClassScorer:
        """Train the classifier on samples ``x`` of ``kind`` with their class ``labels``
        (:meth:`gan_je.features.Classifier.fit`; waveforms need their ``sample_rate``), and
        keep the features of ``x`` as the Fréchet distance's reference."""
        self.classifier.fit(x, labels, kind=kind, sample_rate=sample_rate)
        self.reference = self._features(x)
        return self

    @property
    def n_classes(self) -> int:
        if self.classifier.n_classes is None:
            raise RuntimeError("ClassScorer's classifier is not fitted: call fit(x, labels, kind)")
        return self.classifier.n_classes

    def accuracy(self, x: Tensor, labels: Tensor) -> float:
        """The classifier's accuracy on samples ``x`` with their true ``labels``."""
        return self.classifier.accuracy(x, labels)

    def _features(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.classifier.embed(x).double().cpu()

    def scores(self, samples: Tensor, n_distance: int | None = None) -> dict[str, float]:
        """``inception_score``, ``class_kl`` (nats), ``classes_covered``, the shares of the
        samples in the rarest and the commonest predicted class (``smallest_class``,
        ``largest_class``: 1/k each for a balanced set) of ``samples`` ``(N, *sample_shape)``
        and, once fitted here, ``frechet_distance`` from the reference of the first
        ``n_distance`` of them (all: ``None``). The distance falls with the number of samples
        (the noise of their covariance adds to it), so give as many as the set it is
        compared with; it needs more than the classifier has features, in the samples and in
        the reference (a full-rank covariance), and is left out otherwise."""
        n_classes = self.n_classes
        n = len(samples) if n_distance is None else positive_int("n_distance", n_distance)
        with torch.no_grad():  # one pass of the network: the features, then the head
            features = self.classifier.embed(samples)
            probabilities = self.classifier.probabilities_of(features).cpu()
        predicted = probabilities.argmax(dim=1)
        shares = class_histogram(predicted, n_classes)
        scores = {
            "inception_score": inception_score(probabilities),
            "class_kl": class_kl(predicted, n_classes),
            "classes_covered": float(classes_covered(predicted, n_classes)),
            "smallest_class": float(shares.min()),
            "largest_class": float(shares.max()),
        }
        if self.reference is not None and self.has_distance(min(n, len(samples))):
            scores["frechet_distance"] = self._distance(features[:n])
        return scores

    def has_distance(self, n: int) -> bool:
        """Whether the Fréchet distance of ``n`` samples exists: they and the fitted
        reference both outnumber the classifier's features."""
        if self.reference is None:
            raise RuntimeError("ClassScorer has no reference: fit it with fit(x, labels, kind)")
        n_reference, width = self.reference.shape
        return min(n, n_reference) > width

    def _distance(self, features: Tensor) -> float:
        """The Fréchet distance of samples' classifier ``features`` from the reference."""
        return float(frechet_distance(self.reference, features.double().cpu()))


def fit_class_scorer(
    scorer: ClassScorer, datamodule: Any, n_real: int
) -> tuple[dict[str, float], float]:
    """Fit ``scorer``'s classifier on a gan_je data module's labelled training split (its
    kind and sample rate from ``data_spec``; the split's features are the reference of the
    Fréchet distance), and measure it on the held-out split: the
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
