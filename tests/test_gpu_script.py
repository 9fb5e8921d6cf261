"""benchmarks/gpu.sh: its dry run on the CPU, and its time budget and failure handling with a
stand-in interpreter whose commands sleep or fail."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"
TITLES = [
    "1. CUDA tests",
    "2. exact k-NN search on the GPU",
    "3. training throughput by precision",
    "4. make train's experiment on the GPU",
    "5. experiment=stacked_mnist benchmark",
]


def run_script(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )


def sections(report: Path) -> dict[str, str]:
    """The report's ``## `` sections, by title."""
    parts = re.split(r"^## (.+)$", report.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def stand_in_python(tmp_path: Path, pytest_command: str) -> Path:
    """An interpreter whose ``-m pytest`` runs ``pytest_command`` and whose every other
    command fails with status 3."""
    python = tmp_path / "python"
    python.write_text(
        f'#!/usr/bin/env bash\ncase "$*" in *"-m pytest"*) {pytest_command} ;; esac\nexit 3\n'
    )
    python.chmod(0o755)
    return python


@pytest.mark.slow
def test_a_step_out_of_time_stops_and_the_rest_are_skipped(tmp_path):
    report = tmp_path / "report.md"
    python = stand_in_python(tmp_path, "sleep 60")
    done = run_script("--budget", "2", "--report", str(report), "--python", str(python))
    assert done.returncode == 1
    found = sections(report)
    assert list(found) == TITLES
    assert re.search(r"\*\*timed out\*\* in [1-3] s", found[TITLES[0]])
    for title in TITLES[1:4]:
        assert found[title].strip().endswith("skipped: out of time"), title
    last, footer = found[TITLES[4]].split("---")  # the report's footer closes the last step
    assert last.strip().endswith("skipped: out of time")
    assert "Steps that failed or timed out: 1." in footer


def test_a_failing_step_does_not_stop_the_next(tmp_path):
    report = tmp_path / "report.md"
    python = stand_in_python(tmp_path, "echo 'some test failed' >&2; exit 1")
    done = run_script("--report", str(report), "--python", str(python))
    assert done.returncode == 1
    found = sections(report)
    assert "**failed (exit status 1)**" in found[TITLES[0]]
    assert "some test failed" in found[TITLES[0]]  # the error output's tail
    for title in TITLES[1:]:
        assert "**failed (exit status 3)**" in found[title], title
    assert "Steps that failed or timed out: 1 2 3 4 5." in found[TITLES[4]]
    # every step's exact command, with the interpreter it was given
    assert f"{python} benchmarks/estimators.py gpu\n" in found[TITLES[1]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "0"], "--budget must be a positive whole number"),
        (["--budget", "8m"], "--budget must be a positive whole number"),
        (["--gpu"], "unknown option '--gpu'"),
    ],
)
def test_bad_options_are_refused(args, message):
    done = run_script(*args)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.slow
def test_dry_run_runs_every_step_on_the_cpu(tmp_path):
    report = tmp_path / "report.md"
    done = run_script("--dry-run", "--report", str(report), timeout=600)
    assert done.returncode == 0, report.read_text()[-3000:]
    header, found = report.read_text().split("\n## ")[0], sections(report)
    for field in ("- device: ", "- date: 20", "- commit: ", "- mode: dry run"):
        assert field in header
    assert list(found) == TITLES
    for title in TITLES:
        assert "**passed**" in found[title], title
        assert "```bash\n" in found[title], title
    assert "needs a CUDA device" in found[TITLES[0]]  # the CUDA tests ran, and skipped
    knn = found[TITLES[1]]
    assert "| quantity | N | d | backend | precision | seconds | peak GPU GiB |" in knn
    for precision in ("highest", "tf32", "bf16"):
        assert f"| entropy | 2,000 | 8 | torch | {precision} |" in knn
        assert f"| jensen_shannon | 2,000 | 8 | auto | {precision} |" in knn
    assert "| NO |" not in knn  # every precision and backend gave the same bits
    throughput = found[TITLES[2]]
    assert "| precision | plain loop: G steps / s | GANModule: G steps / s |" in throughput
    for precision in ("32-true", "16-mixed", "bf16-mixed"):
        assert f"| {precision} | " in throughput
    assert "| finished | 3 | 1 |" in found[TITLES[3]]  # status, generator steps, validations
    stacked = found[TITLES[4]]
    assert "| small_d, 3 steps | seeds | modes (of 1,000) |" in stacked
    for variant in ("plain", "entropy matching", "PacGAN4"):
        assert f"| {variant} | 1 | " in stacked
