"""benchmarks/recipes.py's tables: each recipe against the baseline on the same seed."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module("recipes")


def run(recipe: str, seed: int, inception: float, frechet: float, smallest: float) -> dict:
    metrics = {"inception_score": inception, "frechet_distance": frechet, "jsd": 0.2}
    histogram = {"class_kl": 0.1, "smallest_class": smallest}
    return {
        "variant": recipe,
        "seed": seed,
        "evaluation": {"metrics": metrics, "histogram": histogram},
    }


def cells_of(table: str, recipe: str) -> list[str]:
    row = next(line for line in table.splitlines() if line.startswith(f"| {recipe} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_recipes_are_paired_with_the_baseline_on_the_same_seed(bench) -> None:
    base, recipe = bench.BASELINE, "+ hinge, SN"
    done = [run(base, 0, 6.0, 200.0, 0.03), run(base, 1, 7.0, 150.0, 0.05)]
    done += [run(base, 2, 9.0, 10.0, 0.09)]  # no recipe run on seed 2: not paired
    done += [run(recipe, 0, 6.5, 180.0, 0.06), run(recipe, 1, 6.9, 120.0, 0.05)]
    done += [{"variant": "+ EMA", "seed": 0, "error": "diverged"}]  # failed: no row
    table = bench.against_baseline(done)
    cells = cells_of(table, recipe)
    assert cells[1] == "2"
    assert cells[2] == "+0.20 ± 0.42 (1/2)"  # IS +0.5, -0.1
    assert cells[3] == "-25.0 ± 7.1 (2/2)"  # a lower FD is better
    assert cells[5] == "+0.015 ± 0.021 (1/2)"  # smallest class +0.03, a tie
    assert "+ EMA" not in table and f"| {base} |" not in table
    assert "no recipe has a seed in common" in bench.against_baseline(done[:3]).lower()
