"""What the estimators see: maps from samples ``(B, ...)`` to feature vectors ``(B, dim)``.

k-NN divergence estimates fail in high dimension (see the accuracy table in the README:
the JSD of a pure scale change reads 0.41 of 0.47 nats in d = 8 but 0.20 of 0.62 in d = 16),
so images are compared in a small linear feature space fitted once on training data.
Every feature map is an ``nn.Module`` (it moves with the metric and is saved in checkpoints)
with ``fit(x) -> self`` on training samples and ``forward(x) -> (B, dim)``.

Two rules hold for every map:

- ``fit`` leaves the global random streams (torch's CPU generator, numpy's, Python's) as
  they were, and depends only on the data and the map's own ``seed``: fitting features at
  start-up must not change what a training run with ``seed=`` draws.
- A fresh, unfitted map loads a fitted map's ``state_dict`` (as in a checkpoint, loaded with
  ``torch.load(weights_only=True)``) and becomes that fitted map, without calling ``fit``.
  The map must be built with the settings it was fitted with; a state that does not fit
  them fails to load with a message saying so.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gan_je.atomic_files import replaced_atomically
from gan_je.audio import log_mel
from gan_je.checks import non_negative_int, positive_int
from gan_je.estimators._inputs import as_samples, check_ids
from gan_je.estimators.knn import random_projections
from gan_je.progress import progress

log = logging.getLogger(__name__)


class _LinearFeatures(nn.Module):
    """``f(x) = (flatten(x) - mean) @ basis``; a subclass's ``fit`` sets both buffers.

    Unfitted, ``mean`` and ``basis`` are empty, of shapes (0,) and (0, 0). Fitted on ``d``
    features per sample they have shapes (d,) and (d, ``_n_columns(d)``). Loading a state
    dict resizes them to the incoming shapes when those follow that rule, so a fresh map
    loads a fitted one's state; a state that breaks it (another ``dim``) fails to load.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.empty(0))
        self.register_buffer("basis", torch.empty(0, 0))

    @property
    def fitted(self) -> bool:
        return self.basis.numel() > 0

    def _set(self, mean: Tensor, basis: Tensor) -> None:
        # contiguous, as a loaded state is: eigh's column-major eigenvectors would make the
        # fitted map's matmul round differently from the same map loaded from a checkpoint
        device = self.mean.device
        self.mean = mean.to(device=device, dtype=torch.float32).contiguous()
        self.basis = basis.to(device=device, dtype=torch.float32).contiguous()

    def _n_columns(self, d: int) -> int:
        """Columns of the basis fitted on ``d`` features per sample (the feature dimension)."""
        raise NotImplementedError

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Resize ``mean`` and ``basis`` to the incoming shapes, after checking that they are
        the shapes this map's settings give, then load as usual."""
        mean, basis = state_dict.get(prefix + "mean"), state_dict.get(prefix + "basis")
        if isinstance(mean, Tensor) and isinstance(basis, Tensor):
            d = basis.shape[0] if basis.ndim == 2 else 0  # features per sample; 0: unfitted
            expected = (d, self._n_columns(d)) if d else (0, 0)
            if mean.shape != (d,) or basis.shape != expected:
                error_msgs.append(
                    f"{type(self).__name__}({self.extra_repr()}) cannot load the state at "
                    f"{prefix!r}: its basis has shape {tuple(basis.shape)} and its mean "
                    f"{tuple(mean.shape)}, but this map's basis would be {expected} with a mean "
                    f"of ({d},); build the feature map with the settings it was fitted with"
                )
                return
            self.mean = torch.empty(mean.shape, dtype=self.mean.dtype, device=self.mean.device)
            self.basis = torch.empty(basis.shape, dtype=self.basis.dtype, device=self.basis.device)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, x: Tensor) -> Tensor:
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train_samples)")
        flat = x.flatten(1).to(self.basis.dtype)
        if flat.shape[1] != self.basis.shape[0]:
            raise ValueError(
                f"{type(self).__name__} was fitted on {self.basis.shape[0]} features per sample "
                f"but got {flat.shape[1]}"
            )
        return (flat - self.mean) @ self.basis


