"""torchmetrics wrappers around :mod:`gan_je.estimators`.

:class:`JointEntropy` (k-NN estimators) and :class:`GaussianJointEntropy` (Gaussian plug-in)
collect real and generated samples with ``update(samples, real=True/False)``, as torchmetrics'
FID does, and ``compute()`` returns the same keys from both, so runs compare across estimators:
``entropy_real``, ``entropy_fake``, ``entropy_mixture``, ``joint_entropy`` (of sample and
source), ``jsd`` (Jensen-Shannon divergence), ``jsd_sliced``, ``jsd_sliced_max`` and
``frechet`` (for :class:`JointEntropy` with its default ``quality=True``, which also adds
``precision``, ``recall``, ``density`` and ``coverage``). :class:`JointEntropy` runs several
exact neighbour searches per ``compute()`` (within each source, over the pooled samples, once
per projection, and for the quality keys). :class:`MixtureCoverage` counts the modes of a known
Gaussian mixture that generated samples cover.

**The validation protocol.** :class:`gan_je.module.GANModule` drives its metric through
:class:`ValidationMetric` and nothing else; :class:`RealFakeSamples` implements it for every
metric here, so a new metric subclasses it and implements :meth:`RealFakeSamples.estimate`.
Per validation epoch the module calls ``reset_all()`` unless ``keeps_real`` (and the metric
already holds the whole validation set), ``update_training(batch)`` while
``wants_training_samples()``, ``update(batch, real=True)`` per validation batch (unless kept),
``update(fake, real=False)`` with ``n_fake`` generated samples, ``compute()`` and ``reset()``.
Before training it fits ``features`` on ``features_fit_samples`` training samples; for data
from a known Gaussian mixture it calls ``watch_modes(centers, std)`` once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from gan_je import seeding
from gan_je.errors import ConfigError
from gan_je.estimators import (
    classifier_jensen_shannon,
    compare_samples,
    coverage,
    data_copying,
    density_coverage,
    flatten_estimates,
    gaussian,
    precision_recall,
    sliced_jensen_shannon,
)
from gan_je.estimators._inputs import check_base, check_k
from gan_je.estimators.copying import CELLS, MIN_GENERATED, NoComparableCellError
from gan_je.estimators.knn import random_projections
from gan_je.estimators.neighbors import BACKENDS
from gan_je.estimators.resampling import halvings
from gan_je.extras import require

#: What a :class:`RealFakeSamples` holds: real (held-out) samples, generated ones, and
#: optionally training samples (for the data-copying statistic).
#: (Not "train": a state of that name would hide ``nn.Module.train()``.)
SOURCES = ("real", "fake", "train_data")
#: The states ``reset()`` keeps when ``reset_real_features`` is ``False``.
KEPT_STATES = ("real", "real_keys", "train_data", "train_data_keys")


@runtime_checkable
class ValidationMetric(Protocol):
    """What :class:`gan_je.module.GANModule` calls on its metric (see the module docstring
    for the order), implemented by :class:`RealFakeSamples` for every gan_je metric."""

    features: Callable[[Tensor], Tensor] | None  # fitted by the module when it has ``fit``
    features_fit_samples: int | None  # training samples an unsupervised ``features`` sees
    n_fake: int | None  # generated samples per validation (None: as many as real ones)
    min_samples: int  # fewest samples per source ``compute`` accepts
    max_samples: int | None  # most samples kept per source (and training samples wanted)
    keeps_real: bool  # real samples survive ``reset()``: fed once, reused every epoch

    def wants_training_samples(self) -> bool: ...
    def update(self, samples: Tensor, real: bool) -> None: ...
    def update_training(self, samples: Tensor) -> None: ...
    def watch_modes(self, centers: Tensor, std: float) -> None: ...
    def compute(self) -> dict[str, Tensor]: ...
    def reset(self) -> None: ...
    def reset_all(self) -> None: ...


def _check_samples(samples: Any, real: Any = True) -> None:
    """Raise a ``ValueError`` unless ``samples`` is a real-valued ``(B, ...)`` tensor and
    ``real`` a bool: the arguments of :meth:`RealFakeSamples.update`."""
    if not isinstance(real, bool):
        raise ValueError(
            f"real must be True (real samples) or False (generated samples), got {real!r}"
        )
    if not isinstance(samples, Tensor):
        raise ValueError(
            f"samples must be a torch.Tensor of shape (B, ...), got {type(samples).__name__}"
        )
    if samples.ndim < 2:
        raise ValueError(
            f"samples must have shape (B, ...), one row per sample, got shape "
            f"{tuple(samples.shape)}; pass B scalars as (B, 1), e.g. x[:, None]"
        )
    if samples.is_complex():
        raise ValueError(
            f"samples must be real-valued, got dtype {samples.dtype}; pass "
            f"torch.view_as_real(x) to treat real and imaginary parts as two features"
        )


class RealFakeSamples(Metric):
    """Holds the real and generated samples of an epoch; subclasses estimate from them.

    ``update(samples, real)`` adds a batch to one side; ``compute()`` returns a subclass's
    :meth:`estimate` from every sample held by every process (a dict of 0-dim tensors), plus
    the mode-coverage keys after :meth:`watch_modes`. It implements :class:`ValidationMetric`.

    Args:
        max_samples: keep at most this many samples per source. Beyond it a uniform random
            subset is kept (each sample gets a seeded random key; the smallest keys stay), so
            memory stays bounded (at most twice this between computes) over a long validation
            and the choice is reproducible: each source's keys come from its own generator, so
            the subset depends only on the seed, the process rank and that source's batches.
        features: optional callable (e.g. an ``nn.Module`` such as
            :class:`gan_je.features.PCA`) applied to every batch in ``update`` before it is
            flattened; identity by default. An ``nn.Module`` moves with the metric.
        min_samples: fewest samples per source ``compute`` accepts.
        seed: seeds the subsampling keys (and the subclasses' projections).
        reset_real_features: if ``False``, ``reset()`` forgets the generated samples but keeps
            the real ones (already through ``features``), so a constant real set is passed to
            ``update(..., real=True)`` once and reused every epoch, as with torchmetrics' FID.
            Training samples (:meth:`update_training`) are kept or forgotten with the real ones.
        n_fake: generated samples the module draws per validation, over all processes
            (``None``: as many as the validation set has).
        features_fit_samples: training samples an unsupervised ``features`` (PCA) is fitted
            on before training (``None``: all); learned features use every labelled sample.
        mode_coverage: ``{"n_sigma": ..., "min_count": ...}`` of :class:`MixtureCoverage`,
            used after :meth:`watch_modes` (data from a known mixture: ring, grid).

    Raises:
        ValueError: if ``max_samples`` is not ``None`` or a whole number of at least
            ``min_samples``, ``features`` is not callable, ``reset_real_features`` not a bool,
            ``n_fake`` not ``None`` or at least ``min_samples``, ``features_fit_samples`` not
            ``None`` or a positive whole number.

    States are flat lists gathered with ``cat``, so processes with different numbers of
    samples (or none) sync correctly under DDP.
    """

    full_state_update = False
    higher_is_better = None
    is_differentiable = False

    def __init__(
        self,
        max_samples: int | None = 10_000,
        features: Callable[[Tensor], Tensor] | None = None,
        min_samples: int = 2,
        seed: int = 0,
        reset_real_features: bool = True,
        n_fake: int | None = None,
        features_fit_samples: int | None = 5000,
        mode_coverage: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, value, least in (
            ("max_samples", max_samples, min_samples),
            ("n_fake", n_fake, min_samples),
            ("features_fit_samples", features_fit_samples, 1),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} must be None or a whole number, got {value!r}")
            if value is not None and value < least:
                raise ValueError(f"{name} must be None or at least {least}, got {value}")
        self.mode_coverage = dict(mode_coverage or {})
        unknown = self.mode_coverage.keys() - {"n_sigma", "min_count"}
        if unknown:
            raise ValueError(f"mode_coverage takes n_sigma and min_count, got {sorted(unknown)}")
        MixtureCoverage.check_settings(**self.mode_coverage)
        self.n_fake, self.features_fit_samples = n_fake, features_fit_samples
        self.modes: MixtureCoverage | None = None  # set by watch_modes
        if features is not None and not callable(features):
            raise ValueError(f"features must be callable, got {type(features).__name__}")
        if not isinstance(reset_real_features, bool):
            raise ValueError(
                f"reset_real_features must be True or False, got {reset_real_features!r}"
            )
        self.max_samples, self.features, self.min_samples = max_samples, features, min_samples
        self.seed, self.reset_real_features = seed, reset_real_features
        self._generators: dict[str, torch.Generator] = {}  # per source, seeded at first use
        for source in SOURCES:
            self.add_state(source, default=[], dist_reduce_fx="cat")
            self.add_state(f"{source}_keys", default=[], dist_reduce_fx="cat")
        self.add_state("n_features", default=torch.tensor(0), dist_reduce_fx="max")

    @property
    def keeps_real(self) -> bool:
        """Whether ``reset()`` keeps the real samples (``reset_real_features=False``)."""
        return not self.reset_real_features

    def wants_training_samples(self) -> bool:
        """Whether :meth:`update_training` is wanted now: never here; a metric that compares
        with the training set (:class:`JointEntropy`'s ``copying``) says yes until it holds
        some."""
        return False

    def watch_modes(self, centers: Tensor, std: float) -> None:
        """Also report the mode coverage of the generated samples (:class:`MixtureCoverage`
        with the ``mode_coverage`` settings), the data being a Gaussian mixture with these
        ``(M, d)`` ``centers`` and standard deviation ``std``."""
        self.modes = MixtureCoverage(centers, std, **self.mode_coverage).to(self.device)

    def update(self, samples: Tensor, real: bool) -> None:
        """Add a batch of real (``real=True``, held-out) or generated (``real=False``)
        samples.

        The batch ``(B, ...)`` goes through ``features`` (if any) and is flattened to
        ``(B, d)``; an empty batch (``B = 0``) is ignored. Generated samples are also counted
        by mode, as they are, after :meth:`watch_modes`.

        Raises:
            ValueError: if ``real`` is not a bool, ``samples`` is not a real-valued tensor
                with at least 2 dimensions, ``features`` does not return ``(B, ...)``, or
                ``d`` differs from earlier batches.
        """
        _check_samples(samples, real)
        if not real and self.modes is not None and samples.shape[0] > 0:
            self.modes.update(samples)
        self._add("real" if real else "fake", samples)

    def update_training(self, samples: Tensor) -> None:
        """Add a batch of real samples of the *training* set, which only a statistic that
        compares with it uses (data copying); the real samples of :meth:`update` are the
        held-out set. Raises as :meth:`update`."""
        _check_samples(samples)
        self._add("train_data", samples)
        # torchmetrics wraps update() alone; like it, drop a cached compute() and count
        self._computed = None
        self._update_count += 1

    def _add(self, source: str, samples: Tensor) -> None:
        """Featurise, flatten, key and keep a batch of ``source``'s samples."""
        if samples.shape[0] == 0:
            return
        with torch.no_grad():
            out = self.features(samples) if self.features is not None else samples
        if not isinstance(out, Tensor) or out.ndim < 2 or out.shape[0] != samples.shape[0]:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"features must map a batch of {samples.shape[0]} samples to a "
                f"({samples.shape[0]}, ...) tensor, got {got}"
            )
        flat = out.flatten(1)
        if int(self.n_features) not in (0, flat.shape[1]):
            raise ValueError(
                f"{source} batch has {flat.shape[1]} features per sample but earlier "
                f"batches had {int(self.n_features)}; call reset() between datasets"
            )
        self.n_features = torch.tensor(flat.shape[1], device=self.n_features.device)
        generator = self._key_generator(source)
        keys = torch.rand(flat.shape[0], generator=generator, dtype=torch.float64)
        stored = flat.to(self.dtype)
        # only a narrowing cast can overflow (then a CPU-GPU sync point, once per batch)
        wider = (
            flat.is_floating_point() and torch.finfo(flat.dtype).max > torch.finfo(self.dtype).max
        )
        if wider and not bool(torch.isfinite(stored).all()) and bool(torch.isfinite(flat).all()):
            raise ValueError(
                f"{source} samples hold values beyond {self.dtype}'s range (largest "
                f"{float(flat.abs().max()):.3g}): call set_dtype(torch.float64) on the metric"
            )
        getattr(self, source).append(stored.reshape(-1))
        getattr(self, f"{source}_keys").append(keys.to(self.dtype).to(flat.device))
        held = sum(part.shape[0] for part in getattr(self, f"{source}_keys"))
        if self.max_samples is not None and held > 2 * self.max_samples:
            self._shrink(source)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Not supported: a batch from one source has no value of its own, and torchmetrics'
        per-batch ``forward`` resets in between, which would duplicate kept real samples.

        Raises:
            RuntimeError: always; call ``update`` per batch and ``compute`` once instead.
        """
        raise RuntimeError(
            f"{type(self).__name__} has no per-batch value: call "
            f"update(samples, real=True/False) for each batch, then compute() once"
        )

    def _key_generator(self, source: str) -> torch.Generator:
        """The subsampling keys' generator of ``source``, seeded on first use with
        ``(seed, rank, source)`` (:mod:`gan_je.seeding`: no two seeds, ranks or sources
        share a stream)."""
        if source not in self._generators:
            distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
            rank = torch.distributed.get_rank() if distributed else 0
            stream = (self.seed, "subsample", rank, SOURCES.index(source))
            self._generators[source] = seeding.generator(*stream)
        return self._generators[source]

    def _shrink(self, source: str) -> None:
        """Keep the ``max_samples`` samples of ``source`` with the smallest keys."""
        samples, keys = self._samples(source)
        if keys.shape[0] > self.max_samples:
            kept = keys.topk(self.max_samples, largest=False).indices.sort().values
            samples, keys = samples[kept], keys[kept]
        setattr(self, source, [samples.reshape(-1)])
        setattr(self, f"{source}_keys", [keys])

    def _samples(self, source: str) -> tuple[Tensor, Tensor]:
        """``(samples (n, n_features), keys (n,))`` held for ``source`` (n may be 0)."""
        state, keys = getattr(self, source), getattr(self, f"{source}_keys")
        if isinstance(state, list) and not state:
            empty = torch.empty(0, dtype=self.dtype, device=self.n_features.device)
            state, keys = [empty], [empty]
        flat, keys = dim_zero_cat(state), dim_zero_cat(keys)
        return flat.reshape(-1, max(int(self.n_features), 1)), keys

    def real_and_fake(self) -> tuple[Tensor, Tensor]:
        """Every sample held (over every process) as ``(real (n, d), fake (m, d))``.

        Raises:
            ValueError: if either source holds fewer than ``min_samples`` samples.
        """
        if self.max_samples is not None:
            for source in SOURCES:
                self._shrink(source)
        held = [self._samples(source)[0] for source in ("real", "fake")]
        for source, samples in zip(("real", "fake"), held, strict=True):
            if samples.shape[0] < self.min_samples:
                raise ValueError(
                    f"{type(self).__name__} has {samples.shape[0]} {source} samples but needs "
                    f"at least {self.min_samples}; update() it with more samples before "
                    f"compute()"
                )
        return held[0], held[1]

    def reset(self) -> None:
        """Forget the generated samples, and the real ones unless ``reset_real_features`` is
        ``False``. A source that is forgotten restarts its subsampling keys from the seed; kept
        real samples keep theirs, so later real batches extend the same stream."""
        if self._is_synced:
            # Left synced (sync() without unsync()), the states hold every process's samples:
            # return to this process's own, or the kept real samples would be duplicated.
            self.unsync()
        kept = {name: list(getattr(self, name)) for name in KEPT_STATES}
        n_features = self.n_features
        super().reset()  # clears the lists in place; ours above are copies
        if self.modes is not None:
            self.modes.reset()
        self._generators.pop("fake", None)
        if self.reset_real_features:
            self._generators.pop("real", None)
            self._generators.pop("train_data", None)
        else:
            for name, parts in kept.items():
                setattr(self, name, parts)
            if any(part.numel() for name in KEPT_STATES for part in kept[name]):
                self.n_features = n_features

    def compute(self) -> dict[str, Tensor]:
        """:meth:`estimate` over every sample held (by every process), and the mode-coverage
        keys after :meth:`watch_modes`."""
        real, fake = self.real_and_fake()
        result = self.estimate(real, fake)
        if self.modes is not None:
            result |= self.modes.compute()
        return result

    def estimate(self, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """The metric's values from ``real (n, d)`` and ``fake (m, d)``: a subclass's job."""
        raise NotImplementedError(f"{type(self).__name__} must implement estimate()")

    def training_samples(self) -> Tensor:
        """The training samples held (over every process), ``(n, d)``; n may be 0."""
        if self.max_samples is not None:
            self._shrink("train_data")
        return self._samples("train_data")[0]

    def reset_all(self) -> None:
        """Forget every sample, the real ones too, whatever ``reset_real_features`` says
        (e.g. after Lightning's sanity check, or when the real set changes)."""
        keep, self.reset_real_features = self.reset_real_features, True
        try:
            self.reset()
        finally:
            self.reset_real_features = keep


class JointEntropy(RealFakeSamples):
    """Entropy and divergence of real vs generated samples, estimated with k-NN.

    With a source label L uniform on {real, fake} and a sample S from the matching
    distribution (so S ~ M = (P_real + P_fake) / 2), ``compute()`` returns a dict of 0-dim
    tensors over every sample held (by every process):

    - ``entropy_real`` H(P_real), ``entropy_fake`` H(P_fake), ``entropy_mixture`` H(M) —
      Kozachenko-Leonenko;
    - ``joint_entropy`` H(S, L) = log 2 + (H(P_real) + H(P_fake)) / 2 (weighted by the sample
      counts when they differ);
    - ``jsd`` I(S; L) = JSD(P_real || P_fake) — Ross's estimator;
    - ``jsd_sliced`` and ``jsd_sliced_max`` — mean and max of the same on random
      ``sliced_dim``-dimensional projections, a lower bound that still works where the full
      estimate fails in high dimension;
    - with ``quality=True``: ``precision``, ``recall`` (Kynkäänniemi et al. 2019, k = 3),
      ``density``, ``coverage`` (Naeem et al. 2020, k = 5) and ``frechet`` (Fréchet distance
      of Gaussian fits) on the same samples (:mod:`gan_je.estimators.quality`);
    - with ``jsd_classifier=True``: ``jsd_classifier``, the same I(S; L) from a cross-fitted
      classifier (:func:`gan_je.estimators.classifier_jensen_shannon`), a lower bound that
      holds up in high dimension where ``jsd`` fails;
    - with ``standard_errors`` (random halvings, default 1): ``<key>_se``, the standard error
      of every entropy, of ``jsd`` and of ``precision`` and ``recall`` (``return_se`` of the
      estimators, by half-sampling), and ``jsd_classifier_se`` (from its held-out terms);
      calibration in ``docs/estimators.md``. A standard error is the sampling error only:
      the estimators' bias, which grows with dimension and depends on the distribution, is
      not in it (``docs/estimators.md``, "What an error bar covers");
    - ``copying``, the data-copying statistic C_T (:func:`gan_je.estimators.data_copying`:
      below -3 the generated samples sit closer to the training set than held-out data
      does), ``copying_cells``, the number of cells whose own Z is below the threshold
      corrected for the number of cells (Šidák, family-wise level 0.05: copying in part,
      which C_T averages away), and ``copying_share``, the share of generated samples in
      those cells; when training samples were given with ``update_training(samples)`` and
      ``copying=True``.

    Args:
        k: neighbour order of every estimator.
        backend: neighbour search, one of ``gan_je.estimators.neighbors.BACKENDS``.
        base: logarithm base of the results (``math.e``: nats, ``2``: bits).
        sliced_dim, n_projections: the projections of ``jsd_sliced``.
        quality: also report the sample-quality keys above.
        standard_errors: random halvings per standard error (``True``: 2; ``0``/``False``:
            no ``<key>_se`` keys). The default 1 keeps their cost near 40 % of ``compute()``.
        copying: report ``copying``, ``copying_cells`` and ``copying_share`` when training
            samples are held.
        jsd_classifier: report ``jsd_classifier``.
        max_samples, features, seed, reset_real_features: see :class:`RealFakeSamples`.

    Raises:
        ValueError: if ``k`` is not a positive whole number or ``backend`` is unknown, and as
            :class:`RealFakeSamples`; ``compute()`` if a source has ``k`` samples or fewer.

    Example:
        >>> import torch
        >>> from gan_je.metrics import JointEntropy
        >>> generator = torch.Generator().manual_seed(0)
        >>> real = torch.randn(1000, 2, generator=generator)  # H = log(2 pi e) = 2.84 nats
        >>> metric = JointEntropy(quality=False, reset_real_features=False)
        >>> metric.update(real, real=True)
        >>> metric.update(0.5 * torch.randn(1000, 2, generator=generator), real=False)
        >>> values = metric.compute()  # true: H(fake) = 2.84 + 2 log 0.5 = 1.45, JSD = 0.17
        >>> [round(values[key].item(), 2) for key in ("entropy_real", "entropy_fake", "jsd")]
        [2.84, 1.32, 0.18]
        >>> metric.reset()  # forgets the generated samples, keeps the real ones
        >>> metric.update(torch.randn(1000, 2, generator=generator), real=False)
        >>> round(metric.compute()["jsd"].item(), 3)  # the same distribution: true JSD = 0
        -0.003
    """

    def __init__(
        self,
        k: int = 3,
        backend: str = "auto",
        max_samples: int | None = 10_000,
        base: float = math.e,
        features: Callable[[Tensor], Tensor] | None = None,
        sliced_dim: int = 2,
        n_projections: int = 16,
        quality: bool = True,
        seed: int = 0,
        reset_real_features: bool = True,
        standard_errors: bool | int = 1,
        copying: bool = True,
        jsd_classifier: bool = True,
        **kwargs: Any,
    ) -> None:
        k = check_k(k)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        try:
            halvings(standard_errors)
        except ValueError as err:
            raise ValueError(f"standard_errors: {err}".replace("return_se", "it")) from None
        for name, value in (("copying", copying), ("jsd_classifier", jsd_classifier)):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        super().__init__(
            max_samples,
            features,
            min_samples=k + 1,
            seed=seed,
            reset_real_features=reset_real_features,
            **kwargs,
        )
        self.k, self.backend, self.base = k, backend, check_base(base)
        self.sliced_dim, self.n_projections, self.quality = sliced_dim, n_projections, quality
        self.standard_errors, self.copying = standard_errors, copying
        self.jsd_classifier = jsd_classifier

    def wants_training_samples(self) -> bool:
        """With ``copying``, until training samples are held (they are kept with the real
        ones, see ``reset_real_features``)."""
        return self.copying and not any(part.numel() for part in self.train_data)

    def estimate(self, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """The k-NN estimates from ``real`` and ``fake`` (and the training samples held)."""
        se = halvings(self.standard_errors)
        estimates = compare_samples(
            real, fake, k=self.k, base=self.base, backend=self.backend, return_se=se
        )
        sliced = sliced_jensen_shannon(
            real,
            fake,
            dim=self.sliced_dim,
            n_projections=self.n_projections,
            k=self.k,
            seed=self.seed,
            base=self.base,
            backend=self.backend,
        )
        estimates["jsd_sliced"], estimates["jsd_sliced_max"] = sliced.mean, sliced.max
        if self.jsd_classifier:
            estimates["jsd_classifier"] = classifier_jensen_shannon(
                real, fake, seed=self.seed, base=self.base, return_se=se
            )
        if self.quality:
            estimates["precision"], estimates["recall"] = precision_recall(
                real, fake, backend=self.backend, return_se=se
            )
            estimates["density"], estimates["coverage"] = density_coverage(
                real, fake, backend=self.backend
            )
            estimates["frechet"] = gaussian.frechet_distance(real, fake)
        result = flatten_estimates(estimates)  # with se: "<key>_se" beside each "<key>"
        train = self.training_samples()
        if self.copying and train.shape[0] > 0:
            result |= self._copying(train, fake, real)
        return result

    def _copying(self, train: Tensor, fake: Tensor, real: Tensor) -> dict[str, Tensor]:
        """``copying`` (C_T), ``copying_cells`` and ``copying_share`` of ``fake`` against
        ``train`` with ``real`` held out (:func:`gan_je.estimators.data_copying`), in fewer
        cells when there are few generated samples (about ``2 * MIN_GENERATED`` a cell); all
        three NaN where C_T is undefined: fewer than ``MIN_GENERATED`` generated samples, or
        none of the cells holding that many also holds a held-out sample."""
        undefined = torch.tensor(math.nan, dtype=torch.float64, device=fake.device)
        keys = ("copying", "copying_cells", "copying_share")
        if fake.shape[0] < MIN_GENERATED:
            return dict.fromkeys(keys, undefined)
        cells = max(1, min(CELLS, fake.shape[0] // (2 * MIN_GENERATED), train.shape[0]))
        try:
            result = data_copying(train, fake, held_out=real, cells=cells, seed=self.seed)
        except NoComparableCellError:
            return dict.fromkeys(keys, undefined)
        n_flagged = torch.tensor(float(result.n_flagged), dtype=torch.float64, device=fake.device)
        return dict(zip(keys, (result.z, n_flagged, result.share), strict=True))


class GaussianJointEntropy(RealFakeSamples):
    """Entropy and divergence of real vs generated samples from Gaussian fits: fast, exact
    for Gaussians, a rough proxy otherwise.

    ``compute()`` returns a dict of 0-dim tensors over every sample held (by every process):
    ``entropy_real``, ``entropy_fake``, ``entropy_mixture`` (one Gaussian fitted to the pooled
    samples), ``joint_entropy`` and ``jsd`` as :func:`gan_je.estimators.gaussian.compare_samples`
    (entropies ½ log det(2πeΣ̂)); ``jsd_sliced`` and ``jsd_sliced_max`` on the same seeded
    projections as :class:`JointEntropy`; ``frechet``, the Fréchet distance between the fits.

    Args:
        base, sliced_dim, n_projections: as in :class:`JointEntropy`.
        max_samples, features, seed, reset_real_features: see :class:`RealFakeSamples`.

    Raises:
        ValueError: as :class:`RealFakeSamples`; ``compute()`` if a source has fewer than 2
            samples.

    Example:
        >>> import torch
        >>> from gan_je.metrics import GaussianJointEntropy
        >>> generator = torch.Generator().manual_seed(0)
        >>> metric = GaussianJointEntropy()
        >>> metric.update(torch.randn(1000, 2, generator=generator), real=True)
        >>> metric.update(0.5 * torch.randn(1000, 2, generator=generator), real=False)
        >>> values = metric.compute()  # true: 2.84 and 1.45 nats
        >>> [round(values[key].item(), 2) for key in ("entropy_real", "entropy_fake")]
        [2.88, 1.38]
    """

    def __init__(
        self,
        max_samples: int | None = 10_000,
        base: float = math.e,
        features: Callable[[Tensor], Tensor] | None = None,
        sliced_dim: int = 2,
        n_projections: int = 16,
        seed: int = 0,
        reset_real_features: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            max_samples,
            features,
            min_samples=2,
            seed=seed,
            reset_real_features=reset_real_features,
            **kwargs,
        )
        self.base, self.sliced_dim, self.n_projections = check_base(base), sliced_dim, n_projections

    def estimate(self, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """The plug-in estimates from ``real`` and ``fake``."""
        real, fake = real.double(), fake.double()
        result = gaussian.compare_samples(real, fake, base=self.base)
        frames = random_projections(
            real.shape[1], min(self.sliced_dim, real.shape[1]), self.n_projections, self.seed
        ).to(real.device)
        sliced = torch.stack(
            [gaussian.compare_samples(real @ f, fake @ f, base=self.base)["jsd"] for f in frames]
        )
        result["jsd_sliced"], result["jsd_sliced_max"] = sliced.mean(), sliced.max()
        result["frechet"] = gaussian.frechet_distance(real, fake)
        return result


class MixtureCoverage(Metric):
    """Mode coverage of generated samples from a known Gaussian mixture (the 2-D ring and
    grid): ``compute()`` returns ``modes_covered``, ``high_quality`` and ``mode_kl`` as
    defined in :mod:`gan_je.estimators.coverage`. Per-mode counts are summed over batches and
    processes, so the result is the same as one call on all samples.

    Args:
        centers: ``(M, d)`` mode centres.
        std: the modes' standard deviation.
        n_sigma: high quality within this many standard deviations (3 in the literature).
        min_count: high-quality samples a mode needs to count as covered.
    """

    full_state_update = False
    higher_is_better = None
    is_differentiable = False

    def __init__(
        self,
        centers: Tensor,
        std: float,
        n_sigma: float = 3.0,
        min_count: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        centers = torch.as_tensor(centers, dtype=torch.float64)
        coverage.nearest_modes(centers, centers, std, n_sigma)  # validates the geometry
        self.check_settings(n_sigma, min_count)
        self.register_buffer("centers", centers, persistent=False)  # the data spec has them
        self.std, self.n_sigma, self.min_count = float(std), float(n_sigma), min_count
        m = centers.shape[0]
        self.add_state("high_quality_counts", torch.zeros(m, dtype=torch.long), "sum")
        self.add_state("counts", torch.zeros(m, dtype=torch.long), "sum")

    @staticmethod
    def check_settings(n_sigma: float = 3.0, min_count: int = 1) -> None:
        """Raise a ``ValueError`` unless ``n_sigma`` and ``min_count`` are valid settings."""
        one = torch.zeros(1, 1, dtype=torch.float64)
        coverage.nearest_modes(one, one, 1.0, n_sigma)
        coverage.coverage_from_counts(torch.ones(1), torch.ones(1), min_count)

    def update(self, fake: Tensor) -> None:
        """Count a batch of generated samples ``(B, d)``."""
        if fake.shape[0] == 0:
            return
        index, high_quality = coverage.nearest_modes(fake, self.centers, self.std, self.n_sigma)
        m = self.centers.shape[0]
        self.counts += torch.bincount(index, minlength=m)
        self.high_quality_counts += torch.bincount(index[high_quality], minlength=m)

    def compute(self) -> dict[str, Tensor]:
        result = coverage.coverage_from_counts(
            self.high_quality_counts, self.counts, self.min_count
        )
        return {
            "modes_covered": result.modes_covered.double(),
            "high_quality": result.high_quality,
            "mode_kl": result.mode_kl,
        }


class InceptionJointEntropy(JointEntropy):
    """:class:`JointEntropy` plus torchmetrics' Fréchet and kernel Inception distances
    (Heusel et al. 2017; Bińkowski et al. 2018) on Inception-v3 features of the images.

    ``compute()`` returns the keys of :class:`JointEntropy` (estimated on ``features`` of the
    images) plus ``fid`` and ``kid`` (the mean of KID over its subsets). ``update(images,
    real)`` takes images ``(B, 1 or 3, H, W)`` in [-1, 1]; they are mapped to [0, 1] RGB for
    Inception. ``reset_real_features`` and ``reset_all()`` apply to the FID and KID too.

    Optional: Inception-v3 needs the ``torch-fidelity`` package (``pip install
    'gan_je[inception]'``) and the Inception weights, which torch-fidelity downloads on first
    use. Without either it fails at construction with a message saying so (use
    ``features=classifier`` for learned features offline).

    Args:
        kid_subset_size: samples per KID subset; at most the number of samples per source.
        feature_extractor: the network whose features FID and KID compare instead of
            Inception-v3 (torchmetrics' ``feature`` argument): an ``nn.Module`` mapping
            ``(B, 3, H, W)`` images in [0, 1] to ``(B, F)``, with an int ``num_features`` F;
            ``None``: Inception-v3.
        **kwargs: as :class:`JointEntropy`.

    Raises:
        MissingExtraError: (a ``ConfigError``) torch-fidelity is not installed.
        ConfigError: if the Inception weights are not available.
        ValueError: as :class:`JointEntropy`; ``update`` if the images are not
            ``(B, 1 or 3, H, W)``.

    Example:
        >>> import torch
        >>> from gan_je.metrics import InceptionJointEntropy
        >>> metric = InceptionJointEntropy(kid_subset_size=50)  # doctest: +SKIP
        >>> metric.update(torch.rand(100, 3, 32, 32) * 2 - 1, real=True)  # doctest: +SKIP
        >>> metric.update(torch.rand(100, 3, 32, 32) * 2 - 1, real=False)  # doctest: +SKIP
        >>> sorted(metric.compute())[:3]  # doctest: +SKIP
        ['coverage', 'density', 'entropy_fake']
    """

    def __init__(
        self,
        kid_subset_size: int = 1000,
        feature_extractor: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        if feature_extractor is None:
            require("torch_fidelity", "inception", "estimator=inception")
        elif not isinstance(feature_extractor, nn.Module):
            raise ValueError(
                f"feature_extractor must be None or an nn.Module, got "
                f"{type(feature_extractor).__name__}"
            )
        feature = 2048 if feature_extractor is None else feature_extractor
        keep = self.reset_real_features
        try:
            self.fid = FrechetInceptionDistance(
                feature=feature, normalize=True, reset_real_features=keep
            )
            self.kid = KernelInceptionDistance(
                feature=feature,
                normalize=True,
                subset_size=kid_subset_size,
                reset_real_features=keep,
            )
        except Exception as err:  # no network for the weights
            reason = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            raise ConfigError(
                "Inception features need the Inception weights torch-fidelity downloads on "
                f"first use; they are not available here ({reason}). Use "
                "features=classifier for learned features offline"
            ) from err

    def update(self, samples: Tensor, real: bool) -> None:
        """Add a batch of real or generated images ``(B, 1 or 3, H, W)`` in [-1, 1]."""
        _check_samples(samples, real)
        if samples.shape[0] == 0:
            return
        if samples.ndim != 4 or samples.shape[1] not in (1, 3):
            raise ValueError(
                "estimator=inception needs images of shape (B, 1 or 3, H, W), got shape "
                f"{tuple(samples.shape)}"
            )
        super().update(samples, real)
        rgb = ((samples.float() + 1) / 2).clamp(0, 1).expand(-1, 3, -1, -1)
        self.fid.update(rgb, real=real)
        self.kid.update(rgb, real=real)

    def compute(self) -> dict[str, Tensor]:
        result = super().compute()
        result["fid"] = self.fid.compute()
        result["kid"] = self.kid.compute()[0]
        return result

    def reset(self) -> None:
        super().reset()
        for distance in (self.fid, self.kid):  # as ours: reset_all() sets it True meanwhile
            kept, distance.reset_real_features = (
                distance.reset_real_features,
                self.reset_real_features,
            )
            distance.reset()
            distance.reset_real_features = kept
