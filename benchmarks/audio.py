"""Audio: WaveGAN and SpecGAN on spoken digits, each plain, with the entropy regulariser and
with the entropy-matching controller, scored as SC09 is scored (Donahue et al. 2019).

    python benchmarks/audio.py real       # the data, the classifier, the real ceiling
    python benchmarks/audio.py --checkpoints a.ckpt,b.ckpt score   # class scores of any runs
    python benchmarks/audio.py --records benchmarks/results/audio.jsonl wavegan specgan
    python benchmarks/audio.py --records benchmarks/results/audio.jsonl recorded   # tables
    python benchmarks/audio.py --dry-run wavegan specgan      # tiny, to check it runs
    python benchmarks/audio.py --seeds 0 --steps 2000 --variants plain --records r.jsonl wavegan

Each run trains ``experiment=spoken_digits_wavegan`` (``wavegan``) or
``experiment=spoken_digits_specgan`` (``specgan``) with a variant's overrides for the same
number of generator steps (``--steps``) on the CPU, then evaluates its last checkpoint with
``gan_je.evaluate`` (``N_MEASURED`` generated clips against as many held-out ones, seeded):
the Inception score in the digit classifier trained on the training voices, the same score of
the held-out real clips (the ceiling), the digit histogram's KL from uniform, the digits
covered, and the k-NN JSD and entropy gap in the run's feature space. The Inception score is
reported as a share of the real held-out clips' score, beside the published shares on SC09
(``PUBLISHED``: WaveGAN 4.7 and SpecGAN 6.0 of real 9.18).

Variants (``VARIANTS``): plain; the entropy regulariser (lambda = 0.1); the entropy-matching
controller (acting after each validation, once an epoch: every 95 generator steps).

``--records FILE`` keeps every finished run in a JSON-lines file as it ends; runs already
there are not run again, and ``recorded`` makes the tables from the file alone. With
``--records``, seed 0's plain run of each model leaves ``EXAMPLES`` clips in
``benchmarks/results/audio/`` (``<model>-<steps>-steps.wav``, one WAV per clip in the folder
beside it, and their spectrograms, ``.png``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import (
    CONF,
    better_and_worse,
    evaluate_last_checkpoint,
    mean_std,
    paired_cells,
    read_records,
    run_sections,
    run_unrecorded,
    sign_test,
    timed_training,
    train_config,
)
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from gan_je.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"wavegan": "spoken_digits_wavegan", "specgan": "spoken_digits_specgan"}
SEEDS = (0, 1, 2)
STEPS = 1000
N_MEASURED = 1000
#: clips kept of seed 0's plain run of each model, in EXAMPLES_DIR
EXAMPLES = 10
EXAMPLES_DIR = ROOT / "benchmarks" / "results" / "audio"
#: the controller acts after each validation: once an epoch, every 95 generator steps
MATCHING = ["callbacks=entropy_matching"]
VARIANTS = {
    "plain": [],
    "entropy λ=0.1": ["loss.entropy_weight=0.1"],
    "entropy matching": MATCHING,
}
#: Inception scores on SC09 (Donahue et al. 2019, table 1): real training data, and each
#: model's best; their digits, not ours: anchors as shares of the real score
PUBLISHED = {"real SC09": 9.18, "WaveGAN": 4.7, "SpecGAN": 6.0}
#: the issue's goal: a share of the real score, every digit, a digit KL at most this
GOAL_SHARE, GOAL_KL = 0.8, 0.05
#: --dry-run: a few voices, a few steps, one seed
DRY = ["data.accents=[en-us,en]", "data.variants=[f1,f2,m1,m2,m3,m4]", "data.val_variants=2"]
DRY += ["data.clips_per_word=4", "data.cache_dir=null"]
DRY += ["callbacks.class_scores.n_samples=50", "callbacks.class_scores.epochs=1"]
DRY += ["estimator.max_samples=100", "estimator.n_fake=100"]


def overrides_of(variant: str, steps: int, extra: Sequence[str]) -> list[str]:
    """Every override of one run: the variant's, the step budget, the shared data folder (the
    clips are synthesised once) and ``extra``."""
    data = f"paths.data_dir={ROOT / 'data'}"
    return [*VARIANTS[variant], f"model.max_g_steps={steps}", data, *extra]


def keep_examples(folder: Path, name: str) -> None:
    """``EXAMPLES`` clips of the run in ``folder`` (seed 0 of the latents), as ``gan_je.generate``
    writes them: ``benchmarks/results/audio/<name>.wav`` (one after another, with the folder of
    one WAV per clip beside it) and ``<name>.png`` (their spectrograms)."""
    from gan_je.generate import run

    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for file_format in ("wav", "png"):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(
                config_name="generate",
                overrides=[
                    f"ckpt_path={folder / 'checkpoints' / 'last.ckpt'}",
                    f"n={EXAMPLES}",
                    f"format={file_format}",
                    f"out={EXAMPLES_DIR / f'{name}.{file_format}'}",
                    "device=cpu",
                ],
            )
        run(cfg)


def run_key(setting: str, variant: str, seed: int, steps: int, extra: Sequence[str]) -> dict:
    """What names one run (its overrides included, so a changed variant runs again)."""
    return {
        "setting": setting,
        "variant": variant,
        "seed": seed,
        "overrides": overrides_of(variant, steps, extra),
    }


def measure(
    setting: str,
    variant: str,
    seed: int,
    steps: int,
    extra: Sequence[str],
    examples: bool = False,
) -> dict:
    """Train one variant once and evaluate it: its record (key, steps, wall and CPU seconds,
    the evaluation, or the error that stopped it); with ``examples``, keep its example clips
    (:func:`keep_examples`)."""
    key = run_key(setting, variant, seed, steps, extra)
    evaluation: dict = {}

    def keep(folder: Path) -> None:
        evaluation.update(evaluate_last_checkpoint(folder, seed, f"n_samples={N_MEASURED}"))
        if examples:
            keep_examples(folder, f"{setting}-{steps}-steps")

    fields, run = timed_training(SETTINGS[setting], seed, 1000, *key["overrides"], keep=keep)
    return {**key, **fields} | ({"evaluation": evaluation} if run is not None else {})


def run_all(
    setting: str,
    seeds: Sequence[int],
    steps: int,
    extra: Sequence[str],
    records: Path | None,
    variants: Sequence[str] = tuple(VARIANTS),
) -> list[dict]:
    """Run each of ``variants`` of ``setting`` on every seed not yet in ``records``; the
    records."""
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    keys = [run_key(setting, variant, seed, steps, extra) for seed in seeds for variant in variants]

    def run(key: dict) -> dict:
        examples = records is not None and key["seed"] == 0 and key["variant"] == "plain"
        return measure(setting, key["variant"], key["seed"], steps, extra, examples)

    def outcome(record: dict) -> float:
        return record["evaluation"]["metrics"].get("inception_score")

    return run_unrecorded(keys, run, records, outcome)


def metric(run: dict, key: str) -> float:
    return float(run["evaluation"]["metrics"].get(key, math.nan))


def share(run: dict) -> float:
    """The run's Inception score as a share of the real held-out clips' score."""
    return metric(run, "inception_score") / metric(run, "inception_score_real")


def cell(values: list[float], digits: int = 2) -> str:
    values = [v for v in values if math.isfinite(v)]
    return mean_std(values, digits) if values else "—"


def table(done: list[dict]) -> str:
    """One row per setting and variant: mean ± std over seeds, and how many seeds reach the
    goal."""
    header = ["model", "variant", "seeds", "IS", "IS real held-out", "IS share"]
    header += ["digits covered", "digit KL", "k-NN JSD", "H_fake - H_real", "goal met", "min/run"]
    rows = []
    for setting in SETTINGS:
        for variant in VARIANTS:
            runs = [
                r
                for r in done
                if r["setting"] == setting and r["variant"] == variant and "evaluation" in r
            ]
            if not runs:
                continue
            met = sum(
                share(r) >= GOAL_SHARE
                and metric(r, "classes_covered") == 10
                and metric(r, "class_kl") <= GOAL_KL
                for r in runs
            )
            gaps = [metric(r, "entropy_fake") - metric(r, "entropy_real") for r in runs]
            rows.append(
                [
                    setting,
                    variant,
                    str(len(runs)),
                    cell([metric(r, "inception_score") for r in runs]),
                    cell([metric(r, "inception_score_real") for r in runs]),
                    cell([share(r) for r in runs]),
                    cell([metric(r, "classes_covered") for r in runs], 1),
                    cell([metric(r, "class_kl") for r in runs], 3),
                    cell([metric(r, "jsd") for r in runs], 3),
                    cell(gaps),
                    f"{met} of {len(runs)}",
                    f"{statistics.fmean(r['wall_s'] for r in runs) / 60:.1f}",
                ]
            )
    failed = [
        f"{r['setting']} {r['variant']} seed {r['seed']}: {r['error']}"
        for r in done
        if "error" in r
    ]
    notes = "\n\nFailed runs: " + "; ".join(failed) if failed else ""
    return markdown_table(header, rows) + notes


def anchors() -> str:
    """The published SC09 scores as shares of the real score."""
    real = PUBLISHED["real SC09"]
    rows = [[name, f"{value:.2f}", f"{value / real:.2f}"] for name, value in PUBLISHED.items()]
    return markdown_table(["SC09 (Donahue et al. 2019)", "IS", "share of real"], rows)


#: what the paired table compares: (column, the run's number, decimals, more is better)
COMPARED = (
    ("IS", lambda run: metric(run, "inception_score"), 2, True),
    ("digits covered", lambda run: metric(run, "classes_covered"), 1, True),
    ("digit KL", lambda run: metric(run, "class_kl"), 3, False),
    ("k-NN JSD", lambda run: metric(run, "jsd"), 3, False),
)


def against_plain(done: list[dict]) -> str:
    """Each variant minus plain on the same seed (the same clips in the same order, the same
    scoring latents), per model: the mean ± std of the differences and on how many seeds the
    variant is the better; then both models' seeds pooled, with the exact sign test of the
    wins against the losses (:func:`common.sign_test`)."""
    finished = {(r["setting"], r["variant"], r["seed"]): r for r in done if "evaluation" in r}
    rows, pooled = [], {}
    for setting in SETTINGS:
        for variant in VARIANTS:
            seeds = sorted(
                seed
                for (s, v, seed) in finished
                if (s, v) == (setting, variant) and (setting, "plain", seed) in finished
            )
            if variant == "plain" or not seeds:
                continue
            cells, diffs = paired_cells(
                {seed: finished[setting, variant, seed] for seed in seeds},
                {seed: finished[setting, "plain", seed] for seed in seeds},
                COMPARED,
            )
            row = [setting, variant, str(len(seeds)), *cells]
            for column, column_diffs in enumerate(diffs):
                pooled.setdefault(variant, [[] for _ in COMPARED])[column] += column_diffs
            rows.append(row)
    if not rows:
        return "No variant has a seed in common with plain yet."
    header = ["model", "variant - plain", "seeds", *(name for name, *_ in COMPARED)]
    pooled_rows = []
    for variant, columns in pooled.items():
        row = [variant, str(len(columns[0]))]
        for diffs, (_, _, _, more_is_better) in zip(columns, COMPARED, strict=True):
            better, worse = better_and_worse(diffs, more_is_better)
            row.append(f"{better} better, {worse} worse (p = {sign_test(better, worse):.3f})")
        pooled_rows.append(row)
    both = ["both models: variant vs plain", "pairs", *(name for name, *_ in COMPARED)]
    note = (
        "(n/m): better than plain on n of m seeds, ties neither; p: the two-sided sign test "
        "of the wins against the losses."
    )
    return "\n\n".join([markdown_table(header, rows), markdown_table(both, pooled_rows), note])


def tables(done: list[dict]) -> str:
    return "\n\n".join([table(done), against_plain(done), "Published, on SC09:\n\n" + anchors()])


def section(setting: str):
    def run(
        records: str | None = None,
        seeds: str | None = None,
        steps: str | None = None,
        variants: str | None = None,
        **_: str | None,
    ) -> str:
        path = Path(records) if records else None
        chosen = [int(s) for s in seeds.split(",")] if seeds else SEEDS
        names = variants.split(";") if variants else tuple(VARIANTS)
        done = run_all(setting, chosen, int(steps or STEPS), (), path, names)
        return tables([r for r in done if r["setting"] == setting])

    return run


def dry(setting: str):
    def run(**_: str | None) -> str:
        done = run_all(setting, (0,), 4, DRY, None, ("plain", "entropy λ=0.1"))
        return tables(done)

    return run


def spoken_digits(experiment: str) -> tuple[DictConfig, Any]:
    """The composed config of ``experiment=<experiment>`` and its data module, set up, the
    clips read from (or built into) the shared cache under ``data/``."""
    from hydra.utils import instantiate

    cfg = train_config(ROOT, f"experiment={experiment}", f"paths.data_dir={ROOT / 'data'}")
    data = instantiate(cfg.data)
    data.prepare_data()
    data.setup("fit")
    return cfg, data


def real(seeds: str | None = None, **_: str | None) -> str:
    """The data and the ceiling: the spoken digits' splits, the digit classifier's accuracy on
    the held-out voices and its scores of ``N_MEASURED`` held-out clips, of the same clips
    through SpecGAN's representation and back (``model=specgan``'s log spectrogram, then its
    Griffin-Lim: the most SpecGAN can score), and of as many training clips, for each seed of
    the classifier; ``EXAMPLES`` held-out clips kept as ``real.wav`` / ``real.png`` in
    ``benchmarks/results/audio/``."""

    from gan_je.audio import griffin_lim, log_spectrogram
    from gan_je.callbacks import ClassScores
    from gan_je.class_scores import fit_class_scorer
    from gan_je.data.kinds import kind_of

    cfg, data = spoken_digits("spoken_digits_specgan")
    spec = cfg.model.generator
    held_out = data.val_tensor(N_MEASURED)
    image = log_spectrogram(held_out, spec.n_fft, spec.hop)
    length = held_out.shape[-1]
    round_trip = griffin_lim(image, spec.n_fft, spec.hop, length, spec.n_iter).clamp(-1, 1)
    rows = []
    for seed in [int(s) for s in seeds.split(",")] if seeds else SEEDS:
        callback = ClassScores(
            n_samples=N_MEASURED,
            epochs=20,
            seed=seed,
            cache_dir=str(ROOT / "outputs" / ".feature_cache"),
        )
        scores, accuracy = fit_class_scorer(callback.scorer, data, N_MEASURED)
        through = callback.scorer.scores(round_trip)
        training = callback.scorer.scores(data.train_tensor(N_MEASURED))
        rows.append(
            [
                str(seed),
                f"{accuracy:.3f}",
                f"{scores['inception_score']:.2f}",
                f"{scores['class_kl']:.4f}",
                f"{through['inception_score']:.2f}",
                f"{training['inception_score']:.2f}",
            ]
        )
    kind = kind_of(data.data_spec)
    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    clips = data.val_tensor(EXAMPLES)
    kind.write(clips, EXAMPLES_DIR / "real.wav", "wav", "held-out real clips", strip=False)
    kind.write(clips, EXAMPLES_DIR / "real.png", "png", "held-out real clips", strip=False)
    header = ["classifier seed", "accuracy, held-out voices", f"IS, {N_MEASURED} held-out"]
    header += ["digit KL, held-out", "IS, held-out through SpecGAN's spectrogram"]
    header += [f"IS, {N_MEASURED} training"]
    splits = f"{len(data.train_set)} training and {len(data.val_set)} held-out clips"
    voices = ", ".join(data.val_variant_names)
    return f"{splits}; held-out voice variants: {voices}\n\n" + markdown_table(header, rows)


def score(checkpoints: str | None = None, **_: str | None) -> str:
    """The class scores of ``N_MEASURED`` clips of each checkpoint (a run of any settings on
    the default spoken digits, seed 0 of the latents), in the digit classifier of seed 0
    (the one ``real`` reports), with the generator step each reached."""

    from gan_je import sampling
    from gan_je.callbacks import ClassScores
    from gan_je.class_scores import fit_class_scorer
    from gan_je.module import GANModule

    if not checkpoints:
        return "Nothing to score: pass --checkpoints FILE[,FILE...]."
    _, data = spoken_digits("spoken_digits_wavegan")
    cache = str(ROOT / "outputs" / ".feature_cache")
    scorer = ClassScores(n_samples=N_MEASURED, epochs=20, seed=0, cache_dir=cache).scorer
    real, _ = fit_class_scorer(scorer, data, N_MEASURED)
    rows = [["real held-out clips", "—", f"{real['inception_score']:.2f}", "10"]]
    for path in checkpoints.split(","):
        module = GANModule.load_from_checkpoint(path).eval()
        clips = sampling.draw(module.sampler, N_MEASURED, sampling.seeded(0)).float()
        scores = scorer.scores(clips)
        rows.append(
            [
                path,
                str(module.g_step),
                f"{scores['inception_score']:.2f}",
                f"{scores['classes_covered']:.0f}",
            ]
        )
    return markdown_table(["checkpoint", "generator steps", "IS", "digits covered"], rows)


def recorded(records: str | None = None, **_: str | None) -> str:
    if not records:
        raise SystemExit("recorded needs --records FILE")
    return tables(read_records(Path(records)))


if __name__ == "__main__":
    run_sections(
        __doc__.splitlines()[0],
        {
            "real": real,
            "score": score,
            "wavegan": section("wavegan"),
            "specgan": section("specgan"),
            "recorded": recorded,
        },
        "# Audio benchmark (benchmarks/audio.py)",
        dry_runs={"wavegan": dry("wavegan"), "specgan": dry("specgan")},
        options={
            "records": "a JSON-lines file keeping every finished run",
            "seeds": "comma-separated seeds (default 0,1,2)",
            "steps": f"generator steps per run (default {STEPS})",
            "variants": "semicolon-separated variant names (default: all)",
            "checkpoints": "comma-separated checkpoints for the score section",
        },
    )
