"""The text experiments end to end, through the real command line: ``experiment=text_oracle``
on a tiny oracle (with the entropy regulariser) logs every exact and estimated measure, and
``evaluate`` and ``generate format=txt`` work on its checkpoint with no data file anywhere;
``experiment=text_chars`` on a small text file (with the entropy-matching controller) writes
its samples as text."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.cli import QUIET, last_value, metric_rows, run_module

pytestmark = pytest.mark.slow
CONF = Path(__file__).resolve().parents[1] / "conf"

VOCAB, LENGTH = 20, 8
#: a tiny oracle, drawn in the run (no cache file), and measures sized to it
TINY_ORACLE = [f"data.vocab_size={VOCAB}", f"data.length={LENGTH}", "data.n_train=640"]
TINY_ORACLE += ["data.n_val=320", "data.batch_size=32", "data.cache_dir=null"]
TINY_ORACLE += ["callbacks.sequence_measures.n_samples=300", "estimator.n_fake=null"]
TINY_ORACLE += ["model.discriminator.width=16"]
#: what the oracle run must log after each validation
ORACLE_KEYS = ["nll_oracle", "nll_test", "jsd_exact", "js_4", "js_4_real", "entropy_fake"]
ORACLE_KEYS += ["kl_oracle_generator", "kl_generator_oracle", "entropy_per_token_oracle"]
ORACLE_KEYS += ["entropy_per_token_fake", "jsd"]
LINES = "the quick brown fox jumps over the lazy dog {}\n"


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs of ``experiment=text_oracle`` on a tiny oracle, entropy-regularised."""
    folder = tmp_path_factory.mktemp("text_oracle")
    run = folder / "run"
    overrides = ["experiment=text_oracle", *TINY_ORACLE, *QUIET, "loss.entropy_weight=0.1"]
    overrides.append("model.pretrain_steps=2")  # then 4 adversarial, entropy-regularised steps
    run_module("gan_je.train", *overrides, f"hydra.run.dir={run}", cwd=folder)
    assert not any((folder / "no_data").iterdir())  # the oracle was drawn, not read
    return run


def test_text_oracle_logs_every_measure(oracle_run):
    rows = metric_rows(oracle_run)
    value = {key: last_value(rows, f"val/{key}") for key in ORACLE_KEYS}
    se = {key: last_value(rows, f"val/{key}_se") for key in ORACLE_KEYS if "js_" not in key}
    assert all(math.isfinite(v) for v in [*value.values(), *se.values()]), value
    assert 0 < value["entropy_per_token_oracle"] < math.log(VOCAB)
    assert 0 <= value["jsd_exact"] <= math.log(2) + 1e-6
    assert 0 <= value["js_4_real"] <= value["js_4"] + 1e-6 <= math.log(2) + 2e-6
    # each KL is its cross-entropy minus its entropy (float32 in the csv)
    kl = value["nll_test"] - value["entropy_per_token_oracle"]
    assert value["kl_oracle_generator"] == pytest.approx(kl, abs=1e-4)
    kl = value["nll_oracle"] - value["entropy_per_token_fake"]
    assert value["kl_generator_oracle"] == pytest.approx(kl, abs=1e-4)
    assert min(value["kl_oracle_generator"], value["kl_generator_oracle"]) > 0
    # the entropy regulariser ran on relaxed sequences
    assert last_value(rows, "train/entropy_weight") == pytest.approx(0.1)
    assert any(key.startswith("train/entropy_batch") and row[key] for row in rows for key in row)


def test_evaluate_and_generate_on_the_oracle_checkpoint_without_data_files(oracle_run, tmp_path):
    checkpoint = oracle_run / "checkpoints" / "last.ckpt"
    evaluated = run_module(
        "gan_je.evaluate", f"ckpt_path={checkpoint}", "n_samples=300", cwd=tmp_path
    )
    assert "| kl_generator_oracle |" in evaluated.stdout
    (record,) = (checkpoint.parent / "evaluations").glob("last-*.json")
    result = json.loads(record.read_text())
    assert result["n_generated"] == result["n_real"] == 300
    metrics = result["metrics"]
    for key in ORACLE_KEYS:
        assert math.isfinite(metrics[key]), key
    kl = metrics["nll_oracle"] - metrics["entropy_per_token_fake"]
    assert metrics["kl_generator_oracle"] == pytest.approx(kl, abs=1e-9)
    out = tmp_path / "samples.txt"
    run_module(
        "gan_je.generate",
        f"ckpt_path={checkpoint}",
        "format=txt",
        "n=7",
        f"out={out}",
        cwd=tmp_path,
    )
    lines = out.read_text().splitlines()
    assert len(lines) == 7  # ids as numbers (the oracle has no symbols), a sequence a line
    assert all(len(line.split()) == LENGTH for line in lines)
    assert all(0 <= int(token) < VOCAB for line in lines for token in line.split())
    assert not any((tmp_path / "no_data").iterdir())


