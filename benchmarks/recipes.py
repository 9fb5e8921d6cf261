"""Recipes for the default run: which way of training a GAN on the 5,000 MNIST digits gives the
best samples at ``make train``'s budget (the same wall time on 2 CPU cores, within 20 %).

    python benchmarks/recipes.py real                 # the classifier, the real ceiling and floor
    python benchmarks/recipes.py --records benchmarks/results/recipes.jsonl runs
    python benchmarks/recipes.py --records benchmarks/results/recipes.jsonl recorded  # tables
    python benchmarks/recipes.py --dry-run runs       # tiny, to check it runs
    python benchmarks/recipes.py --seeds 0 --recipes "DCGAN (2016);ResNet" --records r.jsonl runs

Each recipe is an ``experiment=`` preset (``RECIPES``, ``conf/experiment/mnist5k_*.yaml``) that
sets its networks, loss, regularisers and number of epochs, chosen so that every preset takes
about the wall time of the 2016 DCGAN's 35 epochs (the default run before these recipes); the
table gives each one's time as a ratio to it. Each run trains its preset on the CPU for a seed,
then evaluates its last checkpoint with ``gan_je.evaluate`` (seeded): the 500 held-out digits
against as many generated ones for the Inception score and the Fréchet distance in the
features of gan_je's own digit classifier (``gan_je.modes.DigitClassifier`` trained on the
4,500 training digits, ``callbacks.class_scores``), each beside the held-out digits' own (the
ceiling, the floor), and the k-NN ``jsd`` of the run's metric; then ``N_HISTOGRAM`` generated
digits for the class histogram (its KL from uniform, its rarest and commonest class's share)
and the Inception score at that size, the issue's measure of the default run.

``real``: the digit classifier's accuracy on the held-out digits and the scores of the 500
held-out digits (the best a generator can reach: ``*_real`` in every run's record), of 500
training digits, and of 500 images of uniform noise, for three seeds of the classifier.

``--records FILE`` keeps every finished run in a JSON-lines file as it ends; runs already there
are not run again, and ``recorded`` makes the tables from the file alone.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from common import (
    evaluate_last_checkpoint,
    mean_std,
    paired_cells,
    read_records,
    run_sections,
    run_unrecorded,
    timed_training,
    train_config,
)

from gan_je.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
#: where the digit classifier is cached: the one evaluate reads (and ``real`` fits)
CACHE = ROOT / "outputs" / ".feature_cache"
SEEDS = (0, 1, 2)
#: recipe name: its experiment preset (conf/experiment/<preset>.yaml)
RECIPES = {
    "DCGAN (2016)": "mnist5k_dcgan",
    "+ DiffAugment": "mnist5k_diffaugment",
    "+ ADA": "mnist5k_ada",
    "+ hinge, SN": "mnist5k_sn_hinge",
    "+ EMA": "mnist5k_ema",
    "+ TTUR": "mnist5k_ttur",
    "ResNet, hinge": "mnist5k_resnet",
    "+ hinge, SN, DiffAugment, EMA": "mnist5k_sn_hinge_diffaugment_ema",
    "ResNet, hinge, DiffAugment, EMA": "mnist5k_resnet_diffaugment_ema",
}
BASELINE = "DCGAN (2016)"
#: the issue's goals for the default run: a share of the real held-out Inception score, and
#: every class's share of the samples within these bounds
GOAL_SHARE, GOAL_CLASS_SHARE = 0.9, (0.07, 0.13)
#: generated digits whose class histogram is reported: at the 500 of the held-out split each
#: class's share would vary by ± 1.3 % (binomial) about its own, as much as the goal's margin
N_HISTOGRAM = 5000
HISTOGRAM_KEYS = ("inception_score", "class_kl", "smallest_class", "largest_class")
#: --dry-run: a few steps
DRY = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "estimator.n_fake=100"]
DRY += ["callbacks.class_scores.epochs=1"]


def real(seeds: str | None = None, **_: str | None) -> str:
    """The scorer itself (see the module doc): for each classifier seed, its held-out
    accuracy and the scores of held-out digits, training digits and uniform noise."""
    import torch
    from hydra.utils import instantiate

    from gan_je.callbacks import ClassScores
    from gan_je.class_scores import fit_class_scorer

    cfg = train_config(ROOT, f"experiment={RECIPES[BASELINE]}")
    data = instantiate(cfg.data)
    data.prepare_data()
    data.setup("fit")
    settings = cfg.callbacks.class_scores
    n = min(settings.n_samples, len(data.val_set))
    noise = torch.rand(
        n, *data.data_spec["sample_shape"], generator=torch.Generator().manual_seed(0)
    )
    rows = []
    for seed in [int(s) for s in seeds.split(",")] if seeds else SEEDS:
        callback = ClassScores(
            n_samples=n,
            epochs=settings.epochs,
            network=settings.network,
            seed=seed,
            cache_dir=str(CACHE),
        )
        held_out, accuracy = fit_class_scorer(callback.scorer, data, n)
        rows.append([str(seed), f"{accuracy:.3f}"])
        for scores in (held_out, callback.scorer.scores(data.train_tensor(n))):
            rows[-1] += [f"{scores['inception_score']:.2f}", f"{scores['frechet_distance']:.1f}"]
        rows[-1] += [f"{held_out['smallest_class']:.3f}", f"{held_out['largest_class']:.3f}"]
        scores = callback.scorer.scores(noise * 2 - 1)
        rows[-1] += [f"{scores['inception_score']:.2f}", f"{scores['frechet_distance']:,.0f}"]
    header = ["classifier seed", "held-out accuracy", "IS held-out", "FD held-out"]
    header += ["IS training", "FD training", "smallest class, held-out"]
    header += ["largest class, held-out", "IS noise", "FD noise"]
    splits = f"{len(data.train_set)} training and {len(data.val_set)} held-out digits; {n} scored"
    return f"{splits}\n\n" + markdown_table(header, rows)


def run_key(recipe: str, seed: int, extra: Sequence[str]) -> dict:
    """What names one run (its overrides included, so a changed recipe runs again)."""
    return {"setting": "mnist5k", "variant": recipe, "seed": seed, "overrides": list(extra)}


def measure(recipe: str, seed: int, extra: Sequence[str]) -> dict:
    """Train one recipe once for its preset's epochs and evaluate it: its record (key, steps,
    wall and CPU seconds, the evaluation, or the error that stopped it). The evaluation's
    ``histogram`` holds the class scores of ``N_HISTOGRAM`` generated digits."""
    key = run_key(recipe, seed, extra)
    evaluation: dict = {}

    def keep(folder: Path) -> None:
        evaluation.update(evaluate_last_checkpoint(folder, seed))
        unequal = ("equal_sizes=false", f"n_samples={N_HISTOGRAM}")
        scores = evaluate_last_checkpoint(folder, seed, *unequal)["metrics"]
        evaluation["histogram"] = {key: scores[key] for key in HISTOGRAM_KEYS}

    epochs = int(train_config(ROOT, f"experiment={RECIPES[recipe]}").trainer.max_epochs)
    cache = f"callbacks.class_scores.cache_dir={CACHE}"  # the classifier fitted once, as evaluate's
    fields, run = timed_training(RECIPES[recipe], seed, epochs, cache, *extra, keep=keep)
    return {**key, **fields} | ({"evaluation": evaluation} if run is not None else {})


def run_all(
    recipes: Sequence[str], seeds: Sequence[int], extra: Sequence[str], records: Path | None
) -> list[dict]:
    """Run each of ``recipes`` on every seed not yet in ``records``; the records."""
    unknown = set(recipes) - set(RECIPES)
    if unknown:
        raise SystemExit(f"unknown recipes {sorted(unknown)}; choose from {list(RECIPES)}")
    keys = [run_key(recipe, seed, extra) for seed in seeds for recipe in recipes]

    def outcome(record: dict) -> str:
        values = record["evaluation"]["metrics"]
        return f"IS {values['inception_score']:.2f}, FD {values['frechet_distance']:.2f}"

    return run_unrecorded(
        keys, lambda key: measure(key["variant"], key["seed"], extra), records, outcome
    )


def metric(run: dict, key: str) -> float:
    return float(run["evaluation"]["metrics"].get(key, math.nan))


def histogram(run: dict, key: str) -> float:
    """A class score of the run's ``N_HISTOGRAM`` generated digits."""
    return float(run["evaluation"]["histogram"].get(key, math.nan))


