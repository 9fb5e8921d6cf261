"""Does measuring entropy help training? Mode coverage on the 2-D benchmarks, as a table.

    python benchmarks/mode_collapse.py              # ring and grid (about an hour, CPU)
    python benchmarks/mode_collapse.py ring         # or: grid
    python benchmarks/mode_collapse.py ring_long    # or grid_long: 4x the steps, 3 seeds

For each data set, the same MLP GAN and step budget (``experiment=<data>``, 30 epochs =
2,340 generator steps, CPU), five seeds per variant:

- ``plain``: the non-saturating GAN;
- ``entropy λ``: the generator also maximises the differentiable k-NN entropy of its batch
  (``loss.entropy_weight=λ``);
- ``entropy λ=1 annealed``: λ falls linearly from 1 to 0 over the first half of the run
  (``loss.entropy_anneal_steps``): spread early, let the adversarial loss sharpen late;
- ``boost``: plain, with the mode-collapse monitor raising λ (from 0.1, doubling) after 2
  validations in a row that look collapsed: generated entropy more than 1 nat below the
  real one, or modes missing while it is not more than 1 nat above;
- ``λ=1 annealed + boost``: the annealed regulariser under the same monitor (the collapse
  that annealing alone ends in shows as an entropy gap);
- ``PacGAN2``: the discriminator judges pairs of samples (``model.pack=2``; Lin et al.
  2018), the literature's remedy that works through the discriminator, not the generator;
- ``PacGAN2 + λ=1 annealed``: both.

Reported: modes covered, high-quality fraction and ``val/jsd`` at the end (2,500 generated
samples against the 2,500 validation samples), mean ± std over seeds.
"""

from __future__ import annotations

import sys
import time

import torch
from common import mean_std, run_sections, train_quietly

from gan_je.progress import progress
from gan_je.tables import markdown_table

SEEDS = range(5)
EPOCHS = 30
STEPS_PER_EPOCH = 78  # 20,000 training samples in batches of 256
MODES = {"ring": 8, "grid": 25}
# the ``<data>_long`` sections: does a 4x longer budget close the gap to the papers?
LONG_EPOCHS = 4 * EPOCHS
LONG_SEEDS = range(3)
LONG_VARIANTS = ("plain", "PacGAN2")


def variants(data: str, epochs: int = EPOCHS) -> dict[str, list[str]]:
    monitor = [
        "callbacks.mode_collapse.action=boost",
        f"callbacks.mode_collapse.min_modes={MODES[data]}",
    ]
    half_run = epochs * STEPS_PER_EPOCH // 2
    annealed = ["loss.entropy_weight=1.0", f"loss.entropy_anneal_steps={half_run}"]
    return {
        "plain": [],
        "entropy λ=0.1": ["loss.entropy_weight=0.1"],
        "entropy λ=1": ["loss.entropy_weight=1.0"],
        "entropy λ=1 annealed": annealed,
        "boost": monitor,
        "λ=1 annealed + boost": [*annealed, *monitor],
        "PacGAN2": ["model.pack=2"],
        "PacGAN2 + λ=1 annealed": ["model.pack=2", *annealed],
    }


def evaluate(
    data: str, names: tuple[str, ...] | None = None, epochs: int = EPOCHS, seeds: range = SEEDS
) -> str:
    """The table for ``data``: the variants ``names`` (default: all), ``epochs`` each."""
    rows = []
    for name, overrides in variants(data, epochs).items():
        if names is not None and name not in names:
            continue
        start = time.perf_counter()
        finals = [
            train_quietly(data, seed, epochs, *overrides)["final"]
            for seed in progress(seeds, f"{data} {name} (seeds)")
        ]
        minutes = (time.perf_counter() - start) / 60
        rows.append(
            [
                name,
                mean_std([f["val/modes_covered"] for f in finals], 1) + f" / {MODES[data]}",
                mean_std([100 * f["val/high_quality"] for f in finals], 1) + " %",
                mean_std([f["val/mode_kl"] for f in finals], 2),
                mean_std([f["val/jsd"] for f in finals], 3),
                mean_std([f["val/entropy_fake"] - f["val/entropy_real"] for f in finals], 2),
                f"{minutes:.1f}",
            ]
        )
        print(f"  {data} {name}: {rows[-1][1:6]}", file=sys.stderr, flush=True)
    header = [
        f"{data}, {epochs * STEPS_PER_EPOCH:,} steps ({len(seeds)} seeds)",
        "modes covered",
        "high quality",
        "mode KL",
        "val/jsd",
        "H_fake - H_real",
        "minutes",
    ]
    return markdown_table(header, rows)


def main() -> None:
    sections = {data: (lambda data=data: evaluate(data)) for data in MODES}
    for data in MODES:
        sections[f"{data}_long"] = lambda data=data: evaluate(
            data, LONG_VARIANTS, LONG_EPOCHS, LONG_SEEDS
        )
    banner = f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU"
    run_sections(__doc__.splitlines()[0], sections, banner)


if __name__ == "__main__":
    main()