class Identity(_LinearFeatures):
    """The flattened samples themselves (right for low-dimensional data such as 2-D mixtures)."""

    def fit(self, x: Tensor) -> Identity:
        d = as_samples(x, "x").shape[1]
        self._set(torch.zeros(d), torch.eye(d))
        return self

    def _n_columns(self, d: int) -> int:
        return d


#: The exact PCA is used when the data's smaller side m (samples or features) is at most this.
#: It forms an m x m matrix in n * d * m multiply-adds and decomposes it: about a second for
#: d = 1,024 features, 5 to 7 s on a loaded 2-core CPU for 1,000 samples of 12,288 features
#: (the randomised route: 2 s).
EXACT_MAX_SIDE = 1024
#: Seconds between two progress lines of a long randomised fit.
PROGRESS_EVERY_S = 10.0


class PCA(_LinearFeatures):
    """Projection onto the top ``dim`` principal components of the training samples
    (Pearson 1901): ``f(x) = (x - mean) @ V_dim`` with ``V_dim`` the leading eigenvectors of
    the sample covariance. Not whitened, so distances keep the data's own scale.
    Data with at most ``dim`` features is only centred: a rotation changes no k-NN estimate.

    ``fit`` takes the cheapest route for the centred data ``A`` of shape ``(n, d)``:

    - exact, when ``min(n, d) <= EXACT_MAX_SIDE``: the eigenvectors of the ``d x d`` covariance
      ``AᵀA / (n - 1)`` when ``d <= n``; else those ``U`` of the ``n x n`` Gram matrix ``AAᵀ``,
      mapped back by ``V = orth(AᵀU)`` (the same subspace);
    - randomised otherwise: subspace iteration (Halko, Martinsson & Tropp 2011, algorithms 4.4
      and 5.1). ``Q = orth(AΩ)`` for a seeded Gaussian ``Ω`` of ``dim + oversamples`` columns,
      then ``power_iterations`` times ``Q = orth(AAᵀQ)``, which damps the directions beyond
      the ``dim + oversamples`` largest by ``(s_j / s_dim)^(2 power_iterations + 1)`` (``s``:
      singular values); ``V_dim`` are the top right singular vectors of the small ``QᵀA``.
      Orthonormalising once per ``AAᵀ`` (not also between ``Aᵀ`` and ``A``, as algorithm 4.4
      does) loses only directions with ``s_j < 1e-8 s_1`` in float64, none of the top ones.
      That is ``2 (power_iterations + 1)`` products of ``A`` with a thin matrix; ``A`` itself
      is never formed (the products subtract the mean). 5,000 images of 64 x 64 x 3 take
      seconds where the ``12,288 x 12,288`` eigendecomposition took minutes
      (docs/estimators.md, "PCA features").

    Columns come in decreasing variance, each with its largest-magnitude entry positive, so
    every route gives the same features for the same subspace (no k-NN estimate depends on
    the signs). ``seed`` fixes ``Ω``. The fitted state is ``mean`` and ``basis`` alone, as in
    earlier versions, whose fitted maps load unchanged.
    """

    def __init__(
        self, dim: int = 8, seed: int = 0, oversamples: int = 10, power_iterations: int = 7
    ) -> None:
        super().__init__()
        self.dim = positive_int("features dim", dim)
        self.seed = non_negative_int("PCA seed", seed)
        self.oversamples = non_negative_int("PCA oversamples", oversamples)
        self.power_iterations = non_negative_int("PCA power_iterations", power_iterations)

    def fit(self, x: Tensor) -> PCA:
        x = as_samples(x, "x")
        n, d = x.shape
        mean = x.mean(dim=0)
        if d <= self.dim:
            self._set(mean, torch.eye(d))
            return self
        if n <= self.dim:
            raise ValueError(
                f"PCA(dim={self.dim}) needs more than {self.dim} training samples to find "
                f"{self.dim} components, got {n}; fit it on more samples "
                "(estimator.features_fit_samples) or lower features.dim"
            )
        route = "exact" if min(n, d) <= EXACT_MAX_SIDE else "randomised"
        log.info(
            "PCA: fitting %d components to %d samples x %d features (%s)", self.dim, n, d, route
        )
        start = time.perf_counter()
        if route == "randomised":
            basis = _randomised_directions(
                x, mean, self.dim, self.oversamples, self.power_iterations, self.seed
            )
        elif d <= n:
            centred = x - mean
            _, eigenvectors = torch.linalg.eigh(centred.T @ centred / (n - 1))
            basis = eigenvectors[:, -self.dim :].flip(1)  # largest variance first
        else:
            centred = x - mean
            _, eigenvectors = torch.linalg.eigh(centred @ centred.T)
            basis = torch.linalg.qr(centred.T @ eigenvectors[:, -self.dim :].flip(1))[0]
        self._set(mean, _positive_largest_entries(basis))
        log.info("PCA: fitted in %.1f s", time.perf_counter() - start)
        return self

    def _n_columns(self, d: int) -> int:
        return min(d, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _randomised_directions(
    x: Tensor, mean: Tensor, dim: int, oversamples: int, power_iterations: int, seed: int
) -> Tensor:
    """The top ``dim`` principal directions ``(d, dim)`` of ``x - mean`` by randomised subspace
    iteration (see :class:`PCA`), logging progress every ``PROGRESS_EVERY_S`` seconds."""
    n, d = x.shape
    width = min(dim + oversamples, n, d)
    generator = torch.Generator().manual_seed(seed)  # its own stream: the global one stays
    omega = torch.randn(d, width, generator=generator, dtype=x.dtype).to(x.device)

    def times(v: Tensor) -> Tensor:  # (x - mean) @ v
        return x @ v - mean @ v

    def transposed_times(u: Tensor) -> Tensor:  # (x - mean).T @ u, as (u.T @ x).T: faster
        return (u.T @ x).T - mean[:, None] * u.sum(dim=0)

    q = torch.linalg.qr(times(omega))[0]
    last_report = time.perf_counter()
    for step in range(power_iterations):
        q = torch.linalg.qr(times(transposed_times(q)))[0]
        if time.perf_counter() - last_report >= PROGRESS_EVERY_S:
            log.info("PCA: power iteration %d of %d", step + 1, power_iterations)
            last_report = time.perf_counter()
    _, _, right = torch.linalg.svd(transposed_times(q).T, full_matrices=False)
    return right[:dim].T


def _positive_largest_entries(basis: Tensor) -> Tensor:
    """``basis`` with each column's sign flipped so that its largest-magnitude entry is > 0."""
    largest = basis.gather(0, basis.abs().argmax(dim=0, keepdim=True))
    return basis * torch.where(largest < 0, -1.0, 1.0).to(basis.dtype)


class RandomProjection(_LinearFeatures):
    """A seeded random orthonormal projection to ``dim`` dimensions (Johnson-Lindenstrauss:
    distances are preserved on average up to the factor dim / d)."""

    def __init__(self, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        self.dim, self.seed = positive_int("features dim", dim), seed

    def fit(self, x: Tensor) -> RandomProjection:
        x = as_samples(x, "x")
        d = x.shape[1]
        basis = torch.eye(d) if d <= self.dim else random_projections(d, self.dim, 1, self.seed)[0]
        self._set(torch.zeros(d), basis)
        return self

    def _n_columns(self, d: int) -> int:
        return min(d, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, seed={self.seed}"


class TokenFeatures(nn.Module):
    """Token sequences ``(B, L, V)`` (one-hot, or softmaxes from a generator) seen through a
    seeded random token embedding, then PCA: ``f(x) = PCA(flatten(x @ E))`` with ``E`` a
    ``(V, embed_dim)`` matrix of N(0, 1 / embed_dim) entries drawn from ``seed``.

    Each token gets a random direction of length about 1, so the squared distance between
    two one-hot sequences is about twice the number of positions where they differ (their
    Hamming distance, by Johnson-Lindenstrauss), and a softmax maps to the expected
    embedding: the map is linear in ``x``, so it takes relaxed samples and passes gradients
    (the entropy regulariser). PCA to ``dim`` keeps the directions in which the training
    sequences vary most, where k-NN estimates stay reliable. Memory: ``E`` and a
    ``(L * embed_dim, dim)`` basis, never an ``(L * V)``-wide matrix (V = 5,000: 1.3 MB).

    ``fit(x)`` takes one-hot samples ``(n, L, V)``; :meth:`fit_ids` takes token ids
    ``(n, L)`` (what :func:`fit_feature_map` passes from a data module's ``train_ids``), so a
    large vocabulary is never expanded to one-hot vectors. Why this map, measured against the
    exact JSD of a tiny oracle: benchmarks/results/token_features.md.
    """

    def __init__(self, dim: int = 8, embed_dim: int = 64, seed: int = 0) -> None:
        super().__init__()
        self.dim = positive_int("features dim", dim)
        self.embed_dim = positive_int("features embed_dim", embed_dim)
        self.seed = non_negative_int("features seed", seed)
        self.register_buffer("embedding", torch.empty(0, self.embed_dim))
        self.pca = PCA(dim, seed)

    @property
    def fitted(self) -> bool:
        return self.embedding.shape[0] > 0 and self.pca.fitted

    def fit(self, x: Tensor) -> TokenFeatures:
        """Fit on one-hot training sequences ``x`` ``(n, L, V)``."""
        if not isinstance(x, Tensor) or x.ndim != 3 or not x.dtype.is_floating_point:
            raise ValueError(
                "TokenFeatures.fit takes one-hot sequences, a float tensor (n, L, V); "
                "use fit_ids for token ids"
            )
        self._draw_embedding(x.shape[2])
        return self._fit_embedded(torch.cat([self._embed(part) for part in x.split(1024)]))

    def fit_ids(self, ids: Tensor, vocab_size: int) -> TokenFeatures:
        """Fit on training sequences given as token ids ``(n, L)`` in ``range(vocab_size)``."""
        vocab_size = positive_int("vocab_size", vocab_size)
        ids = check_ids(ids, "ids", vocab_size=vocab_size).cpu()
        self._draw_embedding(vocab_size)
        embedding = self.embedding.cpu()
        return self._fit_embedded(embedding[ids].flatten(1))

    def _draw_embedding(self, vocab_size: int) -> None:
        generator = torch.Generator().manual_seed(self.seed)  # its own stream
        values = torch.randn(vocab_size, self.embed_dim, generator=generator)
        self.embedding = (values / self.embed_dim**0.5).to(self.embedding.device)

    def _fit_embedded(self, embedded: Tensor) -> TokenFeatures:
        self.pca.fit(embedded)
        self.pca.to(self.embedding.device)
        return self

    def _embed(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.embedding.shape[0]:
            raise ValueError(
                f"TokenFeatures was fitted on a vocabulary of {self.embedding.shape[0]} tokens "
                f"but got samples of shape {tuple(x.shape)}"
            )
        return (x.to(self.embedding.dtype) @ self.embedding).flatten(1)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Resize ``embedding`` to a fitted state's vocabulary (its width must be this map's
        ``embed_dim``), then load as usual."""
        embedding = state_dict.get(prefix + "embedding")
        if isinstance(embedding, Tensor):
            if embedding.ndim != 2 or embedding.shape[1] != self.embed_dim:
                error_msgs.append(
                    f"TokenFeatures({self.extra_repr()}) cannot load an embedding of shape "
                    f"{tuple(embedding.shape)} at {prefix!r}; build the feature map with the "
                    "settings it was fitted with"
                )
                return
            self.embedding = self.embedding.new_empty(embedding.shape)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, x: Tensor) -> Tensor:
        if not self.fitted:
            raise RuntimeError("TokenFeatures is not fitted: call fit or fit_ids")
        if x.ndim != 3:
            raise ValueError(f"TokenFeatures takes sequences (B, L, V), got {tuple(x.shape)}")
        return self.pca(self._embed(x))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, embed_dim={self.embed_dim}, seed={self.seed}"


class LogMel(nn.Module):
    """Waveforms ``(B, C, n)`` at ``sample_rate`` samples per second as log-mel images
    ``(B, C, n_mels, 1 + n // hop)`` (:func:`gan_je.audio.log_mel`): ``n_fft`` is the power of
    two nearest 32 ms of sound (256 at 8 kHz, 512 at 16 kHz), ``hop`` half of it (128 at 8 kHz,
    256 at 16 kHz), so a clip of ``n`` samples gives the same image at every rate where ``n``
    scales with it (8,192 at 8 kHz and 16,384 at 16 kHz: 65 frames). No weights: it is made
    again from ``sample_rate`` and ``n_mels``."""

    def __init__(self, sample_rate: int, n_mels: int = 40) -> None:
        super().__init__()
        self.sample_rate = positive_int("sample_rate", sample_rate)
        self.n_mels = positive_int("n_mels", n_mels)
        self.n_fft = max(16, 2 ** round(math.log2(0.032 * self.sample_rate)))
        self.hop = self.n_fft // 2

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3:
            raise ValueError(f"LogMel takes waveforms (B, channels, n), got {tuple(x.shape)}")
        return log_mel(x.float(), self.sample_rate, self.n_fft, self.hop, self.n_mels)

    def extra_repr(self) -> str:
        return f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, hop={self.hop}"


class LogMelPCA(nn.Module):
    """Waveforms ``(B, C, n)`` seen as their log-mel images (:class:`LogMel`), flattened and
    reduced by :class:`PCA` to ``dim``: ``f(x) = PCA(flatten(log_mel(x)))``. Differentiable
    (the entropy regulariser passes gradients through it). Where the JSD of this space and
    of the classifier's stand against degraded sets: conf/features/log_mel.yaml.

    ``fit(x, sample_rate)`` needs the clips' rate; the rate travels in the state dict as extra
    state, so a fresh map loads a fitted one's state without data.
    """

    needs_sample_rate = True

    def __init__(self, dim: int = 8, n_mels: int = 40, seed: int = 0) -> None:
        super().__init__()
        self.dim = positive_int("features dim", dim)
        self.n_mels = positive_int("features n_mels", n_mels)
        self.pca = PCA(dim, seed)
        self.log_mel: LogMel | None = None  # made by fit or by loading a fitted state

    @property
    def fitted(self) -> bool:
        return self.log_mel is not None and self.pca.fitted

    def fit(self, x: Tensor, sample_rate: int | None = None) -> LogMelPCA:
        """Fit the PCA on the log-mel images of training clips ``x`` ``(n, C, length)`` at
        ``sample_rate`` samples per second."""
        if sample_rate is None:
            raise ValueError(
                "LogMelPCA features need waveforms with a sample_rate (data of kind waveform)"
            )
        self.set_extra_state({"sample_rate": sample_rate})
        self.pca.fit(torch.cat([self.log_mel(part).flatten(1) for part in x.split(1024)]))
        return self

    def get_extra_state(self) -> dict[str, Any]:
        """The fitted clips' sample rate (a plain int); an empty dict when not fitted."""
        return {} if self.log_mel is None else {"sample_rate": self.log_mel.sample_rate}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        rate = state.get("sample_rate") if isinstance(state, dict) else None
        self.log_mel = None if rate is None else LogMel(int(rate), self.n_mels)

    def forward(self, x: Tensor) -> Tensor:
        if not self.fitted:
            raise RuntimeError("LogMelPCA is not fitted: call fit(train_clips, sample_rate)")
        return self.pca(self.log_mel(x).flatten(1))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_mels={self.n_mels}"


class Classifier(nn.Module):
    """Learned features: a small classifier trained once on the training split's labels,
    its penultimate layer reduced by PCA to ``dim`` dimensions (the offline stand-in for
    Inception features: FID needs weights from the internet, this needs only the data).

    The network is chosen by the data's kind of sample (:mod:`gan_je.data.kinds`): two
    stride-2 convolutions for ``image``; for ``waveform`` the clip's :class:`LogMel` image
    (which needs the ``sample_rate``), batch-normalised, through three stride-2 3x3
    convolutions (16, 32, 64 channels, batch norm) averaged over time in 4 frequency bands,
    so that a word is recognised wherever it lies in the clip (held-out voices:
    tests/test_audio_classifier.py); two fully connected layers on the flattened sample
    for every other kind; then an ``embedding``-wide layer (:meth:`embed` gives its
    activations, the features of the class scores' Fréchet distance) and a linear head. It
    trains for ``epochs`` with Adam. The fitted weights are cached in ``cache_dir`` under a
    key made of the data's shape, a checksum of samples and labels, and these settings, so
    every run on the same data reuses one extractor. ``fit(x, labels, kind, sample_rate)``
    needs the labels and the kind, and for waveforms the sample rate.

    The network's initial weights come from ``seed`` in a forked random stream, so fitting
    leaves the global one alone. Its kind, input shape and number of classes (and the sample
    rate of waveforms) travel in the state dict as extra state (plain values), so a fresh
    ``Classifier`` with the same settings rebuilds the network and loads the fitted weights
    from a checkpoint without the data.
    """

    needs_labels = True

    def __init__(
        self,
        dim: int = 8,
        embedding: int = 64,
        epochs: int = 5,
        seed: int = 0,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.dim, self.embedding, self.epochs, self.seed = (
            positive_int("features dim", dim),
            embedding,
            epochs,
            seed,
        )
        self.cache_dir = cache_dir
        self.net: nn.Sequential | None = None  # built by fit or by loading a fitted state
        self.kind: str | None = None  # the fitted network's kind of sample
        self.sample_shape: tuple[int, ...] | None = None  # the fitted network's input
        self.n_classes: int | None = None
        self.sample_rate: int | None = None  # the fitted waveforms' samples per second
        self.pca = PCA(dim)

    def _build(
        self,
        kind: str,
        sample_shape: tuple[int, ...],
        n_classes: int,
        sample_rate: int | None = None,
    ) -> None:
        """Set ``net`` to a new, untrained network for these samples and classes."""
        if kind == "waveform" and sample_rate is None:
            raise ValueError(
                "Classifier features of waveforms need their sample_rate (the data spec's)"
            )
        self.kind, self.sample_shape, self.n_classes = kind, sample_shape, n_classes
        self.sample_rate = None if sample_rate is None else positive_int("sample_rate", sample_rate)
        with torch.random.fork_rng(devices=[]):  # layer init draws from the global stream
            torch.manual_seed(self.seed)
            self.net = self._network(sample_shape, n_classes)

    def _network(self, sample_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
        if self.kind == "image":
            body: list[nn.Module] = [
                nn.Conv2d(sample_shape[0], 32, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(32, 64, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.AdaptiveAvgPool2d(2),
                nn.Flatten(),
            ]
            width = 64 * 4
        elif self.kind == "waveform":
            body = [LogMel(self.sample_rate), nn.BatchNorm2d(sample_shape[0])]
            channels = sample_shape[0]
            for width in (16, 32, 64):
                body += [
                    nn.Conv2d(channels, width, 3, stride=2, padding=1),
                    nn.BatchNorm2d(width),
                    nn.ReLU(),
                ]
                channels = width
            body += [nn.AdaptiveAvgPool2d((4, 1)), nn.Flatten()]  # 4 bands, over all time
            width = channels * 4
        else:
            width = int(torch.tensor(sample_shape).prod())
            body = [nn.Flatten(), nn.Linear(width, 128), nn.LeakyReLU(0.2)]
            width = 128
        body += [nn.Linear(width, self.embedding), nn.LeakyReLU(0.2)]
        return nn.Sequential(*body, nn.Linear(self.embedding, n_classes))

    def _cache_path(self, x: Tensor, labels: Tensor) -> Path | None:
        if self.cache_dir is None:
            return None
        checksum = f"{float(x.double().sum()):.6e}-{int(labels.sum())}"
        key = f"{type(self).__name__}-{tuple(x.shape)}-{checksum}-{self.embedding}-"
        key += f"{self.epochs}-{self.seed}" + (f"-{self.sample_rate}" if self.sample_rate else "")
        key += f"-{self.net!r}"  # weights cached by another network cannot load into this
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        return Path(self.cache_dir) / f"classifier-{digest}.pt"

    def fit(
        self, x: Tensor, labels: Tensor, kind: str, sample_rate: int | None = None
    ) -> Classifier:
        """Train on samples ``x`` of ``kind`` (``spec["kind"]`` of their data; waveforms with
        their ``sample_rate``, ``spec["sample_rate"]``) with their class ``labels`` (or read
        the cache), then fit the PCA of the embeddings."""
        if labels is None or labels.shape[0] != x.shape[0]:
            raise ValueError("Classifier features need one label per training sample")
        if not isinstance(kind, str):
            raise ValueError(f"Classifier features need the kind of sample (a str), got {kind!r}")
        x, labels = x.float().cpu(), labels.long().cpu()
        self._build(kind, tuple(x.shape[1:]), int(labels.max()) + 1, sample_rate)
        cache = self._cache_path(x, labels)
        if cache is not None and cache.is_file():
            self.net.load_state_dict(torch.load(cache, weights_only=True))
        else:
            self._train(x, labels)
            if cache is not None:  # whole or absent: sweep jobs fit and read it at once
                cache.parent.mkdir(parents=True, exist_ok=True)
                with replaced_atomically(cache) as file:
                    torch.save(self.net.state_dict(), file)
        self.net.requires_grad_(False).eval()
        self.pca.fit(self.embed(x))
        return self

    def get_extra_state(self) -> dict[str, Any]:
        """What rebuilds ``net`` before its weights load: the kind, sample shape and number of
        classes it was fitted on (and the sample rate of waveforms), as plain values
        (checkpoints load with ``weights_only=True``); an empty dict when not fitted."""
        if self.net is None:
            return {}
        state = {
            "kind": self.kind,
            "sample_shape": list(self.sample_shape),
            "n_classes": self.n_classes,
        }
        return state | ({"sample_rate": self.sample_rate} if self.sample_rate else {})

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Rebuild ``net`` (or drop it, for an unfitted state) from :meth:`get_extra_state`'s
        dict. ``load_state_dict`` calls this before it loads the children, so the rebuilt
        network then receives the fitted weights. A state written before kinds existed
        has none: its network was the convolutional one exactly for 3-D samples, so that
        is ``image`` and any other shape ``points``."""
        if not state:
            if self.net is not None:
                del self.net  # unregister the child module
            self.net = self.kind = self.sample_shape = self.n_classes = self.sample_rate = None
            return
        try:
            sample_shape = tuple(int(s) for s in state["sample_shape"])
            n_classes = int(state["n_classes"])
            kind = str(state.get("kind", "image" if len(sample_shape) == 3 else "points"))
            rate = state.get("sample_rate")
            sample_rate = None if rate is None else int(rate)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"Classifier cannot rebuild its network from the extra state {state!r}: "
                "expected {'kind': str, 'sample_shape': [ints], 'n_classes': int} (and "
                "'sample_rate': int for waveforms), as written "
                "by a fitted Classifier's state_dict"
            ) from err
        device = self.pca.mean.device
        self._build(kind, sample_shape, n_classes, sample_rate)
        self.net.to(device).requires_grad_(False).eval()

    def _train(self, x: Tensor, labels: Tensor) -> None:
        optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(self.seed)
        for _ in progress(range(self.epochs), "training a classifier (epochs)"):
            for batch in torch.randperm(x.shape[0], generator=generator).split(128):
                loss = nn.functional.cross_entropy(self.net(x[batch]), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    def embed(self, x: Tensor) -> Tensor:
        """The fitted network's penultimate-layer features of samples ``x``
        ``(N, *sample_shape)``: the ``embedding``-wide layer's activations (after its
        nonlinearity, before the class head), ``(N, embedding)`` on the network's device.
        Gradients pass to ``x``; the weights are frozen. Raises ``RuntimeError`` before
        ``fit`` and ``ValueError`` for samples of another shape than those fitted on."""
        if self.net is None:
            raise RuntimeError("Classifier is not fitted: call fit(train_samples, labels)")
        if not isinstance(x, Tensor) or tuple(x.shape[1:]) != self.sample_shape:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"the Classifier was fitted on samples of shape {self.sample_shape}: pass "
                f"(N, {', '.join(map(str, self.sample_shape))}), got {shape}"
            )
        x = x.to(next(self.net.parameters()).device).float()
        return torch.cat([self.net[:-1](part) for part in x.split(1024)])

    def forward(self, x: Tensor) -> Tensor:
        return self.pca(self.embed(x))

    def probabilities(self, x: Tensor) -> Tensor:
        """The fitted classifier's class probabilities ``(N, n_classes)`` for ``x``."""
        with torch.no_grad():
            return self.probabilities_of(self.embed(x))

    def probabilities_of(self, features: Tensor) -> Tensor:
        """The class probabilities ``(N, n_classes)`` of samples whose :meth:`embed`
        features are ``features`` ``(N, embedding)``: the class head's softmax (so a caller
        that needs both runs the network once)."""
        if self.net is None:
            raise RuntimeError("Classifier is not fitted: call fit(train_samples, labels)")
        return self.net[-1](features).softmax(dim=1)

    def accuracy(self, x: Tensor, labels: Tensor) -> float:
        """Fraction of ``x`` the fitted classifier labels correctly."""
        predicted = self.probabilities(x).argmax(dim=1).cpu()
        return float((predicted == labels.cpu()).double().mean())


def fit_feature_map(features: Any, datamodule: Any, max_samples: int | None, kind: str) -> None:
    """Fit ``features`` on a gan_je datamodule's training split: a learned map
    (``needs_labels``, :class:`Classifier`) on every labelled sample of the data's ``kind``,
    an unsupervised one (PCA) on a seeded subset of ``max_samples`` (``None``: all), with
    the data's sample rate where it ``needs_sample_rate`` (:class:`LogMelPCA`); a map
    with ``fit_ids`` (:class:`TokenFeatures`) on the ids of that subset where the data
    module keeps ``train_ids``, never expanded to one-hot vectors."""
    if getattr(features, "needs_labels", False):
        rate = datamodule.data_spec.get("sample_rate")
        features.fit(*datamodule.train_set.tensors, kind=kind, sample_rate=rate)
    elif getattr(features, "needs_sample_rate", False):  # LogMelPCA
        rate = datamodule.data_spec.get("sample_rate")
        features.fit(datamodule.train_tensor(max_samples), sample_rate=rate)
    elif hasattr(features, "fit_ids") and getattr(datamodule, "train_ids", None) is not None:
        ids = datamodule.stored("train", max_samples)  # train_tensor's subset, as ids
        features.fit_ids(ids, datamodule.data_spec["vocab_size"])
    else:
        features.fit(datamodule.train_tensor(max_samples))
