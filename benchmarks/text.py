"""Text: every generator of issue 31 on SeqGAN's synthetic oracle and on character lines.

    python benchmarks/text.py --records benchmarks/results/text.jsonl oracle   # 3 seeds
    python benchmarks/text.py --records benchmarks/results/text.jsonl chars
    python benchmarks/text.py --records benchmarks/results/text.jsonl recorded # tables, plot
    python benchmarks/text.py --dry-run oracle chars      # tiny, to check it runs
    python benchmarks/text.py --seeds 0 --steps 3000 --variants MLE --records runs.jsonl oracle

Each run trains ``experiment=text_oracle`` (``oracle``) or ``experiment=text_chars``
(``chars``) with a variant's overrides for the same number of generator steps (``--steps``),
on the CPU, then measures its last checkpoint: ``N_MEASURED`` generated sequences (seeded)
against as many held-out ones, exactly (:func:`gan_je.sequence_measures.measure_against_data`:
NLL-oracle, NLL-test, the entropies per token, the per-token KLs both ways, the exact JSD of
whole sequences, the n-gram JSDs with their real floor) and by the k-NN metric in the run's
own fitted ``features=tokens`` space (JSD and the entropy gap H_fake - H_real). Maximum
likelihood is trained once per seed and measured at every sampling temperature of
``TEMPERATURES``: its quality-diversity frontier.

Variants (``VARIANTS``): maximum likelihood; the Gumbel-softmax LSTM GAN (straight-through,
non-saturating loss, the first half of its steps maximum-likelihood pretraining, as RelGAN
does); Gulrajani et al.'s residual model with WGAN-GP; each GAN plain, with the entropy
regulariser (lambda = 0.1, in the metric's token features) and with the entropy-matching
controller (validating every 50 generator steps, so that it acts within the budget).

``--records FILE`` keeps every finished run in a JSON-lines file as it ends; runs already
there are not run again, and ``recorded`` makes the tables and the frontier plot
(``benchmarks/results/text/frontier.png``) from the file alone.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import torch
from common import (
    mean_std,
    read_records,
    run_sections,
    run_unrecorded,
    timed_training,
    train_config,
)

from gan_je.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"oracle": "text_oracle", "chars": "text_chars"}
SEEDS = (0, 1, 2)
STEPS = 300
TEMPERATURES = (0.5, 0.75, 1.0, 1.25, 1.5)
N_MEASURED = 2000
LSTM_GAN = ["model=lstm_gan", "loss=nonsaturating"]
GULRAJANI = ["model=char_resnet", "loss=wgan_gp"]
#: the controller acts after each validation: every 50 generator steps, not once an epoch
MATCHING = ["callbacks=entropy_matching", "+trainer.val_check_interval=50"]
VARIANTS = {
    "MLE": ["model=lstm_mle"],
    "LSTM GAN": LSTM_GAN,
    "LSTM GAN, entropy λ=0.1": [*LSTM_GAN, "loss.entropy_weight=0.1"],
    "LSTM GAN, entropy matching": [*LSTM_GAN, *MATCHING],
    "Gulrajani": GULRAJANI,
    "Gulrajani, entropy λ=0.1": [*GULRAJANI, "loss.entropy_weight=0.1"],
    "Gulrajani, entropy matching": [*GULRAJANI, *MATCHING],
}
#: the published NLL-oracle at length 20 (their oracle, not ours: anchors, not targets)
PUBLISHED = {
    "MLE (Yu et al. 2017)": 9.04,
    "SeqGAN (Yu et al. 2017)": 8.74,
    "LeakGAN (Guo et al. 2018)": 7.04,
    "RelGAN(100) (Nie et al. 2019)": 6.68,
}
#: --dry-run: a tiny oracle, a few steps, one seed (training sets of more than 50 batches: the
#: controller's variants validate every 50)
DRY_ORACLE = ["data.vocab_size=50", "data.n_train=3500", "data.n_val=320", "data.cache_dir=null"]
DRY = ["callbacks.sequence_measures.n_samples=100", "estimator.max_samples=200"]
DRY += ["estimator.n_fake=200", "estimator.features_fit_samples=300"]


def overrides_of(setting: str, variant: str, steps: int, extra: Sequence[str]) -> list[str]:
    """Every override of one run: the variant's, the step budget (the LSTM GAN's first half
    maximum likelihood), the shared data folder (the oracle's sequences are drawn once) and
    ``extra``."""
    budget = [f"model.max_g_steps={steps}"]
    if VARIANTS[variant][: len(LSTM_GAN)] == LSTM_GAN:
        budget.append(f"model.pretrain_steps={steps // 2}")
    return [*VARIANTS[variant], *budget, f"paths.data_dir={ROOT / 'data'}", *extra]


@torch.no_grad()
def measure_checkpoint(folder: Path, overrides: Sequence[str], n: int, seed: int) -> list[dict]:
    """The measures of the run in ``folder`` (its ``checkpoints/last.ckpt``): one point per
    sampling temperature for maximum likelihood, one for the others (at the temperature it
    was trained with)."""
    from hydra.utils import instantiate

    from gan_je.estimators import entropy, jensen_shannon
    from gan_je.module import GANModule
    from gan_je.sampling import seeded, set_temperature, token_ids
    from gan_je.sequence_measures import measure_against_data

    module = GANModule.load_from_checkpoint(folder / "checkpoints" / "last.ckpt")
    data = instantiate(train_config(folder, *overrides).data)
    data.prepare_data()
    data.setup("fit")
    features, generator = module.metric.features, module.sampler
    vocab = data.vocab_size
    real_ids = data.val_ids[torch.randperm(len(data.val_ids), generator=seeded(seed))[:n]]
    n = len(real_ids)

    def featurise(ids: torch.Tensor) -> torch.Tensor:
        parts = [features(torch.nn.functional.one_hot(c, vocab).float()) for c in ids.split(256)]
        return torch.cat(parts)

    real = featurise(real_ids)
    adversarial = module.hparams.adversarial
    temperatures = TEMPERATURES if not adversarial else (getattr(generator, "temperature", None),)
    points = []
    for temperature in temperatures:
        set_temperature(generator, temperature)
        fake_ids = token_ids(
            generator, n, module.hparams.data_spec["sample_shape"], seeded(seed + 1)
        )
        values = measure_against_data(fake_ids, data, generator, seed=seed)
        point = {key: float(value) for key, value in values.items()}
        fake = featurise(fake_ids)
        point["jsd_knn"] = float(jensen_shannon(real, fake, k=3))
        point["entropy_gap_knn"] = float(entropy(fake, k=3) - entropy(real, k=3))
        point["unique"] = len(torch.unique(fake_ids, dim=0)) / n
        points.append({"temperature": temperature, **point})
    return points


def run_key(setting: str, variant: str, seed: int, steps: int, extra: Sequence[str]) -> dict:
    """What names one run (its overrides included, so a changed variant runs again)."""
    overrides = overrides_of(setting, variant, steps, extra)
    return {"setting": setting, "variant": variant, "seed": seed, "overrides": overrides}


def measure(setting: str, variant: str, seed: int, steps: int, extra: Sequence[str]) -> dict:
    """Train one variant once and measure it: its record (key, steps, wall and CPU seconds,
    the measured points, or the error that stopped it)."""
    key = run_key(setting, variant, seed, steps, extra)
    measured: list[dict] = []

    def keep(folder: Path) -> None:
        composed = [f"experiment={SETTINGS[setting]}", *key["overrides"]]
        measured.extend(measure_checkpoint(folder, composed, N_MEASURED, seed))

    fields, run = timed_training(SETTINGS[setting], seed, 1000, *key["overrides"], keep=keep)
    return {**key, **fields} | ({"points": measured} if run is not None else {})


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
        return measure(setting, key["variant"], key["seed"], steps, extra)

    return run_unrecorded(keys, run, records, lambda record: record["points"][-1])


def finished(done: list[dict], setting: str, variant: str) -> list[dict]:
    return [
        r for r in done if r["setting"] == setting and r["variant"] == variant and "points" in r
    ]


def points_at(runs: list[dict], temperature: float | None = None) -> list[dict]:
    """Each run's point at ``temperature`` (``None``: its only or first point)."""
    chosen = []
    for run in runs:
        points = run["points"]
        match = [p for p in points if temperature is None or p["temperature"] == temperature]
        if match:
            chosen.append(match[0])
    return chosen


def cell(points: list[dict], key: str, digits: int = 2) -> str:
    values = [p[key] for p in points if key in p and math.isfinite(p[key])]
    return mean_std(values, digits) if values else "—"


def distance_to_oracle(point: dict) -> float | None:
    """How far a generator is from the oracle's own point in the (entropy per token,
    NLL-oracle) plane, where the oracle sits at (H_p, H_p): the Euclidean distance in nats
    per token; ``None`` without the generator's exact entropy."""
    if "entropy_per_token_fake" not in point:
        return None
    h_p = point["entropy_per_token_oracle"]
    return math.hypot(point["nll_oracle"] - h_p, point["entropy_per_token_fake"] - h_p)


def oracle_table(done: list[dict]) -> str:
    """Every variant (maximum likelihood at each temperature) on the oracle."""
    header = ["variant", "seeds", "NLL-oracle", "NLL-test", "H(q)/token", "KL(p‖q)/token"]
    header += ["KL(q‖p)/token", "exact JSD", "k-NN JSD", "k-NN H_fake - H_real", "JS-1"]
    header += ["distance to oracle", "unique", "min/run"]
    rows = []
    for variant in VARIANTS:
        runs = finished(done, "oracle", variant)
        temperatures = TEMPERATURES if variant == "MLE" else (None,)
        for temperature in temperatures:
            points = points_at(runs, temperature)
            if not points:
                continue
            name = f"{variant}, τ={temperature:g}" if temperature is not None else variant
            distances = [d for d in map(distance_to_oracle, points) if d is not None]
            rows.append(
                [
                    name,
                    str(len(points)),
                    *(cell(points, key) for key in ("nll_oracle", "nll_test")),
                    cell(points, "entropy_per_token_fake"),
                    *(cell(points, key) for key in ("kl_oracle_generator", "kl_generator_oracle")),
                    cell(points, "jsd_exact", 3),
                    cell(points, "jsd_knn", 3),
                    cell(points, "entropy_gap_knn"),
                    cell(points, "js_1", 3),
                    mean_std(distances, 2) if distances else "—",
                    cell(points, "unique", 2),
                    f"{statistics.fmean(r['wall_s'] for r in runs) / 60:.1f}",
                ]
            )
    failed = [f"{r['variant']} seed {r['seed']}: {r['error']}" for r in done if "error" in r]
    notes = "\n\nFailed runs: " + "; ".join(failed) if failed else ""
    return markdown_table(header, rows) + notes


def anchors(done: list[dict]) -> str:
    """Our oracle's floor and our MLE beside the published NLL-oracle numbers."""
    mle = points_at(finished(done, "oracle", "MLE"), 1.0)
    rows = [[name, f"{value:.2f}", "published, their oracle"] for name, value in PUBLISHED.items()]
    if mle:
        floor = cell(mle, "entropy_per_token_oracle")
        rows.append(["our oracle's own entropy per token (the floor)", floor, "exact, ours"])
        rows.append(["our MLE, τ = 1", cell(mle, "nll_oracle"), "ours"])
    return markdown_table(["", "NLL-oracle (nats per token)", "source"], rows)


def frontier(done: list[dict]) -> str:
    """Each GAN against maximum likelihood's temperature frontier, seed by seed: MLE's
    NLL-oracle at the GAN's exact entropy per token (linear between temperatures), and how
    many seeds the GAN is strictly below it (beyond the frontier)."""
    mle = {r["seed"]: r["points"] for r in finished(done, "oracle", "MLE")}
    rows = []
    for variant in VARIANTS:
        if variant == "MLE":
            continue
        gaps = []
        for run in finished(done, "oracle", variant):
            point = run["points"][0]
            if run["seed"] not in mle or "entropy_per_token_fake" not in point:
                continue
            curve = sorted((p["entropy_per_token_fake"], p["nll_oracle"]) for p in mle[run["seed"]])
            at = interpolate(curve, point["entropy_per_token_fake"])
            if at is not None:
                gaps.append(point["nll_oracle"] - at)
        if gaps:
            below = sum(gap < 0 for gap in gaps)
            rows.append([variant, mean_std(gaps, 2, signed=True), f"{below} of {len(gaps)}"])
    header = ["variant", "NLL-oracle - MLE's at the same entropy", "seeds beyond MLE"]
    return markdown_table(header, rows) if rows else "No GAN with an exact entropy finished."


def interpolate(curve: list[tuple[float, float]], x: float) -> float | None:
    """``y`` at ``x`` on the piecewise-linear ``curve`` (sorted ``(x, y)`` points), or
    ``None`` outside its range (no extrapolation: the frontier is only known there)."""
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def plot(done: list[dict], path: Path) -> None:
    """The quality-diversity frontier: NLL-oracle against NLL-test, against the exact
    entropy per token (the oracle's own point marked), and against the k-NN entropy gap
    (where the Gulrajani model, without a likelihood, appears too)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("nll_test", "NLL-test (nats/token)"), ("entropy_per_token_fake", "H(q) per token")]
    panels.append(("entropy_gap_knn", "k-NN H_fake - H_real (token features)"))
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    mle = finished(done, "oracle", "MLE")
    for axis, (key, label) in zip(axes, panels, strict=True):
        xs, ys = [], []
        for temperature in TEMPERATURES:
            points = [p for p in points_at(mle, temperature) if key in p]
            if points:
                xs.append([p[key] for p in points])
                ys.append([p["nll_oracle"] for p in points])
        if xs:
            axis.errorbar(
                [statistics.fmean(x) for x in xs],
                [statistics.fmean(y) for y in ys],
                xerr=[statistics.pstdev(x) for x in xs],
                yerr=[statistics.pstdev(y) for y in ys],
                fmt="o-",
                color="black",
                label="MLE, τ = " + ", ".join(f"{t:g}" for t in TEMPERATURES),
            )
        for variant in VARIANTS:
            points = [p for p in points_at(finished(done, "oracle", variant)) if key in p]
            if variant == "MLE" or not points:
                continue
            axis.errorbar(
                statistics.fmean(p[key] for p in points),
                statistics.fmean(p["nll_oracle"] for p in points),
                xerr=statistics.pstdev(p[key] for p in points),
                yerr=statistics.pstdev(p["nll_oracle"] for p in points),
                fmt="s",
                label=variant,
            )
        if key == "entropy_per_token_fake" and mle:
            h_p = statistics.fmean(p["entropy_per_token_oracle"] for p in points_at(mle, 1.0))
            axis.plot([h_p], [h_p], "*", markersize=14, color="gold", label="the oracle")
        axis.set_xlabel(label)
        axis.set_ylabel("NLL-oracle (nats/token)")
        axis.grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    figure.suptitle("Text on the synthetic oracle: quality (NLL-oracle, lower is better)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def chars_table(done: list[dict]) -> str:
    """Every variant on character lines: n-gram JSDs against held-out lines, the real floor."""
    header = ["variant", "seeds", "JS-1", "JS-2", "JS-3", "JS-4", "JS-4 real floor"]
    header += ["NLL-test", "H(q)/char", "k-NN JSD", "unique", "min/run"]
    rows = []
    for variant in VARIANTS:
        runs = finished(done, "chars", variant)
        for temperature in TEMPERATURES if variant == "MLE" else (None,):
            points = points_at(runs, temperature)
            if not points:
                continue
            name = f"{variant}, τ={temperature:g}" if temperature is not None else variant
            rows.append(
                [
                    name,
                    str(len(points)),
                    *(cell(points, f"js_{n}", 3) for n in range(1, 5)),
                    cell(points, "js_4_real", 3),
                    cell(points, "nll_test"),
                    cell(points, "entropy_per_token_fake"),
                    cell(points, "jsd_knn", 3),
                    cell(points, "unique", 2),
                    f"{statistics.fmean(r['wall_s'] for r in runs) / 60:.1f}",
                ]
            )
    return markdown_table(header, rows)


def tables(done: list[dict], records: Path | None) -> str:
    parts = []
    if any(r["setting"] == "oracle" for r in done):
        parts += [oracle_table(done), "Anchors:\n\n" + anchors(done)]
        parts.append("Beyond maximum likelihood's frontier:\n\n" + frontier(done))
        if records is not None:
            picture = records.parent / records.stem / "frontier.png"
            plot(done, picture)
            shown = picture.relative_to(ROOT) if picture.is_relative_to(ROOT) else picture
            parts.append(f"Frontier plot: {shown}")
    if any(r["setting"] == "chars" for r in done):
        parts.append(chars_table(done))
    return "\n\n".join(parts)


def section(setting: str):
    def run(records: str | None, seeds: str | None, steps: str | None, variants: str | None):
        path = Path(records) if records else None
        chosen = [int(s) for s in seeds.split(",")] if seeds else SEEDS
        names = variants.split(";") if variants else tuple(VARIANTS)
        done = run_all(setting, chosen, int(steps or STEPS), (), path, names)
        return tables([r for r in done if r["setting"] == setting], path)

    return run


def dry(setting: str):
    def run(records: str | None, seeds: str | None, steps: str | None, variants: str | None):
        tiny_text = ["data.path=" + str(_tiny_text()), "data.val_size=0.3"]
        extra = [*(DRY_ORACLE if setting == "oracle" else tiny_text), *DRY]
        done = run_all(setting, (0,), 8, extra, None)
        return tables(done, None)

    return run


def _tiny_text() -> Path:
    import tempfile

    folder = Path(tempfile.mkdtemp())
    lines = [f"the quick brown fox {i} jumps over the lazy dog" for i in range(5000)]
    (folder / "lines.txt").write_text("\n".join(lines))
    return folder / "lines.txt"


def recorded(
    records: str | None, seeds: str | None, steps: str | None, variants: str | None
) -> str:
    if not records:
        raise SystemExit("recorded needs --records FILE")
    return tables(read_records(Path(records)), Path(records))


if __name__ == "__main__":
    run_sections(
        __doc__.splitlines()[0],
        {"oracle": section("oracle"), "chars": section("chars"), "recorded": recorded},
        "# Text benchmark (benchmarks/text.py)",
        dry_runs={"oracle": dry("oracle"), "chars": dry("chars")},
        options={
            "records": "a JSON-lines file keeping every finished run",
            "seeds": "comma-separated seeds (default 0,1,2)",
            "steps": f"generator steps per run (default {STEPS})",
            "variants": "semicolon-separated variant names (default: all)",
        },
    )
