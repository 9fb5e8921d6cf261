"""Feedback on long steps: progress bars only on a terminal, one log line per validation, and
no third-party noise on every run (issue 30, item 2)."""

from __future__ import annotations

import io
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from gan_je import sampling
from gan_je.features import Classifier
from gan_je.metrics_csv import read_metrics
from gan_je.progress import progress, validation_line


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_draws_nothing_when_the_stream_is_not_a_terminal():
    stream = io.StringIO()
    assert list(progress(range(3), "counting", file=stream)) == [0, 1, 2]
    assert stream.getvalue() == ""


def test_progress_draws_a_bar_on_a_terminal():
    stream = FakeTerminal()
    items = iter("abc")  # no len: total says it
    assert list(progress(items, "counting", total=3, file=stream)) == ["a", "b", "c"]
    drawn = stream.getvalue()
    assert "counting" in drawn and "0/3" in drawn  # drawn before the first item, then cleared


def test_progress_refuses_a_missing_name_and_a_bad_total():
    with pytest.raises(ValueError, match="desc must be a non-empty string"):
        progress(range(3), "")
    with pytest.raises(ValueError, match="total must be a whole number"):
        progress(range(3), "counting", total=-1)


class _Points(nn.Linear):
    latent_dim = 2

    def __init__(self) -> None:
        super().__init__(2, 2)


