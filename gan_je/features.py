"""What the estimators see: maps from samples ``(B, ...)`` to feature vectors ``(B, dim)``.

k-NN divergence estimates fail in high dimension (see the accuracy table in the README:
the JSD of a pure scale change reads 0.41 of 0.47 nats in d = 8 but 0.20 of 0.62 in d = 16),
so images are compared in a small linear feature space fitted once on training data.
Every feature map is an ``nn.Module`` (it moves with the metric and is saved in checkpoints)
with ``fit(x) -> self`` on training samples and ``forward(x) -> (B, dim)``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor, nn

from gan_je.checks import positive_int
from gan_je.estimators._inputs import as_samples
from gan_je.estimators.knn import random_projections


class _LinearFeatures(nn.Module):
    """``f(x) = (flatten(x) - mean) @ basis``; a subclass's ``fit`` sets both buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.empty(0))
        self.register_buffer("basis", torch.empty(0, 0))

    @property
    def fitted(self) -> bool:
        return self.basis.numel() > 0

    def _set(self, mean: Tensor, basis: Tensor) -> None:
        device = self.mean.device
        self.mean = mean.to(device=device, dtype=torch.float32)
        self.basis = basis.to(device=device, dtype=torch.float32)

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


class PCA(_LinearFeatures):
    """Projection onto the top ``dim`` principal components of the training samples
    (Pearson 1901): ``f(x) = (x - mean) @ V_dim`` with ``V_dim`` the leading eigenvectors of
    the sample covariance. Not whitened, so distances keep the data's own scale.
    Data with at most ``dim`` features is only centred: a rotation changes no k-NN estimate.
    """

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.dim = positive_int("features dim", dim)

    def fit(self, x: Tensor) -> PCA:
        x = as_samples(x, "x").double()
        n, d = x.shape
        mean = x.mean(dim=0)
        if d <= self.dim:
            self._set(mean, torch.eye(d))
            return self
        if n < 2:
            raise ValueError("PCA needs at least 2 training samples to fit")
        centred = x - mean
        _, eigenvectors = torch.linalg.eigh(centred.T @ centred / (n - 1))
        self._set(mean, eigenvectors[:, -self.dim :].flip(1))  # largest variance first
        return self

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


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

    def extra_repr(self) -> str:
        return f"dim={self.dim}, seed={self.seed}"


class Classifier(nn.Module):
    """Learned features: a small classifier trained once on the training split's labels,
    its penultimate layer reduced by PCA to ``dim`` dimensions (the offline stand-in for
    Inception features: FID needs weights from the internet, this needs only the data).

    The network (two stride-2 convolutions for images, two layers for flat data, then an
    ``embedding``-wide layer and a linear head) trains for ``epochs`` with Adam. The fitted
    weights are cached in ``cache_dir`` under a key made of the data's shape, a checksum
    of samples and labels, and these settings, so every run on the same data reuses one
    extractor. ``fit(x, labels)`` needs the labels.
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
        self.net: nn.Module | None = None
        self.pca = PCA(dim)

    def _network(self, sample_shape: tuple[int, ...], n_classes: int) -> nn.Sequential:
        torch.manual_seed(self.seed)
        if len(sample_shape) == 3:
            body: list[nn.Module] = [
                nn.Conv2d(sample_shape[0], 32, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(32, 64, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.AdaptiveAvgPool2d(2),
                nn.Flatten(),
            ]
            width = 64 * 4
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
        key = f"{tuple(x.shape)}-{checksum}-{self.embedding}-{self.epochs}-{self.seed}"
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        return Path(self.cache_dir) / f"classifier-{digest}.pt"

    def fit(self, x: Tensor, labels: Tensor) -> Classifier:
        if labels is None or labels.shape[0] != x.shape[0]:
            raise ValueError("Classifier features need one label per training sample")
        x, labels = x.float().cpu(), labels.long().cpu()
        self.net = self._network(tuple(x.shape[1:]), int(labels.max()) + 1)
        cache = self._cache_path(x, labels)
        if cache is not None and cache.is_file():
            self.net.load_state_dict(torch.load(cache, weights_only=True))
        else:
            self._train(x, labels)
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                torch.save(self.net.state_dict(), cache)
        self.net.requires_grad_(False).eval()
        self.pca.fit(self._embed(x))
        return self

    def _train(self, x: Tensor, labels: Tensor) -> None:
        optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epochs):
            for batch in torch.randperm(x.shape[0], generator=generator).split(128):
                loss = nn.functional.cross_entropy(self.net(x[batch]), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    def _embed(self, x: Tensor) -> Tensor:
        return torch.cat([self.net[:-1](part) for part in x.split(1024)])

    def forward(self, x: Tensor) -> Tensor:
        if self.net is None:
            raise RuntimeError("Classifier is not fitted: call fit(train_samples, labels)")
        return self.pca(self._embed(x.to(next(self.net.parameters()).device).float()))

    def accuracy(self, x: Tensor, labels: Tensor) -> float:
        """Fraction of ``x`` the fitted classifier labels correctly."""
        with torch.no_grad():
            return float((self.net(x.float()).argmax(dim=1) == labels).double().mean())
