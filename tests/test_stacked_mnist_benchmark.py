"""benchmarks/stacked_mnist.py's records: a rerun skips recorded runs and continues after a
failure, the tables are the statistics of the recorded runs, and each variant leaves one
sample grid. Training is replaced by a stand-in whose results are known."""

from __future__ import annotations

import importlib
import json
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("plain", "PacGAN2")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module("stacked_mnist")


def final(variant: str, seed: int) -> dict[str, float]:
    """The stand-in's final validation: distinct for every variant and seed."""
    offset = 10 * VARIANTS.index(variant) + seed
    return {
        "val/modes_covered": 900.0 + offset,
        "val/mode_kl": 0.5 + offset / 100,
        "val/high_quality": 0.1 + offset / 1000,
        "val/jsd": 0.2 + offset / 1000,
        "val/entropy_fake": 20.0 + offset / 10,
        "val/entropy_real": 21.05,  # PacGAN2's gaps straddle 0: -0.05, 0.05, 0.15
        "val/counter_accuracy": 0.97,
    }


def compared(modes: float, kl: float, high: float, jsd: float) -> dict[str, float]:
    """A final validation with the numbers the paired tables compare."""
    return {
        "val/modes_covered": modes,
        "val/mode_kl": kl,
        "val/high_quality": high,
        "val/jsd": jsd,
    }


def row_cells(table: str, start: str) -> list[str]:
    """The cells of the first row of the Markdown ``table`` that begins ``| {start} |``."""
    row = next(line for line in table.splitlines() if line.startswith(f"| {start} |"))
    return [cell.strip() for cell in row.strip("|").split("|")]


class StandIn:
    """``measure`` without training: it records its calls, and fails on ``fail_on``."""

    def __init__(self, bench, fail_on: tuple[str, int] | None = None) -> None:
        self.bench, self.fail_on, self.calls = bench, fail_on, []

    def __call__(self, setting, variant, seed, epochs, extra, picture=None) -> dict:
        if (variant, seed) == self.fail_on:
            raise RuntimeError("stopped by a signal")
        self.calls.append((variant, seed, picture))
        if picture is not None:
            picture.parent.mkdir(parents=True, exist_ok=True)
            picture.write_bytes(b"png")
        record = {**self.bench.run_key(setting, variant, seed, epochs, extra), "code": "abc1234"}
        return record | {
            "g_steps": 781,
            "final": final(variant, seed),
            "wall_s": 60.0 * (1 + seed),
            "cpu_s": 120.0,
        }


