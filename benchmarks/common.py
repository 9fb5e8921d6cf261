"""What the benchmark scripts share: the section command line and the
training config composed as ``python -m gan_je.train`` would."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import gan_je  # noqa: F401  (registers the resolvers the configs use)

CONF = Path(__file__).resolve().parents[1] / "conf"


def train_config(output_dir: str | Path, *overrides: str) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, the run directory at ``output_dir``."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[
                f"paths.root_dir={output_dir}",
                f"paths.output_dir={output_dir}",
                *overrides,
            ],
        )


def train_quietly(
    experiment: str,
    seed: int,
    epochs: int,
    *overrides: str,
    keep: Callable[[Path], None] | None = None,
) -> dict[str, Any]:
    """Train ``experiment=<experiment>`` for ``epochs`` with ``overrides`` (on the CPU unless
    they set ``trainer.accelerator``), without logger or progress bar, in a temporary
    folder; return the run's summary. ``keep`` is called with the run's folder before it is
    removed (to copy what should stay)."""
    from gan_je.train import train  # Lightning: only for the benchmarks that train

    with tempfile.TemporaryDirectory() as folder:
        cfg = train_config(
            folder,
            f"experiment={experiment}",
            f"seed={seed}",
            f"trainer.max_epochs={epochs}",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false",
            "~callbacks.progress",
            "logger=none",
            *overrides,
        )
        summary = train(cfg)
        if keep is not None:
            keep(Path(folder))
        return summary


def timed_training(
    experiment: str,
    seed: int,
    epochs: int,
    *overrides: str,
    keep: Callable[[Path], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """:func:`train_quietly`, timed: the fields a benchmark records of the run (``threads``,
    ``g_steps``, ``wall_s`` and ``cpu_s``, or the divergence that stopped it as ``error``)
    and the run's summary (``None`` when it diverged). A divergence is a result, recorded and
    not retried; any other error, a stop by a signal included, ends the benchmark."""
    import torch

    from gan_je.errors import DivergenceError

    fields: dict[str, Any] = {"threads": torch.get_num_threads()}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        run = train_quietly(experiment, seed, epochs, *overrides, keep=keep)
    except DivergenceError as err:
        run, fields["error"] = None, f"diverged: {err}"
    else:
        fields["g_steps"] = run["g_steps"]
    fields["wall_s"] = round(time.perf_counter() - wall, 1)
    fields["cpu_s"] = round(time.process_time() - cpu, 1)
    return fields, run


def evaluate_last_checkpoint(folder: Path, seed: int, *overrides: str) -> dict[str, Any]:
    """``gan_je.evaluate`` of the run in ``folder`` (its ``checkpoints/last.ckpt``) on the CPU,
    seeded, with ``overrides`` (e.g. ``n_samples=1000``): what a benchmark records of it,
    ``metrics``, ``n_generated``, ``n_real`` and ``g_step``. Classifiers are cached in the
    repository's ``outputs/``."""
    from gan_je.evaluate import evaluate  # Lightning: only for the benchmarks that train

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="evaluate",
            overrides=[
                f"ckpt_path={folder / 'checkpoints' / 'last.ckpt'}",
                f"seed={seed}",
                "device=cpu",
                f"paths.log_dir={CONF.parent / 'outputs'}",
                *overrides,
            ],
        )
    result = evaluate(cfg)
    return {key: result[key] for key in ("metrics", "n_generated", "n_real", "g_step")}


def read_records(path: Path | None) -> list[dict]:
    """The runs recorded in the JSON-lines file ``path`` (none when it does not exist)."""
    if path is None or not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_records(path: Path | None, records: list[dict]) -> None:
    """Replace the JSON-lines file ``path`` by ``records`` in one step (nothing for ``None``),
    so that an interrupted benchmark keeps every run that finished."""
    from gan_je.atomic_files import write_atomically

    if path is not None:
        write_atomically(path, "".join(json.dumps(record) + "\n" for record in records))


def run_unrecorded(
    keys: list[dict[str, Any]],
    measure: Callable[[dict[str, Any]], dict[str, Any]],
    records: Path | None,
    outcome: Callable[[dict[str, Any]], Any],
) -> list[dict[str, Any]]:
    """The records of ``keys``' runs: those of the JSON-lines file ``records`` (a record is a
    key's when it holds every item of it), and ``measure(key)`` for each key without one,
    added to the file as it ends (:func:`write_records`) and reported on stderr with
    ``outcome(record)``. So an interrupted benchmark continues where it stopped."""
    done = read_records(records)
    for key in keys:
        if any(key.items() <= record.items() for record in done):
            continue
        done.append(measure(key))
        write_records(records, done)
        shown = done[-1].get("error") or outcome(done[-1])
        print(f"  {key['setting']} {key['variant']} seed {key['seed']}: {shown}", file=sys.stderr)
    return done


