"""Start-up checks of ``python -m gan_je.train`` (issue 29): settings that cannot work end in
one sentence before any work (resuming on other data, decompression bombs, sizes beyond
memory, seeds out of range, Lightning's refusals), and settings that can work are made to
(no progress bar, more data loader workers than CPUs, a W&B server that never answers)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from gan_je.callbacks import without_progress_bars
from gan_je.checkpoints import check_resumable
from gan_je.commands import build_from_config
from gan_je.data import Ring, StackedMNIST
from gan_je.data.image_folder import ImageFolder, load_image
from gan_je.errors import ConfigError, DataError
from gan_je.loggers import wandb_logger, wandb_server_reachable
from gan_je.seeding import MAX_SEED, check_seed
from gan_je.train import build, train

QUIET = ["logger=none", "callbacks=none", "trainer.enable_progress_bar=false"]
QUIET += ["trainer.enable_model_summary=false", "trainer.accelerator=cpu"]
SMALL_RING = ["experiment=ring", "data.n_train=2048", "data.n_val=500"]


def _built(train_config, *overrides: str):
    cfg = train_config(*SMALL_RING, *QUIET, *overrides)
    return cfg, build(cfg, run_config=OmegaConf.to_container(cfg, resolve=True))[1]


def _ring_checkpoint(train_config, path: Path) -> dict:
    """A checkpoint of a ring run before training (what a resume reads of it)."""
    _, module = _built(train_config)
    checkpoint = {"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}
    torch.save(checkpoint | {"epoch": 0}, path)
    return checkpoint


def test_resuming_on_another_data_set_is_refused(train_config, tmp_path):
    path = tmp_path / "ring.ckpt"
    checkpoint = _ring_checkpoint(train_config, path)
    cfg, grid = _built(train_config, "data=grid")  # points of the same shape: networks fit
    with pytest.raises(ConfigError, match=r"trained on other data \(gan_je\.data\.Ring there, "):
        check_resumable(str(path), grid, cfg)
    # the same data class, but samples of another shape (the networks would differ too)
    checkpoint["hyper_parameters"]["data_spec"] = {"kind": "points", "sample_shape": [3]}
    torch.save(checkpoint, path)
    cfg, ring = _built(train_config)
    with pytest.raises(ConfigError, match=r"other samples \(points of shape \(3,\) there, "):
        check_resumable(str(path), ring, cfg)


def test_resuming_with_other_data_settings_names_them(train_config, tmp_path, caplog):
    path = tmp_path / "ring.ckpt"
    _ring_checkpoint(train_config, path)
    cfg, ring = _built(train_config, "data.std=0.05", "data.n_modes=9")
    with caplog.at_level("WARNING"):
        check_resumable(str(path), ring, cfg)
    assert "differ from the checkpoint's: data.n_modes, data.std (" in caplog.text
    caplog.clear()
    cfg, ring = _built(train_config)
    with caplog.at_level("WARNING"):
        check_resumable(str(path), ring, cfg)
    assert "differ" not in caplog.text


def _png(path: Path, side: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(path)
    return path


@pytest.mark.parametrize("limit", [3000, 1000])  # PIL warns (4096 < 2 x 3000) or raises
def test_a_decompression_bomb_is_one_data_error_naming_the_file(tmp_path, monkeypatch, limit):
    bomb = _png(tmp_path / "images" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(DataError, match=f"{bomb}.*decompression bomb"):
        load_image(bomb, 8, "RGB")
    _png(tmp_path / "images" / "fine.png", side=16)
    folder = ImageFolder(tmp_path / "images", image_size=8, val_size=1)
    with pytest.raises(DataError, match=f"{bomb}.*decompression bomb"):
        folder.setup("fit")


def test_data_and_networks_beyond_memory_are_refused_before_work(train_config):
    with pytest.raises(ConfigError, match=r"data\.n_train=1000000000000 needs .* GiB of memory"):
        train(train_config(*SMALL_RING, *QUIET, "data.n_train=1000000000000"))
    with pytest.raises(ConfigError, match=r"data\.n_val=1000000000000 needs"):
        StackedMNIST(n_val=10**12)
    with pytest.raises(ConfigError, match=r"the networks' parameter count=\d+ needs .* GiB"):
        train(train_config(*SMALL_RING, *QUIET, "model.generator.hidden=1000000000"))
    assert Ring(n_train=10**6).n_train == 10**6  # 32 MB: fits


@pytest.mark.parametrize("seed", [-1, 99999999999, None, True, 1.5])
def test_a_seed_out_of_range_is_refused_naming_the_range(seed):
    with pytest.raises(ConfigError, match=r"seed must be an integer from 0 to 4294967295"):
        check_seed(seed)


def test_the_seed_range_is_lightnings(train_config):
    assert check_seed(0) == 0 and check_seed(np.int64(MAX_SEED)) == MAX_SEED
    with pytest.raises(ConfigError, match=r"from 0 to 4294967295 .* got -1$"):
        train(train_config(*SMALL_RING, *QUIET, "seed=-1"))


def test_a_trainer_setting_lightning_refuses_is_one_config_error(train_config):
    with pytest.raises(ConfigError, match=r"^trainer: `max_epochs` must be .* or -1"):
        train(train_config(*SMALL_RING, *QUIET, "trainer.max_epochs=-5"))


def test_max_epochs_minus_one_still_means_no_limit(train_config):
    cfg = train_config(*SMALL_RING, *QUIET, "trainer.max_epochs=-1")
    trainer = build_from_config(cfg.trainer, "trainer", logger=False)
    assert trainer.max_epochs == -1 and trainer.fit_loop.max_epochs == -1


def test_no_progress_bar_leaves_the_default_progress_callback_out(train_config, caplog):
    quiet = [item for item in QUIET if item != "callbacks=none"]
    cfg = train_config(*SMALL_RING, *quiet, "debug=fdr")  # the default callbacks
    assert cfg.callbacks.progress._target_.endswith("TerminalProgressBar")
    with caplog.at_level("INFO"):
        assert train(cfg)["status"] == "finished"
    assert "enable_progress_bar=false: the callback TerminalProgressBar is left out" in caplog.text
    from lightning.pytorch.callbacks import TQDMProgressBar

    kept = [TQDMProgressBar(), "other"]
    assert without_progress_bars(kept, True) == kept and without_progress_bars(kept, None) == kept
    assert without_progress_bars(kept, False) == ["other"]


def test_more_data_workers_than_cpus_are_capped_with_one_warning(caplog):
    cpus = len(os.sched_getaffinity(0))
    with caplog.at_level("WARNING"):
        assert Ring(num_workers=100_000).num_workers == cpus
    assert caplog.text.count(f"data.num_workers=100000 is more than the {cpus} CPUs") == 1
    assert Ring(num_workers=cpus).num_workers == cpus


def test_a_wandb_server_that_never_answers_costs_at_most_the_timeout(
    wandb_offline, monkeypatch, caplog
):
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.delenv("WANDB_MODE")  # decide from the credentials and the server
    with socket.socket() as server:  # accepts connections (the backlog), never answers
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        start = time.monotonic()
        assert not wandb_server_reachable(timeout=0.5)
        with caplog.at_level("WARNING"):
            logger = wandb_logger(project="gan_je", init_timeout=0.5)
        elapsed = time.monotonic() - start
    assert logger._offline and "server does not answer: logging offline" in caplog.text
    assert 1.0 <= elapsed < 3.0, elapsed


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        (["seed=-1"], "seed must be an integer from 0 to 4294967295"),
        (["data.n_train=1000000000000"], "data.n_train=1000000000000 needs "),
    ],
)
def test_the_command_line_ends_in_one_sentence(tmp_path, overrides, sentence):
    command = [sys.executable, "-m", "gan_je.train", "experiment=ring", "logger=none"]
    result = subprocess.run(
        [*command, *overrides, f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"gan_je.train: {sentence}")