def meets_goal(run: dict) -> bool:
    """The issue's goal for the default run: an Inception score within 10 % of the real
    held-out digits', every class between 7 % and 13 % of the samples."""
    low, high = GOAL_CLASS_SHARE
    share = metric(run, "inception_score") / metric(run, "inception_score_real")
    return (
        share >= GOAL_SHARE
        and histogram(run, "smallest_class") >= low
        and histogram(run, "largest_class") <= high
    )


def cell(values: list[float], digits: int = 2) -> str:
    values = [v for v in values if math.isfinite(v)]
    return mean_std(values, digits) if values else "—"


def table(done: list[dict]) -> str:
    """One row per recipe: mean ± std over seeds, the wall time against the baseline's, and on
    how many seeds the goal is met."""
    runs_of = {
        recipe: [r for r in done if r["variant"] == recipe and "evaluation" in r]
        for recipe in RECIPES
    }
    baseline = runs_of.get(BASELINE) or []
    base_wall = statistics.fmean(r["wall_s"] for r in baseline) if baseline else math.nan
    header = ["recipe", "seeds", "generator steps", "IS", "IS real", "FD", "FD real"]
    header += [f"IS, {N_HISTOGRAM:,}", f"class KL, {N_HISTOGRAM:,}", "smallest class"]
    header += ["largest class", "val/jsd", "goal met"]
    header += ["min/run", "time / baseline"]
    rows = []
    for recipe, runs in runs_of.items():
        if not runs:
            continue
        wall = statistics.fmean(r["wall_s"] for r in runs)
        rows.append(
            [
                recipe,
                str(len(runs)),
                f"{statistics.fmean(r['g_steps'] for r in runs):,.0f}",
                cell([metric(r, "inception_score") for r in runs]),
                cell([metric(r, "inception_score_real") for r in runs]),
                cell([metric(r, "frechet_distance") for r in runs]),
                cell([metric(r, "frechet_distance_real") for r in runs]),
                cell([histogram(r, "inception_score") for r in runs]),
                cell([histogram(r, "class_kl") for r in runs], 3),
                cell([histogram(r, "smallest_class") for r in runs], 3),
                cell([histogram(r, "largest_class") for r in runs], 3),
                cell([metric(r, "jsd") for r in runs], 3),
                f"{sum(meets_goal(r) for r in runs)} of {len(runs)}",
                f"{wall / 60:.1f}",
                f"{wall / base_wall:.2f}",
            ]
        )
    failed = [f"{r['variant']} seed {r['seed']}: {r['error']}" for r in done if "error" in r]
    notes = "\n\nFailed runs: " + "; ".join(failed) if failed else ""
    return markdown_table(header, rows) + notes


