"""Which feature space lets the metric's JSD see what is wrong with a set of spoken digits?

``data=spoken_digits`` (:class:`gan_je.data.SpokenDigits`, 8 kHz, 8,192 samples: the CPU
preset; voice variants held out for validation). The training split's voice variants are
halved (by ``--seed``): the feature maps are fitted on the clips of one half, and the real
floor is the JSD between the other half's clips and the held-out clips (about 0: the same
distribution but for the voices; none of these clips was seen by a fit, so a classifier's
memory of its training clips does not lift the floor). Each degraded set, made from the
other half's clips too, is then compared with the held-out clips:

- ``5 digits``: only the digits 0-4 (half the classes missing: mode collapse);
- ``noise``: white noise of standard deviation 0.05 added (SNR about 15 dB);
- ``cut off``: each word shifted so that it starts in the clip's last quarter;
- ``half silent``: half of the clips replaced by silence.

The JSD is the one the runs log, ``val/jsd`` of :class:`gan_je.metrics.JointEntropy` with
conf/estimator/knn.yaml's settings (k = 3, one halving for the standard error). A space wins
when its JSD rises well above its real floor for every degradation. Every set has as many
clips as the held-out set, or as the unfitted half holds of digits 0-4 if that is fewer.

    python benchmarks/audio_features.py [--accents 8] [--clips-per-word 2] [--seed 0]
        [--cache-dir $GAN_JE_DATA/spoken_digits]

The defaults are conf/data/spoken_digits.yaml's, so the set is read from the cache a run
keeps (``GAN_JE_DATA``, or ./data, as ``paths.data_dir``).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from gan_je.audio import fit_length
from gan_je.data import SpokenDigits
from gan_je.data.speech import ENGLISH_ACCENTS
from gan_je.features import PCA, Classifier, LogMelPCA
from gan_je.metrics import JointEntropy
from gan_je.tables import markdown_table


def degraded(x: torch.Tensor, labels: torch.Tensor, n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` clips of each degradation (see the module doc), made from ``x``."""
    length = x.shape[-1]
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=generator)
    base = x[order[:n]]
    few = x[order[labels[order] < 5][:n]]
    noisy = (base + 0.05 * torch.randn(base.shape, generator=generator)).clamp(-1, 1)
    cut = torch.zeros_like(base)
    for i, clip in enumerate(base):
        start = int(clip[0].abs().gt(0.01).nonzero()[0])  # where the word begins
        offset = length * 3 // 4 + int(torch.randint(length // 8, (1,), generator=generator))
        cut[i] = fit_length(clip[:, start:], length, offset)
    silent = base.clone()
    silent[: n // 2] = 0
    return {"5 digits": few, "noise": noisy, "cut off": cut, "half silent": silent}


def fitted_half(data: SpokenDigits, seed: int) -> torch.Tensor:
    """Which training clips of ``data`` (after ``setup``) the feature maps are fitted on: a
    boolean mask, true for the clips of half of the training voice variants (drawn by
    ``seed``); the other half's clips are left for the floor and the degraded sets."""
    held = set(data.val_variant_names)
    variants = [c.voice.split("+", 1)[1] for c in data.choices]
    train_variants = [v for v in variants if v not in held]
    names = sorted(set(train_variants))
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    chosen = {names[i] for i in order[: len(names) // 2]}
    return torch.tensor([v in chosen for v in train_variants])


def jsd(features: torch.nn.Module, real: torch.Tensor, other: torch.Tensor, seed: int) -> tuple:
    """``val/jsd`` and ``val/jsd_se`` of ``other`` against ``real`` in ``features``."""
    metric = JointEntropy(
        k=3, features=features, quality=False, copying=False, jsd_classifier=False, seed=seed
    )
    metric.update(real, real=True)
    metric.update(other, real=False)
    values = metric.compute()
    return float(values["jsd"]), float(values["jsd_se"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accents", type=int, default=8, help="English accents used (1-8)")
    parser.add_argument("--clips-per-word", type=int, default=2)
    parser.add_argument(
        "--seed", type=int, default=0, help="data_seed: voices held out, the halves fitted on"
    )
    parser.add_argument(
        "--cache-dir",
        default=os.path.join(os.environ.get("GAN_JE_DATA", "data"), "spoken_digits"),
        help="where the spoken digits are cached (data.cache_dir)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    data = SpokenDigits(
        accents=list(ENGLISH_ACCENTS[: args.accents]),
        clips_per_word=args.clips_per_word,
        data_seed=args.seed,
        cache_dir=args.cache_dir,
    )
    data.setup("fit")
    (train, train_labels), (held, _) = data.train_set.tensors, data.val_set.tensors
    fitted = fitted_half(data, args.seed)
    x, labels = train[fitted], train_labels[fitted]  # what the feature maps are fitted on
    rest, rest_labels = train[~fitted], train_labels[~fitted]  # the floor and degraded sets
    n, rate = min(len(held), int((rest_labels < 5).sum())), data.sample_rate
    spaces = {
        "classifier (PCA 8 of its embedding)": Classifier(dim=8, epochs=20).fit(
            x, labels, kind="waveform", sample_rate=rate
        ),
        "log-mel, PCA 8": LogMelPCA(dim=8).fit(x, sample_rate=rate),
        "waveform, PCA 8": PCA(dim=8).fit(x.flatten(1)),
    }
    generator = torch.Generator().manual_seed(args.seed)
    unseen = rest[torch.randperm(len(rest), generator=generator)[:n]]
    sets = {"real (train voices)": unseen} | degraded(rest, rest_labels, n, args.seed)
    rows, summary = [], []
    for name, features in spaces.items():
        values = {label: jsd(features, held, clips, args.seed) for label, clips in sets.items()}
        rows.append([name, *(f"{v:.3f} ± {se:.3f}" for v, se in values.values())])
        floor = values["real (train voices)"][0]
        rises = [v - floor for label, (v, _) in values.items() if label != "real (train voices)"]
        summary.append([name, f"{floor:.3f}", f"{min(rises):.3f}", f"{np.mean(rises):.3f}"])
    print(
        f"{len(held)} held-out clips ({len(data.val_variant_names)} voice variants in "
        f"{args.accents} accents) against {n} of each set, drawn from {len(rest)} training "
        f"clips the features were not fitted on; features fitted on {len(x)} training clips "
        f"(the other half of the training variants); {time.perf_counter() - start:.0f} s\n"
    )
    print(markdown_table(["features", *sets], rows))
    print()
    print(markdown_table(["features", "real floor", "least rise", "mean rise"], summary))


if __name__ == "__main__":
    main()
