"""Does the data-copying statistic C_T separate copies from fresh samples on real data?

scikit-learn's 1,797 8x8 digits, shuffled: 900 training, 450 held-out, 447 unseen digits.
Each "generator" below produces 447 samples; C_T (``gan_je.estimators.data_copying``) for
three k-means seeds, with the number of cells kept out of 10.

    python benchmarks/copying.py
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.datasets import load_digits

from gan_je.estimators import data_copying
from gan_je.tables import markdown_table


def generators() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(train, held_out, {name: generated})`` from the digits."""
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    train, held_out, fresh = x[order[:900]], x[order[900:1350]], x[order[1350:]]
    fresh_y = y[order[1350:]]
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


def main() -> None:
    train, held_out, generated = generators()
    rows = []
    for name, samples in generated.items():
        results = [data_copying(train, samples, held_out, seed=seed) for seed in (0, 1, 2)]
        rows.append([name, *(f"{float(r.z):.2f} ({r.n_kept})" for r in results)])
    print(markdown_table(["generated (447)", "C_T seed 0", "seed 1", "seed 2"], rows))


if __name__ == "__main__":
    main()
