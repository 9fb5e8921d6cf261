"""How long the PCA features take to fit on images, and how close the randomised route comes
to the exact one, printed as a Markdown table.

    python benchmarks/pca.py                 # 5,000 images of 64 x 64 x 3, dim = 8
    python benchmarks/pca.py --samples 1000  # fewer images

The images are synthetic but image-like: three correlated channels of Gaussian noise with a
1/f amplitude spectrum, as natural images have, so the covariance spectrum decays slowly (the
hard case for a randomised PCA). The exact reference is the route ``PCA.fit`` itself takes
on small data, forced here: the eigendecomposition of the n x n Gram matrix. The route of
earlier versions, the eigendecomposition of the 12,288 x 12,288 covariance, is not timed
(about 430 s on this 2-core machine, issue 28). Torch's default threads throughout.
"""

from __future__ import annotations

import time

import torch
from common import run_sections

from gan_je import features
from gan_je.features import PCA


def image_like(n: int, side: int = 64, seed: int = 0) -> torch.Tensor:
    """``(n, 3, side, side)`` float32 images: 1/f noise, channels mixed, values around 0.5."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 3, side, side, generator=generator)
    fy = torch.fft.fftfreq(side)[:, None]
    fx = torch.fft.rfftfreq(side)[None, :]
    amplitude = 1.0 / (torch.sqrt(fx**2 + fy**2) + 1.0 / side)
    fields = torch.fft.irfft2(torch.fft.rfft2(noise) * amplitude, s=(side, side))
    mixing = torch.tensor([[1.0, 0.8, 0.6], [0.0, 0.5, 0.4], [0.0, 0.0, 0.3]])
    images = torch.einsum("ck,nkhw->nchw", mixing, fields)
    return (0.5 + 0.1 * images / images.std()).float()


def _fit(x: torch.Tensor, dim: int, power_iterations: int, exact: bool) -> tuple[PCA, float, float]:
    """The fitted map, its wall-clock and its CPU seconds (all threads)."""
    limit = features.EXACT_MAX_SIDE
    features.EXACT_MAX_SIDE = min(x.shape[0], x[0].numel()) if exact else limit
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        pca = PCA(dim, power_iterations=power_iterations).fit(x)
        return pca, time.perf_counter() - wall, time.process_time() - cpu
    finally:
        features.EXACT_MAX_SIDE = limit


def fit_times(samples: str | None = None) -> str:
    n, dim = int(samples or 5000), 8
    x = image_like(n)
    # randomised fits first, on a fresh process's memory; the last fits other images of the
    # same kind: how far sampling alone moves the basis
    cases = [("the same", x, q) for q in (7, 4, 2)] + [("other", image_like(n, seed=1), 7)]
    fits = [(images, q, *_fit(data, dim, q, exact=False)) for images, data, q in cases]
    exact, wall, cpu = _fit(x, dim, 0, exact=True)
    rows = [
        "| route | images | power iterations | fit (s) | CPU (s) "
        "| sin of the largest principal angle to exact | variance captured / exact |",
        "|---|---|---|---|---|---|---|",
        f"| exact (Gram {n} x {n}) | the same | - | {wall:.1f} | {cpu:.1f} | 0 | 1 |",
    ]
    centred = x.flatten(1).double() - x.flatten(1).double().mean(dim=0)
    reference = exact.basis.double()

    def captured(basis: torch.Tensor) -> float:  # variance of the data in the subspace
        return float((centred @ basis).square().sum())

    for images, power_iterations, pca, wall, cpu in fits:
        basis = pca.basis.double()
        outside = basis - reference @ (reference.T @ basis)  # (I - P_exact) V
        sine = float(torch.linalg.matrix_norm(outside, ord=2))
        ratio = captured(basis) / captured(reference)
        rows.append(
            f"| randomised | {images} | {power_iterations} | {wall:.1f} | {cpu:.1f} "
            f"| {sine:.2e} | {ratio:.6f} |"
        )
    threads = torch.get_num_threads()
    rows.append(f"\n{n} images of 3 x 64 x 64, dim = {dim}, torch threads: {threads}")
    return "\n".join(rows)


if __name__ == "__main__":
    run_sections(
        __doc__.splitlines()[0],
        {"fit": fit_times},
        "# PCA features: fit time and agreement with the exact route",
        options={"samples": "number of images (default 5000)"},
    )