COMPARED = (
    ("IS", lambda run: metric(run, "inception_score"), 2, True),
    ("FD", lambda run: metric(run, "frechet_distance"), 1, False),
    (f"class KL, {N_HISTOGRAM:,}", lambda run: histogram(run, "class_kl"), 3, False),
    ("smallest class", lambda run: histogram(run, "smallest_class"), 3, True),
    ("val/jsd", lambda run: metric(run, "jsd"), 3, False),
)


def against_baseline(done: list[dict]) -> str:
    """Each recipe minus the baseline on the same seed (the same data order and scoring
    latents): the mean ± std of the differences and on how many seeds the recipe is the
    better (:func:`common.paired_cells`)."""
    by_seed: dict[str, dict[int, dict]] = {}
    for run in done:
        if "evaluation" in run:
            by_seed.setdefault(run["variant"], {})[run["seed"]] = run
    baseline = by_seed.get(BASELINE, {})
    rows = []
    for recipe in RECIPES:
        seeds = set(by_seed.get(recipe, {})) & set(baseline)
        if recipe == BASELINE or not seeds:
            continue
        cells, _ = paired_cells(by_seed[recipe], baseline, COMPARED)
        rows.append([recipe, str(len(seeds)), *cells])
    if not rows:
        return "No recipe has a seed in common with the baseline yet."
    header = [f"recipe - {BASELINE}", "seeds", *(name for name, *_ in COMPARED)]
    note = (
        "(n/m): better than the baseline on n of m seeds, ties neither. Three wins of three "
        "give a two-sided sign test p = 0.25: three seeds rank the recipes, they prove nothing."
    )
    return markdown_table(header, rows) + "\n\n" + note


def runs(
    records: str | None = None,
    seeds: str | None = None,
    recipes: str | None = None,
    **_: str | None,
) -> str:
    chosen = [int(s) for s in seeds.split(",")] if seeds else SEEDS
    names = recipes.split(";") if recipes else list(RECIPES)
    done = run_all(names, chosen, (), Path(records) if records else None)
    return table(done) + "\n\n" + against_baseline(done)


def dry_runs(**_: str | None) -> str:
    return table(run_all([BASELINE], (0,), DRY, None))


def recorded(records: str | None = None, **_: str | None) -> str:
    if not records:
        raise SystemExit("recorded needs --records FILE")
    done = read_records(Path(records))
    return table(done) + "\n\n" + against_baseline(done)


if __name__ == "__main__":
    run_sections(
        __doc__.splitlines()[0],
        {"real": real, "runs": runs, "recorded": recorded},
        "# Recipes for the default run (benchmarks/recipes.py)",
        dry_runs={"runs": dry_runs},
        options={
            "records": "JSON-lines file of finished runs",
            "seeds": "e.g. 0,1,2",
            "recipes": "names separated by ;",
        },
    )
