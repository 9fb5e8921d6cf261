"""``python -m gan_je.report <sweep dir>``: a table and plots of a finished or running sweep.

Reads every job's ``summary.json`` and ``metrics.csv`` (no network, no W&B) under the sweep
directory and writes, next to them (or into ``--out``):

- ``report.md`` and ``report.csv``: one row per job — its overrides, status, final and best
  ``val/jsd``, final entropies, generator steps, wall time;
- ``jsd.png`` and ``entropy_fake.png``: ``val/jsd`` and ``val/entropy_fake`` per validation
  for every job;
- ``settings.png``: mean ± std over seeds of both curves per setting (a setting is a job's
  overrides without ``seed=``).

It also prints the table and a per-setting summary. Jobs without a summary yet (still
starting) or with a failed status are listed as such; a job whose ``summary.json`` or
``metrics.csv`` cannot be read (cut short, edited) is listed as ``unreadable``, named with the
reason under the table, and the report goes on with the others. A job whose
``summary.json`` still says ``running`` although no process holds its directory was killed:
its summary is corrected to ``killed`` (:func:`gan_je.run_directory.correct_killed_run`).

The evaluations of the jobs' checkpoints (``python -m gan_je.evaluate``, one record each in
``<job>/checkpoints/evaluations/``, :mod:`gan_je.evaluation_records`) are listed in a table
of their own, one row per record, with the record's path.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan_je.checks import check_writable, is_real
from gan_je.errors import GanJeError, RecordError
from gan_je.evaluation_records import FOLDER, features_name, read_records
from gan_je.metrics_csv import read_metrics
from gan_je.overrides import without_seed
from gan_je.redaction import public_overrides
from gan_je.run_directory import correct_killed_run
from gan_je.tables import markdown_table

CURVES = ("val/jsd", "val/entropy_fake")


@dataclass
class Job:
    """One run directory of a sweep."""

    path: Path
    label: str  # the path relative to the sweep directory, e.g. "3" or "lsgan/0"
    overrides: list[str]
    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, float]] = field(default_factory=list)
    setting: str = ""  # the overrides that tell jobs apart, without the seed (load_jobs)
    problem: str = ""  # why its records are unreadable (status "unreadable")

    @property
    def name(self) -> str:
        return " ".join(self.overrides) or self.label


def _read_overrides(run: Path) -> list[str]:
    """The job's command-line overrides from Hydra's ``.hydra/overrides.yaml``."""
    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    return [line[2:].strip().strip("'\"") for line in lines if line.startswith("- ")]


#: The fields of a summary the report reads, with their types: each may be absent, none null.
SUMMARY_FIELDS = {
    "status": (str, "a string"),
    "final": (dict, "a dict"),
    "best": (dict, "a dict"),
    "g_steps": (int, "a whole number"),
    "wall_time_s": (int | float, "a number"),
    "overrides": (list, "a list"),
}


def _read_summary(path: Path) -> dict[str, Any]:
    """A job's ``summary.json`` (``{}`` when there is none yet), its fields checked: a file
    cut short, or a field of another type (``"final": null`` or a list), is an
    :class:`RecordError` naming the file and the field."""
    if not path.is_file():
        return {}
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as err:  # a file cut short, or not text
        raise RecordError(f"{path} is not readable JSON ({err})") from None
    if not isinstance(summary, dict):
        raise RecordError(f"{path} holds a {type(summary).__name__}, not a summary")
    for key, (kind, name) in SUMMARY_FIELDS.items():
        value = summary.get(key)
        if key in summary and (not isinstance(value, kind) or isinstance(value, bool)):
            raise RecordError(f"{path}: {key!r} is {value!r}, not {name}")
    for key in ("final", "best"):
        for metric, value in summary.get(key, {}).items():
            if value is not None and not is_real(value):
                raise RecordError(f"{path}: {key}[{metric!r}] is {value!r}, not a number")
    return summary


def _read_rows(path: Path) -> list[dict[str, float | str]]:
    """A job's ``metrics.csv`` rows (:func:`gan_je.metrics_csv.read_metrics`, whose
    :class:`RecordError` names a damaged file), each with a ``g_step``."""
    rows = read_metrics(path)
    if any("g_step" not in row for row in rows):
        raise RecordError(f"{path} has rows without a g_step")
    return rows


def _natural_order(path: Path) -> list[tuple[int, int | str]]:
    """Sort key putting job 2 before job 10 (numbers as numbers, names after them)."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in path.parts]


