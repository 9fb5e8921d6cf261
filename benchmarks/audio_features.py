"""Which feature space lets the metric's JSD see what is wrong with a set of spoken digits?

Spoken digits synthesised with eSpeak NG (8 kHz, 8,192 samples: the CPU preset), voices split
as the data are: the feature maps are fitted on the training voices, and the real floor is the
JSD between clips of the training voices and clips of held-out voices (about 0: the same
distribution). Each degraded set, made from training-voice clips, is then compared with the
held-out clips:

- ``5 digits``: only the digits 0-4 (half the classes missing: mode collapse);
- ``noise``: white noise of standard deviation 0.05 added (SNR about 15 dB);
- ``cut off``: each word shifted so that it starts in the clip's last quarter;
- ``half silent``: half of the clips replaced by silence.

The JSD is the one the runs log, ``val/jsd`` of :class:`gan_je.metrics.JointEntropy` with
conf/estimator/knn.yaml's settings (k = 3, one halving for the standard error). A space wins
when its JSD rises well above its real floor for every degradation.

    python benchmarks/audio_features.py [--voices 150 40] [--takes 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gan_je.audio import fit_length, resample
from gan_je.features import PCA, Classifier, LogMelPCA
from gan_je.metrics import JointEntropy
from gan_je.tables import markdown_table

RATE, LENGTH = 8000, 8192
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def voices(seed: int = 0) -> list[str]:
    """Every English eSpeak NG voice (accent + variant), in a seeded order."""
    from gan_je.data.speech import ENGLISH_ACCENTS, VARIANTS

    names = [f"{accent}+{variant}" for variant in VARIANTS for accent in ENGLISH_ACCENTS]
    return [names[i] for i in np.random.default_rng(seed).permutation(len(names))]


def spoken_digits(
    names: list[str], takes: int = 1, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips ``(n, 1, LENGTH)`` at ``RATE`` and their digits: each digit said ``takes`` times by
    each voice at a random speaking rate, pitch and loudness, at a random offset."""
    from gan_je.data.speech import ESPEAK_RATE, synthesise

    rng = np.random.default_rng(seed)
    clips, labels = [], []
    for voice in names:
        for _ in range(takes):
            for digit, word in enumerate(WORDS):
                speech = synthesise(
                    word, voice, int(rng.integers(120, 220)), int(rng.integers(20, 80))
                )
                clip = resample(speech.astype(np.float32) / 32768, ESPEAK_RATE, RATE)[:LENGTH]
                clip *= rng.uniform(0.3, 0.9) / max(1e-3, float(np.abs(clip).max()))
                offset = int(rng.integers(0, LENGTH - len(clip) + 1))
                clips.append(fit_length(clip[None], LENGTH, offset))
                labels.append(digit)
    return torch.from_numpy(np.stack(clips)), torch.tensor(labels)


def degraded(x: torch.Tensor, labels: torch.Tensor, n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` clips of each degradation (see the module doc), made from ``x``."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=generator)
    base = x[order[:n]]
    few = x[order[labels[order] < 5][:n]]
    noisy = (base + 0.05 * torch.randn(base.shape, generator=generator)).clamp(-1, 1)
    cut = torch.zeros_like(base)
    for i, clip in enumerate(base):
        start = int(clip[0].abs().gt(0.01).nonzero()[0])  # where the word begins
        offset = LENGTH * 3 // 4 + int(torch.randint(LENGTH // 8, (1,), generator=generator))
        cut[i] = fit_length(clip[:, start:], LENGTH, offset)
    silent = base.clone()
    silent[: n // 2] = 0
    return {"5 digits": few, "noise": noisy, "cut off": cut, "half silent": silent}


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
    parser.add_argument("--voices", type=int, nargs=2, default=[150, 40], help="train, held out")
    parser.add_argument("--takes", type=int, default=2, help="times each voice says each digit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    names = voices(args.seed)
    n_train, n_held = args.voices
    x, labels = spoken_digits(names[:n_train], args.takes, args.seed)
    held, _ = spoken_digits(names[n_train : n_train + n_held], args.takes, args.seed + 1)
    n = len(held)
    spaces = {
        "classifier (PCA 8 of its embedding)": Classifier(dim=8, epochs=20).fit(
            x, labels, kind="waveform", sample_rate=RATE
        ),
        "log-mel, PCA 8": LogMelPCA(dim=8).fit(x, sample_rate=RATE),
        "waveform, PCA 8": PCA(dim=8).fit(x.flatten(1)),
    }
    generator = torch.Generator().manual_seed(args.seed)
    train_subset = x[torch.randperm(len(x), generator=generator)[:n]]
    sets = {"real (train voices)": train_subset} | degraded(x, labels, n, args.seed)
    rows, summary = [], []
    for name, features in spaces.items():
        values = {label: jsd(features, held, clips, args.seed) for label, clips in sets.items()}
        rows.append([name, *(f"{v:.3f} ± {se:.3f}" for v, se in values.values())])
        floor = values["real (train voices)"][0]
        rises = [v - floor for label, (v, _) in values.items() if label != "real (train voices)"]
        summary.append([name, f"{floor:.3f}", f"{min(rises):.3f}", f"{np.mean(rises):.3f}"])
    print(
        f"{n} held-out clips ({n_held} voices) against {n} of each set; features fitted on "
        f"{len(x)} clips of {n_train} other voices; {time.perf_counter() - start:.0f} s\n"
    )
    print(markdown_table(["features", *sets], rows))
    print()
    print(markdown_table(["features", "real floor", "least rise", "mean rise"], summary))


if __name__ == "__main__":
    main()