class MeasurementError(Exception):
    """Raised by a section some of whose measurements failed: its ``table`` (with the
    failures marked) is still printed, then the script exits with status 1."""

    def __init__(self, table: str, message: str) -> None:
        super().__init__(message)
        self.table = table


def run_sections(
    description: str,
    sections: dict[str, Callable[..., str]],
    banner: str,
    dry_runs: dict[str, Callable[..., str]] | None = None,
    options: dict[str, str] | None = None,
) -> None:
    """Parse ``[--dry-run] [--<option> VALUE ...] [section ...]`` from the command line
    (default: all sections), print ``banner`` and each chosen section's table under a ``##``
    heading.

    ``--dry-run`` runs each chosen section's entry in ``dry_runs`` instead: the same code at
    tiny sizes on the CPU, so that ``benchmarks/gpu.sh --dry-run`` checks it works.
    ``options``: ``{name: help}`` of string options; every section (and dry run) is then
    called with them as keyword arguments (``None`` when not given).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("sections", nargs="*", help=f"any of {list(sections)} (default: all)")
    for name, help_text in (options or {}).items():
        parser.add_argument(f"--{name}", help=help_text)
    if dry_runs:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=f"tiny sizes on the CPU, to check the code runs (sections {list(dry_runs)})",
        )
    args = parser.parse_args()
    unknown = set(args.sections) - set(sections)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {list(sections)}")
    chosen = args.sections or list(sections)
    if getattr(args, "dry_run", False):
        missing = [name for name in chosen if name not in dry_runs]
        if missing:
            parser.error(f"no dry run for {missing}; choose from {list(dry_runs)}")
        sections = dry_runs
    print(banner)
    failed = []
    for name in chosen:
        try:
            table = sections[name](**{key: getattr(args, key) for key in options or {}})
        except MeasurementError as err:
            table = err.table
            failed.append(f"{name}: {err}")
        print(f"\n## {name}\n\n{table}", flush=True)
    if failed:
        sys.exit("failed: " + "; ".join(failed))


def mean_std(values: list[float], digits: int, signed: bool = False) -> str:
    """``mean ± std`` of ``values`` rounded to ``digits``; one value alone, without a spread
    it does not have. ``signed``: the mean with its sign (``+0.12``), for differences."""
    mean = f"{statistics.fmean(values):{'+' if signed else ''}.{digits}f}"
    if len(values) == 1:
        return mean
    return f"{mean} ± {statistics.stdev(values):.{digits}f}"


def better_and_worse(diffs: list[float], more_is_better: bool) -> tuple[int, int]:
    """How many of the differences ``diffs`` (variant - plain) favour the variant, and how
    many favour plain; ties count as neither."""
    better = sum((d > 0) if more_is_better else (d < 0) for d in diffs)
    worse = sum((d < 0) if more_is_better else (d > 0) for d in diffs)
    return better, worse


def paired_cell(diffs: list[float], digits: int, more_is_better: bool) -> str:
    """Differences variant - plain as ``mean ± std (n/m)``: better on n of m seeds (a tie is
    not better)."""
    better, _ = better_and_worse(diffs, more_is_better)
    return f"{mean_std(diffs, digits, signed=True)} ({better}/{len(diffs)})"


def paired_cells(
    runs: dict[int, dict], plain: dict[int, dict], compared: Sequence[tuple]
) -> tuple[list[str], list[list[float]]]:
    """A variant against plain on the seeds both ran (``runs`` and ``plain`` by seed): for each
    measure of ``compared`` (name, the number of a run, digits, whether more is better), the
    :func:`paired_cell` of the differences variant - plain, and the differences."""
    seeds = sorted(set(runs) & set(plain))
    if not seeds:
        raise ValueError(f"no seed in common: runs of seeds {sorted(runs)}, plain {sorted(plain)}")
    cells, differences = [], []
    for _, number, digits, more_is_better in compared:
        diffs = [number(runs[seed]) - number(plain[seed]) for seed in seeds]
        cells.append(paired_cell(diffs, digits, more_is_better))
        differences.append(diffs)
    return cells, differences


def sign_test(better: int, worse: int) -> float:
    """The exact two-sided sign test's p-value: the probability, were variant and plain
    equally likely to win each pair, of a split at least as uneven as ``better`` :
    ``worse`` (ties dropped; Dixon & Mood 1946). p = min(1, 2 · P(X ≤ min(b, w))), X ~
    Binomial(b + w, 1/2). Six wins of six give 2/64 = 0.031; three of three, 0.25."""
    if better < 0 or worse < 0:
        raise ValueError(f"counts must be >= 0, got {better} better and {worse} worse")
    n = better + worse
    tail = sum(math.comb(n, k) for k in range(min(better, worse) + 1)) / 2**n
    return min(1.0, 2 * tail)