def test_evaluate_makes_one_hot_sequences_a_batch_at_a_time(oracle_run, tmp_path, monkeypatch):
    """At V = 5,000 a sequence takes 400 KB, a split of 10,000 4 GB: ``evaluate`` must make
    the one-hot samples it compares ``batch_size`` at a time, never a whole set."""
    from hydra import compose, initialize_config_dir

    from gan_je.data.tokens import TokenDataModule
    from gan_je.evaluate import evaluate

    checkpoint = tmp_path / "last.ckpt"  # its records beside it, not beside the run's
    checkpoint.write_bytes((oracle_run / "checkpoints" / "last.ckpt").read_bytes())
    made, as_samples = [], TokenDataModule.as_samples

    def counted(self, x):
        made.append(len(x))
        return as_samples(self, x)

    monkeypatch.setattr(TokenDataModule, "as_samples", counted)
    monkeypatch.setenv("GAN_JE_DATA", str(tmp_path / "no_data"))
    settings = [f"ckpt_path={checkpoint}", "n_samples=300", "batch_size=64"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        result = evaluate(compose(config_name="evaluate", overrides=settings))
    assert result["n_real"] == 300 and math.isfinite(result["metrics"]["kl_oracle_generator"])
    assert sum(made) == 300 and max(made) <= 64  # the held-out sequences, in batches


def test_evaluate_refuses_more_generated_sequences_than_the_real_floor_has(oracle_run, tmp_path):
    from hydra import compose, initialize_config_dir

    from gan_je.errors import ConfigError
    from gan_je.evaluate import evaluate

    checkpoint = tmp_path / "last.ckpt"
    checkpoint.write_bytes((oracle_run / "checkpoints" / "last.ckpt").read_bytes())
    settings = [f"ckpt_path={checkpoint}", "n_samples=700", "equal_sizes=false"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="evaluate", overrides=settings)
    with pytest.raises(ConfigError, match=r"n_samples \(equal_sizes=false\)=700 .* 640 train"):
        evaluate(cfg)


def test_text_chars_trains_on_a_text_file_and_writes_samples_as_text(tmp_path):
    text = tmp_path / "lines.txt"
    text.write_text("".join(LINES.format(i) for i in range(400)))
    run = tmp_path / "run"
    overrides = ["experiment=text_chars", f"data.path={text}", "data.batch_size=32", *QUIET]
    overrides += ["model=char_resnet", "loss=wgan_gp"]  # Gulrajani's model, not the default
    overrides += ["data.length=16", "model.generator.width=16", "model.discriminator.width=16"]
    overrides += ["model.generator.n_blocks=2", "model.discriminator.n_blocks=2"]
    overrides += ["callbacks=entropy_matching", "callbacks.entropy_matching.warmup=0"]
    overrides += ["callbacks.sequence_measures.n_samples=40", f"hydra.run.dir={run}"]
    run_module("gan_je.train", *overrides, cwd=tmp_path)
    rows = metric_rows(run)
    for key in ("js_1", "js_4", "js_4_real", "entropy_fake", "jsd"):
        assert math.isfinite(last_value(rows, f"val/{key}")), key
    assert "val/nll_test" not in rows[0]  # Gulrajani's generator has no log-likelihood
    # the controller set a weight after the first validation and the generator used it
    assert last_value(rows, "train/entropy_weight") != 0
    written = sorted((run / "samples").glob("*.txt"))
    assert len(written) == 2  # one per validation
    decoded = written[-1].read_text()
    assert decoded.count("\n") >= 8  # a decoded sample a line
    # the characters of the training lines, and the unknown symbol (the pad symbol is "")
    assert set(decoded) - {"\n", "\ufffd"} <= set(text.read_text()) - {"\n"}
