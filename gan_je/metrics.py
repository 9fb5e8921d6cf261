"""torchmetrics wrappers around :mod:`gan_je.estimators`.

Both metrics accumulate real and generated samples over a validation epoch and report the
same keys (see ``DESIGN.md``): the entropies of both, of their mixture, the joint entropy of
sample and source, and the Jensen-Shannon divergence. :class:`JointEntropy` uses the k-NN
estimators (one neighbour search), :class:`GaussianJointEntropy` the Gaussian plug-in
family, so runs compare across estimators.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from gan_je.estimators import (
    compare_samples,
    coverage,
    density_coverage,
    gaussian,
    precision_recall,
    sliced_jensen_shannon,
)
from gan_je.estimators._inputs import check_k
from gan_je.estimators.knn import random_projections
from gan_je.estimators.neighbors import BACKENDS

SOURCES = ("real", "fake")


class RealFakeSamples(Metric):
    """Holds the real and generated samples of an epoch; subclasses estimate from them.

    Args:
        max_samples: keep at most this many samples per source. Beyond it a uniform random
            subset is kept (each sample gets a seeded random key; the smallest keys stay), so
            memory stays bounded (at most twice this between computes) over a long validation
            and the choice is reproducible.
        features: optional callable (e.g. an ``nn.Module`` such as
            :class:`gan_je.features.PCA`) applied to every batch in ``update`` before it is
            flattened; identity by default. An ``nn.Module`` moves with the metric.
        min_samples: fewest samples per source ``compute`` accepts.
        seed: seeds the subsampling keys (and the subclasses' projections).

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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_samples is not None and (
            isinstance(max_samples, bool) or not isinstance(max_samples, int)
        ):
            raise ValueError(f"max_samples must be None or a whole number, got {max_samples!r}")
        if max_samples is not None and max_samples < min_samples:
            raise ValueError(f"max_samples must be None or at least {min_samples}")
        if features is not None and not callable(features):
            raise ValueError(f"features must be callable, got {type(features).__name__}")
        self.max_samples, self.features, self.min_samples = max_samples, features, min_samples
        self.seed = seed
        self._keys: torch.Generator | None = None  # seeded per process at the first update
        for source in SOURCES:
            self.add_state(source, default=[], dist_reduce_fx="cat")
            self.add_state(f"{source}_keys", default=[], dist_reduce_fx="cat")
        self.add_state("n_features", default=torch.tensor(0), dist_reduce_fx="max")

    def update(self, real: Tensor, fake: Tensor) -> None:
        """Add a batch of real and a batch of generated samples, each ``(B, ...)``."""
        for source, batch in zip(SOURCES, (real, fake), strict=True):
            if not isinstance(batch, Tensor) or batch.ndim == 0:
                raise ValueError(f"{source} must be a (B, ...) tensor, got {type(batch)}")
            with torch.no_grad():
                flat = (self.features(batch) if self.features is not None else batch).flatten(1)
            if flat.shape[0] == 0:
                continue
            if int(self.n_features) not in (0, flat.shape[1]):
                raise ValueError(
                    f"{source} batch has {flat.shape[1]} features per sample but earlier "
                    f"batches had {int(self.n_features)}; call reset() between datasets"
                )
            self.n_features = torch.tensor(flat.shape[1], device=self.n_features.device)
            keys = torch.rand(flat.shape[0], generator=self._key_generator(), dtype=torch.float64)
            getattr(self, source).append(flat.to(self.dtype).reshape(-1))
            getattr(self, f"{source}_keys").append(keys.to(self.dtype).to(flat.device))
            held = sum(part.shape[0] for part in getattr(self, f"{source}_keys"))
            if self.max_samples is not None and held > 2 * self.max_samples:
                self._shrink(source)

    def _key_generator(self) -> torch.Generator:
        """The subsampling keys' generator, seeded with ``seed + rank`` on first use."""
        if self._keys is None:
            distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
            rank = torch.distributed.get_rank() if distributed else 0
            self._keys = torch.Generator(device="cpu").manual_seed(self.seed + rank)
        return self._keys

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
        """Every sample held (over every process) as ``(real (n, d), fake (m, d))``."""
        if self.max_samples is not None:
            for source in SOURCES:
                self._shrink(source)
        held = [self._samples(source)[0] for source in SOURCES]
        for source, samples in zip(SOURCES, held, strict=True):
            if samples.shape[0] < self.min_samples:
                raise ValueError(
                    f"{type(self).__name__} has {samples.shape[0]} {source} samples but needs "
                    f"at least {self.min_samples}; update() it with more samples before "
                    f"compute()"
                )
        return held[0], held[1]

    def reset(self) -> None:
        """Forget every sample and restart the subsampling keys from the seed."""
        super().reset()
        self._keys = None


class JointEntropy(RealFakeSamples):
    """Entropy and divergence of real vs generated samples, estimated with k-NN.

    With a source label L uniform on {real, fake} and a sample S from the matching
    distribution (so S ~ M = (P_real + P_fake) / 2), ``compute()`` returns 0-dim tensors:

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
      of Gaussian fits) on the same samples (:mod:`gan_je.estimators.quality`).

    Args:
        k: neighbour order of every estimator.
        backend: neighbour search, one of ``gan_je.estimators.neighbors.BACKENDS``.
        base: logarithm base of the results (``math.e``: nats, ``2``: bits).
        sliced_dim, n_projections: the projections of ``jsd_sliced``.
        quality: also report the sample-quality keys above.
        max_samples, features, seed: see :class:`RealFakeSamples`.
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
        **kwargs: Any,
    ) -> None:
        k = check_k(k)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        super().__init__(max_samples, features, min_samples=k + 1, seed=seed, **kwargs)
        self.k, self.backend, self.base = k, backend, base
        self.sliced_dim, self.n_projections, self.quality = sliced_dim, n_projections, quality

    def compute(self) -> dict[str, Tensor]:
        """The estimates over every sample seen (by every process), as 0-dim tensors."""
        real, fake = self.real_and_fake()
        result = compare_samples(real, fake, k=self.k, base=self.base, backend=self.backend)
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
        result["jsd_sliced"], result["jsd_sliced_max"] = sliced.mean, sliced.max
        if self.quality:
            result["precision"], result["recall"] = precision_recall(
                real, fake, backend=self.backend
            )
            result["density"], result["coverage"] = density_coverage(
                real, fake, backend=self.backend
            )
            result["frechet"] = gaussian.frechet_distance(real, fake)
        return result


class GaussianJointEntropy(RealFakeSamples):
    """The same keys as :class:`JointEntropy` from Gaussian fits
    (:func:`gan_je.estimators.gaussian.compare_samples`), plus ``frechet`` — the Fréchet
    distance between the two fits. Fast, exact for Gaussians, a rough proxy otherwise; the
    sliced JSD uses the same seeded projections as :class:`JointEntropy`.

    Args:
        base, sliced_dim, n_projections: as in :class:`JointEntropy`.
        max_samples, features, seed: see :class:`RealFakeSamples`.
    """

    def __init__(
        self,
        max_samples: int | None = 10_000,
        base: float = math.e,
        features: Callable[[Tensor], Tensor] | None = None,
        sliced_dim: int = 2,
        n_projections: int = 16,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_samples, features, min_samples=2, seed=seed, **kwargs)
        self.base, self.sliced_dim, self.n_projections = base, sliced_dim, n_projections

    def compute(self) -> dict[str, Tensor]:
        """The plug-in estimates over every sample seen (by every process)."""
        real, fake = self.real_and_fake()
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
        coverage.coverage_from_counts(torch.ones(1), torch.ones(1), min_count)  # and min_count
        self.register_buffer("centers", centers)
        self.std, self.n_sigma, self.min_count = float(std), float(n_sigma), min_count
        m = centers.shape[0]
        self.add_state("high_quality_counts", torch.zeros(m, dtype=torch.long), "sum")
        self.add_state("counts", torch.zeros(m, dtype=torch.long), "sum")

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
    """:class:`JointEntropy` plus torchmetrics' ``fid`` and ``kid`` (Heusel et al. 2017;
    Bińkowski et al. 2018) on Inception-v3 features of the images themselves.

    Optional: it needs the ``torch-fidelity`` package and the Inception weights, which
    torch-fidelity downloads on first use. Without either it fails at construction with a
    message saying so (use ``features=classifier`` for learned features offline). Images in
    [-1, 1] with 1 or 3 channels are mapped to [0, 1] RGB for Inception.
    """

    def __init__(self, kid_subset_size: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        try:
            from torchmetrics.image.fid import FrechetInceptionDistance
            from torchmetrics.image.kid import KernelInceptionDistance

            self.fid = FrechetInceptionDistance(normalize=True, reset_real_features=True)
            self.kid = KernelInceptionDistance(normalize=True, subset_size=kid_subset_size)
        except Exception as err:  # missing package, or no network for the weights
            reason = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            raise RuntimeError(
                "Inception features need torch-fidelity (pip install torch-fidelity) and "
                "the Inception weights it downloads on first use; they are not available "
                f"here ({reason}). Use features=classifier for learned features offline"
            ) from err

    def update(self, real: Tensor, fake: Tensor) -> None:
        super().update(real, fake)
        for batch, is_real in ((real, True), (fake, False)):
            if batch.shape[0] == 0:
                continue
            if batch.ndim != 4 or batch.shape[1] not in (1, 3):
                raise ValueError("estimator=inception needs images of shape (B, 1 or 3, H, W)")
            rgb = ((batch.float() + 1) / 2).clamp(0, 1).expand(-1, 3, -1, -1)
            self.fid.update(rgb, real=is_real)
            self.kid.update(rgb, real=is_real)

    def compute(self) -> dict[str, Tensor]:
        result = super().compute()
        result["fid"] = self.fid.compute()
        result["kid"] = self.kid.compute()[0]
        return result

    def reset(self) -> None:
        super().reset()
        self.fid.reset()
        self.kid.reset()
