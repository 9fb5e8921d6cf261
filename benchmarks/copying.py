"""Does the data-copying verdict separate copies from fresh samples on real data?

Two tables (``gan_je.estimators.data_copying``: C_T, and the cells flagged at family-wise
level 0.05 with the share of generated samples in them).

1. Whole generators: scikit-learn's 1,797 8x8 digits, shuffled: 900 training, 450 held-out,
   447 unseen digits. Each "generator" produces 447 samples; C_T, flagged cells and share
   for three k-means seeds, with the number of cells kept out of 10.
2. Partial copying, over ``--seeds`` seeds (default 100; each seed draws the split, the
   samples, the noise and the k-means start): generators that copy in part, on the digits
   (as above, a new shuffle per seed; in 10 cells and in 5) and on a 2-D mixture of three
   Gaussians (1,000 training, 1,000 held-out, 1,000 generated; 10 cells). "20 % noisy
   copies": a fifth of the fresh samples replaced by training samples plus Gaussian noise
   (0.5 grey level of 16 per pixel for the digits, norm about 4 against nearest-neighbour
   distances of 13-22; 0.01 for the mixture); "copies in one region": the fresh samples
   nearest one random training sample (a tenth of them, about one cell) replaced by noisy
   copies of the training samples nearest it. Each row: C_T (mean and range), how often
   C_T < -3 (the paper's verdict), how often at least one cell is flagged (the new verdict;
   for fresh samples: the false-alarm rate), and the mean number of flagged cells and share
   of generated samples in them.

    python benchmarks/copying.py               # about 5 minutes on 2 busy cores
    python benchmarks/copying.py --seeds 40
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.datasets import load_digits

from gan_je.estimators import data_copying
from gan_je.progress import progress
from gan_je.tables import markdown_table

#: Per-coordinate noise of the noisy copies: small against nearest-neighbour distances.
NOISE = {"digits": 0.5, "mixture": 0.01}
MEANS = np.array([[3.0, 3.0], [-3.0, 3.0], [0.0, -3.0]])


def digits(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train, held_out, fresh, fresh_labels)``: the digits shuffled with ``seed``."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order[:900]], x[order[900:1350]], x[order[1350:]], y[order[1350:]]


def mixture(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from an equal mixture of three unit 2-D Gaussians."""
    return MEANS[rng.integers(len(MEANS), size=n)] + rng.normal(size=(n, 2))


def generators() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(train, held_out, {name: generated})`` from the digits."""
    train, held_out, fresh, fresh_y = digits(0)
    rng = np.random.default_rng(1)
    index = np.arange(len(fresh))
    same_class = np.array(
        [rng.choice(index[(fresh_y == fresh_y[i]) & (index != i)]) for i in index]
    )
    return (
        train,
        held_out,
        {
            "copies of training digits": train[rng.choice(900, len(fresh), replace=False)],
            "unseen digits (fresh)": fresh,
            "averaged same-class pairs": (fresh + fresh[same_class]) / 2,
            "averaged random pairs": (fresh + fresh[rng.permutation(len(fresh))]) / 2,
            "Gaussian-blurred, sigma = 1 px": gaussian_filter(
                fresh.reshape(-1, 8, 8), (0, 1.0, 1.0)
            ).reshape(len(fresh), -1),
        },
    )


def noisy_copies(train: np.ndarray, n: int, noise: float, rng: np.random.Generator):
    """``n`` training samples (without replacement) plus Gaussian ``noise``."""
    return train[rng.choice(len(train), n, replace=False)] + noise * rng.normal(
        size=(n, train.shape[1])
    )


def partial(
    kind: str, train: np.ndarray, fresh: np.ndarray, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """``fresh`` with part of it replaced by noisy copies of ``train``: a random fifth
    (``kind="fifth"``), or the tenth nearest one random training sample, by copies of the
    training samples nearest it (``kind="region"``)."""
    generated = fresh.copy()
    if kind == "fifth":
        chosen = rng.choice(len(fresh), len(fresh) // 5, replace=False)
        generated[chosen] = noisy_copies(train, len(chosen), noise, rng)
        return generated
    centre = train[rng.integers(len(train))]
    near = np.argsort(((fresh - centre) ** 2).sum(axis=1))[: len(fresh) // 10]
    near_train = train[np.argsort(((train - centre) ** 2).sum(axis=1))[: len(train) // 10]]
    generated[near] = noisy_copies(near_train, len(near), noise, rng)
    return generated


def sets(data: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(train, held_out, fresh)`` of ``data`` for ``seed``."""
    if data == "digits":
        return digits(seed)[:3]
    rng = np.random.default_rng(10_000 + seed)
    return mixture(1000, rng), mixture(1000, rng), mixture(1000, rng)


def rate(hits: np.ndarray) -> str:
    """``hits`` (booleans) as a count and a percentage."""
    return f"{int(hits.sum())}/{len(hits)} ({hits.mean():.1%})"


def partial_rows(n_seeds: int) -> list[list[str]]:
    """One row per data set, number of cells and generator, over ``n_seeds`` seeds."""
    rows = []
    for data, cells in (("digits", 10), ("digits", 5), ("mixture", 10)):
        runs: dict[str, list] = {"fresh": [], "20 % noisy copies": [], "copies in one region": []}
        for seed in progress(range(n_seeds), f"{data}, {cells} cells (seeds)"):
            train, held_out, fresh = sets(data, seed)
            rng = np.random.default_rng(20_000 + seed)
            generated = {
                "fresh": fresh,
                "20 % noisy copies": partial("fifth", train, fresh, NOISE[data], rng),
                "copies in one region": partial("region", train, fresh, NOISE[data], rng),
            }
            for name, samples in generated.items():
                runs[name].append(data_copying(train, samples, held_out, cells=cells, seed=seed))
        for name, results in runs.items():
            z = np.array([float(r.z) for r in results])
            n_flagged = np.array([r.n_flagged for r in results])
            share = np.array([float(r.share) for r in results])
            rows.append(
                [
                    data,
                    cells,
                    name,
                    f"{z.mean():.2f} [{z.min():.2f}, {z.max():.2f}]",
                    rate(z < -3),
                    rate(n_flagged > 0),
                    f"{n_flagged.mean():.2f}",
                    f"{share.mean():.3f}",
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="seeds of the partial rows")
    seeds = parser.parse_args().seeds
    train, held_out, generated = generators()
    rows = []
    for name, samples in generated.items():
        results = [data_copying(train, samples, held_out, seed=seed) for seed in (0, 1, 2)]
        rows.append(
            [
                name,
                *(
                    f"{float(r.z):.2f} ({r.n_kept}); {r.n_flagged}, {float(r.share):.2f}"
                    for r in results
                ),
            ]
        )
    print("C_T (cells kept); flagged cells, share of generated samples in them\n")
    print(markdown_table(["generated (447)", "seed 0", "seed 1", "seed 2"], rows))
    print(f"\nPartial copying over {seeds} seeds\n")
    header = [
        "data",
        "cells",
        "generated",
        "C_T mean [min, max]",
        "C_T < -3",
        "any cell flagged",
        "cells flagged (mean)",
        "share (mean)",
    ]
    print(markdown_table(header, partial_rows(seeds)))


if __name__ == "__main__":
    main()
