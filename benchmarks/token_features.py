"""Which feature space lets the k-NN JSD track the exact JSD on token sequences?

A tiny SeqGAN-style oracle (an LSTM language model with every parameter N(0, 1), vocabulary
50, length 8) against itself sampled at temperatures 0.5 to 2: the exact JSD of each pair
(Monte Carlo over the two models' log-likelihoods, :mod:`gan_je.sequence_measures`) beside
the k-NN JSD (k = 3, :func:`gan_je.estimators.jensen_shannon`) of the same samples in each
candidate feature space, fitted on separate oracle samples. A useful space orders the
temperatures as the exact JSD does (Spearman's rho against it, over the pairs and seeds).

    python benchmarks/token_features.py [--n 2000] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse

import torch

from gan_je.estimators import jensen_shannon
from gan_je.features import PCA, RandomProjection, TokenFeatures
from gan_je.models.lstm import LSTMLanguageModel
from gan_je.sequence_measures import exact_jensen_shannon
from gan_je.tables import markdown_table

V, L = 50, 8
TEMPERATURES = (0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 2.0)


class Tempered:
    def __init__(self, model: LSTMLanguageModel, temperature: float) -> None:
        self.model, self.temperature = model, temperature

    def log_prob(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.log_prob(ids, self.temperature)


def candidates() -> dict[str, object]:
    """The feature maps compared, by name; each fitted on one-hot samples (n, L, V)."""
    return {
        "tokens e16 d8": TokenFeatures(dim=8, embed_dim=16),
        "tokens e16 d4": TokenFeatures(dim=4, embed_dim=16),
        "tokens e16 d16": TokenFeatures(dim=16, embed_dim=16),
        "tokens e4 d8": TokenFeatures(dim=8, embed_dim=4),
        "tokens e64 d8 (default)": TokenFeatures(dim=8, embed_dim=64),
        "one-hot PCA d8": PCA(8),
        "one-hot random d8": RandomProjection(8),
    }


def draw(oracle: LSTMLanguageModel, n: int, seed: int, temperature: float) -> torch.Tensor:
    return oracle.sample(n, torch.Generator().manual_seed(seed), temperature)


def one_hot(ids: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(ids, V).float()


def spearman(a: list[float], b: list[float]) -> float:
    ranks = [torch.tensor(x).argsort().argsort().double() for x in (a, b)]
    return float(torch.corrcoef(torch.stack(ranks))[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="sequences per set")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="oracle seeds")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    exact, estimates = [], {name: [] for name in candidates()}
    rows = []
    for seed in args.seeds:
        oracle = LSTMLanguageModel(V, L).init_normal_(torch.Generator().manual_seed(seed))
        fit, real = draw(oracle, 5000, 100 + seed, 1.0), draw(oracle, args.n, 200 + seed, 1.0)
        maps = {name: f.fit(one_hot(fit)) for name, f in candidates().items()}
        for i, temperature in enumerate(TEMPERATURES):
            fake = draw(oracle, args.n, 300 + 10 * seed + i, temperature)
            truth = exact_jensen_shannon(oracle, Tempered(oracle, temperature), real, fake)
            exact.append(float(truth.value))
            row = [seed, temperature, f"{float(truth.value):.3f} ± {float(truth.se):.3f}"]
            for name, f in maps.items():
                value = float(jensen_shannon(f(one_hot(real)), f(one_hot(fake)), k=3))
                estimates[name].append(value)
                row.append(f"{value:.3f}")
            rows.append(row)
    print(markdown_table(["oracle seed", "temperature", "exact JSD", *maps], rows))
    print()
    ranks = [[name, f"{spearman(exact, values):.3f}"] for name, values in estimates.items()]
    print(markdown_table(["features", "Spearman rho with the exact JSD"], ranks))


if __name__ == "__main__":
    main()