def test_rerun_skips_recorded_runs_and_continues_after_a_failure(
    bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    records = tmp_path / "runs.jsonl"
    failing = StandIn(bench, fail_on=("PacGAN2", 1))
    monkeypatch.setattr(bench, "measure", failing)
    with pytest.raises(RuntimeError, match="signal"):
        bench.evaluate("small_d", [0, 1], 1, (), records, VARIANTS)
    # seed by seed: both seed-0 runs and plain's seed 1 are kept, the failed run is not
    assert [(v, s) for v, s, _ in failing.calls] == [("plain", 0), ("PacGAN2", 0), ("plain", 1)]
    kept = [json.loads(line) for line in records.read_text().splitlines()]
    assert [(r["variant"], r["seed"]) for r in kept] == [("plain", 0), ("PacGAN2", 0), ("plain", 1)]

    rerun = StandIn(bench)
    monkeypatch.setattr(bench, "measure", rerun)
    table = bench.evaluate("small_d", [0, 1], 1, (), records, VARIANTS)
    assert [(v, s) for v, s, _ in rerun.calls] == [("PacGAN2", 1)]
    assert len(records.read_text().splitlines()) == 4

    again = StandIn(bench)
    monkeypatch.setattr(bench, "measure", again)
    assert bench.evaluate("small_d", [0, 1], 1, (), records, VARIANTS) == table
    assert again.calls == []
    # recorded (run=False) makes the same table, running nothing
    assert bench.evaluate("small_d", [0, 1], 1, (), records, VARIANTS, run=False) == table
    # a changed variant is a different run
    monkeypatch.setitem(bench.VARIANTS, "plain", ["model.lr=0.001"])
    bench.evaluate("small_d", [0], 1, (), records, VARIANTS)
    assert [(v, s) for v, s, _ in again.calls] == [("plain", 0)]


def test_table_is_mean_and_std_of_the_recorded_runs(
    bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    records = tmp_path / "runs.jsonl"
    monkeypatch.setattr(bench, "measure", StandIn(bench))
    table = bench.evaluate("small_d", [0, 1, 2], 1, (), records, VARIANTS)
    variants_table, _, paired, _ = table.split("\n\n")
    cells = row_cells(variants_table, "PacGAN2")
    modes = [910.0, 911.0, 912.0]
    gaps = [20.0 + (10 + s) / 10 - 21.05 for s in range(3)]
    assert cells[1] == "3"
    assert cells[2] == f"{statistics.fmean(modes):.1f} ± {statistics.stdev(modes):.1f}"
    assert cells[2] == "911.0 ± 1.0"
    assert cells[3] == "0.61 ± 0.01"  # KL 0.60, 0.61, 0.62
    assert cells[4] == "11.1 ± 0.1 %"
    assert cells[6] == f"{statistics.fmean(gaps):.2f} ± {statistics.stdev(gaps):.2f}"
    assert cells[6] == "0.05 ± 0.10"
    assert cells[7] == "0.08 ± 0.06"  # the gaps' sizes 0.05, 0.05, 0.15
    assert cells[8] == "2 / 2"  # wall 1, 2, 3 min; CPU 2 min
    assert "781 steps" in table and "abc1234 (6)" in table
    # and each variant against plain, seed by seed
    assert "| PacGAN2 | 3 | +10.0 ± 0.0 (3/3) | +0.10 ± 0.00 (0/3) |" in paired
    # only the seeds asked for are in the table
    one = bench.evaluate("small_d", [2], 1, (), records, VARIANTS, run=False)
    assert "| plain | 1 | 902.0 | 0.52 |" in one


def test_a_diverged_run_is_a_counted_failure(
    bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    records = tmp_path / "runs.jsonl"
    stand_in = StandIn(bench)

    def diverging(setting, variant, seed, epochs, extra, picture=None) -> dict:
        if seed == 1:
            key = bench.run_key(setting, variant, seed, epochs, extra)
            return key | {"code": "abc1234", "error": "diverged: nan", "wall_s": 1.0, "cpu_s": 1.0}
        return stand_in(setting, variant, seed, epochs, extra, picture)

    monkeypatch.setattr(bench, "measure", diverging)
    table = bench.evaluate("small_d", [0, 1], 1, (), records, ("plain",))
    assert "| plain | 1 (1 failed) | 900.0 |" in table
    monkeypatch.setattr(bench, "measure", StandIn(bench))
    bench.evaluate("small_d", [0, 1], 1, (), records, ("plain",))  # not retried
    assert len(records.read_text().splitlines()) == 2


def test_each_variant_leaves_one_grid_per_extra_overrides(
    bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    records = tmp_path / "runs.jsonl"
    stand_in = StandIn(bench)
    monkeypatch.setattr(bench, "measure", stand_in)
    bench.evaluate("small_d", [0, 1], 1, (), records, VARIANTS)
    on_gpu = ("trainer.accelerator=gpu",)
    bench.evaluate("small_d", [0, 1], 1, on_gpu, records, ("plain",))
    pictures = [(v, s, p.name if p else None) for v, s, p in stand_in.calls]
    gpu_grid = bench.grid_name("small_d", "plain", 0, on_gpu)
    assert pictures == [
        ("plain", 0, "small_d-plain-seed0.png"),
        ("PacGAN2", 0, "small_d-PacGAN2-seed0.png"),
        ("plain", 1, None),
        ("PacGAN2", 1, None),
        ("plain", 0, gpu_grid),
        ("plain", 1, None),
    ]
    assert gpu_grid.startswith("small_d-plain-seed0-") and gpu_grid != "small_d-plain-seed0.png"
    folder = tmp_path / "runs"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["small_d-plain-seed0.png", "small_d-PacGAN2-seed0.png", gpu_grid]
    )
    # a variant without a grid (one that predates them) gets one from its next run
    (folder / "small_d-PacGAN2-seed0.png").unlink()
    bench.evaluate("small_d", [2], 1, (), records, VARIANTS)
    assert [p.name if p else None for _, _, p in stand_in.calls[-2:]] == [
        None,
        "small_d-PacGAN2-seed2.png",
    ]
    assert bench.grid_name("standard", "entropy λ=0.1, D space", 1) == (
        "standard-entropy-lambda-0-1-D-space-seed1.png"
    )


def test_against_plain_pairs_runs_of_the_same_seed(bench) -> None:
    plain = {0: compared(900, 0.50, 0.10, 0.20), 1: compared(950, 0.40, 0.12, 0.15)}
    plain[2] = compared(990, 0.30, 0.14, 0.10)
    # seed 2 unfinished: only seeds 0 and 1 are paired
    variant = {0: compared(910, 0.45, 0.13, 0.22), 1: compared(940, 0.35, 0.13, 0.14)}
    table = bench.against_plain("small_d", {"plain": plain, "boost": variant, "PacGAN2": {}})
    cells = row_cells(table, "boost")
    assert cells[1] == "2"
    assert cells[2] == "+0.0 ± 14.1 (1/2)"  # +10, -10
    assert cells[3] == "-0.05 ± 0.00 (2/2)"  # lower KL is better
    assert cells[4] == "+2.0 ± 1.4 (2/2)"  # +3, +1 points
    assert cells[5] == "+0.005 ± 0.021 (1/2)"  # +0.02, -0.01
    assert "PacGAN2" not in table  # no finished seed
    # a tie is not "better": equal modes on one seed count as 0 of 1
    tied = bench.against_plain("small_d", {"plain": {0: plain[0]}, "boost": {0: plain[0]}})
    assert row_cells(tied, "boost")[2:] == [
        "+0.0 (0/1)",
        "+0.00 (0/1)",
        "+0.0 (0/1)",
        "+0.000 (0/1)",
    ]
    alone = bench.against_plain("small_d", {"plain": plain, "boost": {}})
    assert "no variant has a seed in common with plain" in alone.lower()


def test_sign_test_against_binomial_tails(bench) -> None:
    assert bench.sign_test(6, 0) == pytest.approx(2 / 64)
    assert bench.sign_test(0, 6) == pytest.approx(2 / 64)  # two-sided
    assert bench.sign_test(5, 1) == pytest.approx(2 * 7 / 64)  # P(X <= 1) = 7/64
    assert bench.sign_test(3, 0) == pytest.approx(0.25)
    assert bench.sign_test(2, 2) == 1.0  # 2 * 11/16, capped
    assert bench.sign_test(0, 0) == 1.0  # only ties: no evidence either way
    with pytest.raises(ValueError, match="counts must be >= 0"):
        bench.sign_test(-1, 3)


def test_both_settings_counts_wins_over_every_setting_and_seed(bench) -> None:
    standard = {
        "plain": {0: compared(990, 0.30, 0.15, 0.12), 1: compared(995, 0.35, 0.16, 0.13)},
        "boost": {0: compared(1000, 0.25, 0.16, 0.11), 1: compared(999, 0.30, 0.17, 0.12)},
    }
    standard["plain"][2] = compared(1000, 0.30, 0.15, 0.12)
    standard["boost"][2] = compared(1000, 0.31, 0.14, 0.13)  # modes tied
    small_d = {
        "plain": {0: compared(950, 0.6, 0.10, 0.20), 1: compared(960, 0.7, 0.10, 0.20)},
        "boost": {0: compared(990, 0.4, 0.12, 0.25), 1: compared(980, 0.5, 0.11, 0.25)},
        "PacGAN2": {1: compared(900, 0.9, 0.05, 0.30)},
    }
    table = bench.both_settings({"standard": standard, "small_d": small_d})
    rows = {variant: row_cells(table, variant)[1:] for variant in ("boost", "PacGAN2")}
    # modes: 4 wins, 1 tie; KL and high quality: 4 wins, 1 loss; JSD: 2 wins, 3 losses
    assert rows["boost"] == [
        "5",
        "4 better, 0 worse (p = 0.125)",
        "4 better, 1 worse (p = 0.375)",
        "4 better, 1 worse (p = 0.375)",
        "2 better, 3 worse (p = 1.000)",
    ]
    assert rows["PacGAN2"] == ["1"] + ["0 better, 1 worse (p = 1.000)"] * 4
    assert "no variant" in bench.both_settings({"small_d": {"plain": {}}}).lower()


def test_recorded_command_pools_the_chosen_seeds_of_both_settings(
    bench, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    records = tmp_path / "runs.jsonl"
    monkeypatch.setattr(bench, "measure", StandIn(bench))
    for setting in bench.SETTINGS:
        bench.evaluate(setting, [0, 1, 2], bench.EPOCHS, (), records, VARIANTS)
    argv = ["stacked_mnist.py", "--records", str(records), "--seeds", "0,1", "recorded"]
    monkeypatch.setattr("sys.argv", argv)
    bench.main()
    output = capsys.readouterr().out
    assert output.count("| plain | 2 |") == 2  # one table per setting, seeds 0 and 1 only
    # the stand-in's PacGAN2: 10 modes more, KL 0.1 higher, 1 point more high quality and
    # JSD 0.01 higher than plain on every seed; 2 settings x 2 seeds = 4 pairs
    assert row_cells(output, "PacGAN2 | 4")[2:] == [
        "4 better, 0 worse (p = 0.125)",
        "0 better, 4 worse (p = 0.125)",
        "4 better, 0 worse (p = 0.125)",
        "0 better, 4 worse (p = 0.125)",
    ]


def test_recipe_against_2016_pairs_each_variant_with_itself_on_the_same_seed(bench) -> None:
    def record(setting: str, variant: str, seed: int, recipe: tuple, numbers: dict) -> dict:
        return bench.run_key(setting, variant, seed, bench.EPOCHS, recipe) | {"final": numbers}

    lam = "entropy λ=0.1"
    done = [
        record("standard", "plain", 0, (), compared(994, 0.36, 0.158, 0.140)),
        record("standard", "plain", 0, bench.RECIPE, compared(999, 0.34, 0.117, 0.139)),
        record("standard", "plain", 1, (), compared(996, 0.40, 0.150, 0.130)),
        record("standard", "plain", 1, bench.RECIPE, compared(1000, 0.30, 0.120, 0.120)),
        record("standard", "plain", 2, bench.RECIPE, compared(1000, 0.30, 0.120, 0.120)),
        record("small_d", "plain", 0, (), compared(981, 0.56, 0.123, 0.155)),
        record("small_d", "plain", 0, bench.RECIPE, compared(802, 1.41, 0.109, 0.263)),
        # λ = 0.1 with the recipe is paired with λ = 0.1 without it, never with plain
        record("small_d", lam, 0, (), compared(990, 0.50, 0.130, 0.150)),
        record("small_d", lam, 0, bench.RECIPE, compared(1000, 0.20, 0.140, 0.160)),
        bench.run_key("small_d", lam, 1, bench.EPOCHS, bench.RECIPE) | {"error": "diverged"},
    ]
    table = bench.recipe_against_2016(done, [0, 1, 2])
    # standard plain: seeds 0 and 1 (seed 2 has no 2016 run): +5, +4 modes; -0.02, -0.10 KL
    assert row_cells(table, "standard, plain")[1:] == [
        "2",
        "+4.5 ± 0.7 (2/2)",
        "-0.06 ± 0.06 (2/2)",
        "-3.5 ± 0.8 (0/2)",  # -4.1, -3.0 points
        "-0.006 ± 0.006 (2/2)",  # -0.001, -0.010
    ]
    assert row_cells(table, "small_d, plain")[1:] == [
        "1",
        "-179.0 (0/1)",
        "+0.85 (0/1)",
        "-1.4 (0/1)",
        "+0.108 (0/1)",
    ]
    assert row_cells(table, f"small_d, {lam}")[2:] == [
        "+10.0 (1/1)",
        "-0.30 (1/1)",
        "+1.0 (1/1)",
        "+0.010 (0/1)",
    ]
    assert "standard, entropy" not in table  # no pair
    # both settings: plain 3 pairs (modes 2 better, 1 worse), λ = 0.1 one pair
    assert row_cells(table, "plain | 3")[2:] == [
        "2 better, 1 worse (p = 1.000)",
        "2 better, 1 worse (p = 1.000)",
        "0 better, 3 worse (p = 0.250)",
        "2 better, 1 worse (p = 1.000)",
    ]
    assert row_cells(table, f"{lam} | 1")[2] == "1 better, 0 worse (p = 1.000)"
    alone = bench.recipe_against_2016(done[:1], [0])
    assert "no seed in common" in alone


def test_paired_cells_needs_a_seed_in_common(bench) -> None:
    with pytest.raises(ValueError, match="no seed in common"):
        bench.paired_cells({0: {}}, {1: {}}, bench.COMPARED)