def load_jobs(sweep_dir: str | Path) -> list[Job]:
    """Every job under ``sweep_dir`` (a directory with ``.hydra/`` or ``summary.json``),
    ordered by path; a single run directory is a sweep of one. A job's ``setting`` is its
    overrides minus those all jobs share and minus the seed, so jobs that differ only by
    seed share a setting."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no sweep directory at {root}")
    runs = {p.parent for p in root.rglob("summary.json")}
    runs |= {p.parent for p in root.rglob(".hydra") if p.is_dir()}
    if not runs:
        raise FileNotFoundError(
            f"{root} holds no gan_je runs (no summary.json or .hydra/ below it); pass the "
            f"sweep directory printed by `python -m gan_je.train -m ...`"
        )
    jobs = []
    for run in sorted(runs, key=_natural_order):
        label = str(run.relative_to(root)) if run != root else run.name
        correct_killed_run(run)  # a summary left "running" by a killed job says "killed"
        try:
            summary, rows = _read_summary(run / "summary.json"), _read_rows(run / "metrics.csv")
        except RecordError as err:  # the other jobs are still reported
            overrides = public_overrides(_read_overrides(run))
            jobs.append(Job(run, label, overrides, "unreadable", problem=str(err)))
            continue
        overrides = public_overrides(summary.get("overrides") or _read_overrides(run))
        status = summary.get("status", "starting")
        jobs.append(Job(run, label, overrides, status, summary, rows))
    shared = set.intersection(*(set(job.overrides) for job in jobs))
    for job in jobs:
        kept = [item for item in without_seed(job.overrides) if item not in shared]
        job.setting = " ".join(kept) or "(all jobs)"
    return jobs


def job_rows(jobs: list[Job]) -> list[dict[str, Any]]:
    """The report table: one dict per job."""
    table = []
    for job in jobs:
        final, best = job.summary.get("final", {}), job.summary.get("best", {})
        table.append(
            {
                "job": job.label,
                "overrides": job.name,
                "status": job.status,
                "final val/jsd": final.get("val/jsd"),
                "best val/jsd": best.get("val/jsd"),
                "val/entropy_real": final.get("val/entropy_real"),
                "val/entropy_fake": final.get("val/entropy_fake"),
                "g_steps": job.summary.get("g_steps", len(job.rows) and job.rows[-1]["g_step"]),
                "wall_time_s": job.summary.get("wall_time_s"),
            }
        )
    return table


def evaluation_rows(jobs: list[Job], sweep_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per evaluation record of the jobs' checkpoints (``<job>/checkpoints/
    evaluations/*.json``), with its path relative to ``sweep_dir``; and, for a job whose
    records cannot be read, why."""
    rows, problems = [], []
    for job in jobs:
        try:
            records = read_records(job.path / "checkpoints" / FOLDER)
        except RecordError as err:  # the other jobs' records are still listed
            problems.append(f"- job {job.label}: {err}\n")
            continue
        for path, record in records:
            metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
            rows.append(
                {
                    "job": job.label,
                    "record": str(path.relative_to(sweep_dir)),
                    "g_step": record.get("g_step"),
                    "split": record.get("split"),
                    "features": features_name(record.get("features")),
                    "n_generated": record.get("n_generated"),
                    "jsd": metrics.get("jsd"),
                    "jsd_se": metrics.get("jsd_se"),
                }
            )
    return rows, problems


def setting_rows(jobs: list[Job]) -> list[dict[str, Any]]:
    """Mean ± std of the final ``val/jsd`` and ``val/entropy_fake`` over each setting's
    finished jobs."""
    groups: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        groups[job.setting].append(job)
    table = []
    for setting, members in groups.items():
        finished = [job for job in members if job.status == "finished"]
        row: dict[str, Any] = {"setting": setting, "jobs": len(members), "finished": len(finished)}
        for key in CURVES:
            finals = [job.summary.get("final") or {} for job in finished]  # none: no values
            values = [final[key] for final in finals if key in final]
            row[f"{key} mean"] = statistics.fmean(values) if values else None
            row[f"{key} std"] = statistics.stdev(values) if len(values) > 1 else None
        table.append(row)
    return table


def markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of a list of dicts with the same keys."""
    if not rows:
        return "(no rows)"
    return markdown_table(list(rows[0]), [list(row.values()) for row in rows])


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_jobs(jobs: list[Job], key: str, path: Path) -> None:
    """``key`` against generator steps, one line per job."""
    from matplotlib.figure import Figure  # only for pictures: --help answers at once

    fig = Figure(figsize=(8, 5), dpi=100)
    ax = fig.subplots()
    for job in jobs:
        curve = _curve(job, key)
        if curve:
            label = f"{job.label}: {job.name}"[:60]
            ax.plot(list(curve), list(curve.values()), marker=".", label=label)
    ax.set(xlabel="generator step", ylabel=key, title=f"{key} per job")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path)


def _curve(job: Job, key: str) -> dict[float, float]:
    """``{g_step: value}`` of ``key`` over the job's validations."""
    return {row["g_step"]: row[key] for row in job.rows if key in row}


def plot_settings(jobs: list[Job], path: Path) -> None:
    """Mean ± std over seeds per setting of every curve in :data:`CURVES`, on the
    generator steps all of the setting's jobs reached."""
    from matplotlib.figure import Figure  # only for pictures: --help answers at once

    groups: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        if job.rows:
            groups[job.setting].append(job)
    fig = Figure(figsize=(12, 4.5), dpi=100)
    axes = fig.subplots(1, len(CURVES))
    for ax, key in zip(axes, CURVES, strict=True):
        for setting, members in groups.items():
            curves = [
                {row["g_step"]: row[key] for row in job.rows if key in row} for job in members
            ]
            steps = sorted(set.intersection(*(set(curve) for curve in curves)))
            if not steps:
                continue
            mean = [statistics.fmean(curve[s] for curve in curves) for s in steps]
            spread = [
                statistics.stdev(curve[s] for curve in curves) if len(curves) > 1 else 0.0
                for s in steps
            ]
            line = ax.plot(steps, mean, label=f"{setting} (n={len(curves)})"[:60])[0]
            low = [m - s for m, s in zip(mean, spread, strict=True)]
            high = [m + s for m, s in zip(mean, spread, strict=True)]
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
        ax.set(xlabel="generator step", ylabel=key, title=f"{key}: mean ± std over seeds")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path)


def report(sweep_dir: str | Path, out: str | Path | None = None) -> str:
    """Write the report files for ``sweep_dir`` into ``out`` (default: the sweep directory)
    and return the text printed to the terminal."""
    jobs = load_jobs(sweep_dir)
    out = Path(out) if out is not None else Path(sweep_dir)
    check_writable(out / "report.md", "pass --out <a folder you can write>")
    out.mkdir(parents=True, exist_ok=True)
    per_job, per_setting = job_rows(jobs), setting_rows(jobs)
    text = f"# Sweep report: {Path(sweep_dir)}\n\n## Jobs\n\n{markdown(per_job)}\n\n"
    text += f"## Settings (final values, mean ± std over seeds)\n\n{markdown(per_setting)}\n"
    unreadable = [f"- job {job.label}: {job.problem}\n" for job in jobs if job.problem]
    if unreadable:
        text += "\n## Unreadable records (no values shown for these jobs)\n\n" + "".join(unreadable)
    evaluations, problems = evaluation_rows(jobs, Path(sweep_dir))
    if evaluations or problems:
        text += (
            "\n## Evaluations (`python -m gan_je.evaluate`: one record each in "
            f"<job>/checkpoints/{FOLDER}/)\n\n{markdown(evaluations)}\n"
        )
        if problems:
            text += "\nUnreadable evaluation records:\n\n" + "".join(problems)
    (out / "report.md").write_text(text)
    write_csv(per_job, out / "report.csv")
    plot_jobs(jobs, "val/jsd", out / "jsd.png")
    plot_jobs(jobs, "val/entropy_fake", out / "entropy_fake.png")
    plot_settings(jobs, out / "settings.png")
    counts = defaultdict(int)
    for job in jobs:
        counts[job.status] += 1
    status = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    return f"{text}\n{len(jobs)} jobs ({status}); files in {out}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gan_je.report", description=__doc__)
    parser.add_argument("sweep_dir", help="a sweep (or run) directory under outputs/")
    parser.add_argument("--out", default=None, help="where to write (default: sweep_dir)")
    args = parser.parse_args(argv)
    try:
        print(report(args.sweep_dir, args.out))
    except (FileNotFoundError, GanJeError) as err:
        parser.exit(1, f"gan_je.report: {err}\n")


if __name__ == "__main__":
    main()