def test_sampling_with_a_name_counts_its_batches_on_a_terminal(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    network = _Points()
    samples = sampling.draw(network, 5, sampling.seeded(0), batch_size=2, desc="generating")
    assert samples.shape == (5, 2)
    assert "generating" in terminal.getvalue() and "/3 " in terminal.getvalue()
    silent = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", silent)
    assert torch.equal(sampling.draw(network, 5, sampling.seeded(0), batch_size=2), samples)
    assert silent.getvalue() == ""  # validation's draws, inside Lightning's bar: none


def test_fitting_the_feature_classifier_counts_its_epochs_on_a_terminal(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    x = torch.randn(40, 3)
    Classifier(dim=2, embedding=4, epochs=2).fit(x, (x[:, 0] > 0).long(), kind="points")
    assert "training a classifier (epochs)" in terminal.getvalue()
    assert "/2 " in terminal.getvalue()


ROW = {
    "epoch": 3,
    "g_step": 1200,
    "time_s": 81.5,
    "val/jsd": 0.25114,
    "val/jsd_se": 0.0042,
    "val/entropy_real": 3.1204,
    "val/entropy_real_se": 0.0201,
    "val/entropy_fake": 2.95,
    "val/entropy_fake_se": 0.031,
    "val/joint_entropy": 3.72837,
    "val/joint_entropy_se": 0.0184,
    "val/precision": 0.9,
}


def test_the_validation_line_shows_the_step_the_jsd_and_the_entropies_with_their_errors():
    assert validation_line(ROW) == (
        "epoch 3  g_step 1200  val/jsd 0.251 ± 0.004  H(real) 3.120 ± 0.020  "
        "H(gen) 2.950 ± 0.031  H(S,L) 3.728 ± 0.018  (nats)"
    )


def test_the_validation_line_leaves_out_what_the_metric_did_not_log_and_names_the_unit():
    row = {"g_step": 7, "val/jsd": 0.5, "val/entropy_real": 1.0, "val/entropy_fake": 2.0}
    assert validation_line(row, base=2) == (
        "g_step 7  val/jsd 0.500  H(real) 1.000  H(gen) 2.000  (bits)"
    )
    assert validation_line({"g_step": 0}, base=math.e) == "g_step 0  (nats)"
    with pytest.raises(ValueError, match="no g_step"):
        validation_line({"val/jsd": 0.5})


@pytest.mark.slow
def test_each_validation_is_one_log_line_in_process(train_config, caplog):
    from gan_je.train import train

    cfg = train_config(
        "experiment=ring",
        "data.n_train=512",
        "data.n_val=200",
        "logger=none",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
    )
    with caplog.at_level(logging.INFO, logger="gan_je.callbacks"):
        train(cfg)
    rows = read_metrics(Path(cfg.paths.output_dir) / "metrics.csv")
    lines = [r.getMessage() for r in caplog.records if "  val/jsd " in r.getMessage()]
    assert lines == [validation_line(row) for row in rows] and len(rows) == 2


def test_the_training_bar_draws_on_a_terminal_only():
    from gan_je.callbacks import TerminalProgressBar

    assert TerminalProgressBar(console_kwargs={"force_terminal": True}).is_enabled
    assert TerminalProgressBar(console_kwargs={"force_terminal": False}).is_disabled


def test_lightnings_litlogger_tip_is_dropped_and_its_other_messages_kept(caplog):
    from gan_je.quiet import RANK_ZERO_LOGGERS, silence_third_party_noise

    silence_third_party_noise()
    silence_third_party_noise()  # idempotent
    for name in RANK_ZERO_LOGGERS:
        rank_zero = logging.getLogger(name)
        assert sum(type(f).__name__ == "_DropLitLoggerTip" for f in rank_zero.filters) == 1
        with caplog.at_level(logging.INFO, logger=name):
            rank_zero.info("💡 Tip: For seamless cloud logging and experiment tracking, try ...")
            rank_zero.info("GPU available: False, used: False")
    assert caplog.messages == ["GPU available: False, used: False"] * len(RANK_ZERO_LOGGERS)


def test_the_wandb_logger_passes_no_anonymous_setting(tmp_path, wandb_offline):
    from gan_je.loggers import wandb_logger

    logger = wandb_logger(offline=True, project="gan_je", save_dir=str(tmp_path))
    assert "anonymous" not in logger._wandb_init
    assert "anonymous" in wandb_logger(offline=True, anonymous=True)._wandb_init  # as asked


#: The third-party lines every run printed (issue 30), as they read.
NOISE = {
    "litlogger tip": "💡 Tip: For seamless cloud logging",
    "W&B anonymous": "The anonymous setting has no effect",
    "torch LeafSpec deprecation": "`isinstance(treespec, LeafSpec)` is deprecated",
    "Lightning srun hint": "The `srun` command is available on your system but is not used",
    "alembic plugins (Optuna)": "setup plugin alembic",
}


@pytest.fixture(scope="module")
def tiny_search(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A one-trial Optuna search of a tiny ring run logging to W&B offline, its output not a
    terminal, with an ``srun`` on the PATH outside any SLURM job (as on a login node):
    ``(stdout + stderr, the job's run directory)``."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    folder = tmp_path_factory.mktemp("tiny_search")
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text("#!/bin/sh\nexit 1\n")
    srun.chmod(0o755)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLURM_", "WANDB_")) and key != "GAN_JE_RUN_ID"
    }
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "WANDB_MODE": "offline"}
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        (folder / name.lower()).mkdir()
        env[name] = str(folder / name.lower())
    command = [
        sys.executable,
        "-m",
        "gan_je.train",
        "hparams_search=optuna",
        "experiment=ring",
        "data.n_train=512",
        "data.n_val=200",
        "hydra.sweeper.n_trials=1",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
        f"hydra.sweep.dir={folder / 'sweep'}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr, folder / "sweep" / "0"


@pytest.mark.slow
def test_a_run_prints_no_third_party_noise_but_real_warnings(tiny_search):
    output, _ = tiny_search
    assert {name: line for name, line in NOISE.items() if line in output} == {}
    # a genuine warning stays: 3 training batches are fewer than log_every_n_steps (10)
    assert "smaller than the logging interval" in output


@pytest.mark.slow
def test_train_log_holds_one_line_per_validation_and_no_piped_progress_bar(tiny_search):
    output, run = tiny_search
    rows = read_metrics(run / "metrics.csv")
    lines = [
        line
        for line in (run / "train.log").read_text().splitlines()
        if "[gan_je.callbacks][INFO] - epoch " in line
    ]
    assert len(rows) == 2
    assert [line.split(" - ", 1)[1] for line in lines] == [validation_line(r) for r in rows]
    assert "Epoch 1/1" not in output  # the rich bar's final block, drawn only on a terminal
