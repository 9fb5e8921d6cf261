"""What the estimators see: maps from samples ``(B, ...)`` to feature vectors ``(B, dim)``.

k-NN divergence estimates fail in high dimension (see the accuracy table in the README:
the JSD of a pure scale change reads 0.41 of 0.47 nats in d = 8 but 0.20 of 0.62 in d = 16),
so images are compared in a small linear feature space fitted once on training data.
Every feature map is an ``nn.Module`` (it moves with the metric and is saved in checkpoints)
with ``fit(x) -> self`` on training samples and ``forward(x) -> (B, dim)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_je.estimators._inputs import as_samples
from gan_je.estimators.knn import random_projections


def _check_dim(dim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"features dim must be a whole number >= 1, got {dim!r}")
    return dim


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
        self.dim = _check_dim(dim)

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
        self.dim, self.seed = _check_dim(dim), seed

    def fit(self, x: Tensor) -> RandomProjection:
        x = as_samples(x, "x")
        d = x.shape[1]
        basis = torch.eye(d) if d <= self.dim else random_projections(d, self.dim, 1, self.seed)[0]
        self._set(torch.zeros(d), basis)
        return self

    def extra_repr(self) -> str:
        return f"dim={self.dim}, seed={self.seed}"
