"""Shared fixtures: composing the real training config, isolated from W&B and Hydra state."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import gan_je  # noqa: F401  (registers the resolvers the configs use)

CONF = Path(__file__).resolve().parents[1] / "conf"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test``: ``-n auto``) the workers share the cores: one
    PyTorch thread each, and in the processes they start, rather than every worker spinning
    a thread per core (about twice as fast on 2 cores). ``OMP_NUM_THREADS`` set by the user
    wins."""
    if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@pytest.fixture
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """W&B offline with every folder in ``tmp_path``. ``monkeypatch`` restores the
    environment afterwards, including the ``WANDB_MODE`` that ``WandbLogger(offline=True)``
    writes into ``os.environ`` for the whole process; ``wandb.teardown()`` drops the settings
    W&B keeps for the process from its first run (its mode among them), so that a later test
    starts W&B afresh."""
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        folder = tmp_path / "wandb_home" / name.lower()
        folder.mkdir(parents=True)
        monkeypatch.setenv(name, str(folder))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    yield
    import wandb

    if wandb.run is not None:
        wandb.finish()
    wandb.teardown()


@pytest.fixture
def lock_holder() -> Iterator[Callable[[Path], subprocess.Popen]]:
    """``hold(folder)`` starts another process that holds ``folder``'s run lock (as a running
    ``gan_je.train`` does) until the test ends, and returns it once it holds the lock."""
    holders: list[subprocess.Popen] = []

    def hold(folder: Path) -> subprocess.Popen:
        code = (
            "import sys, time; from gan_je.run_directory import hold_run_directory; "
            "lock = hold_run_directory(sys.argv[1]); print('held', flush=True); time.sleep(120)"
        )
        holder = subprocess.Popen(
            [sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True
        )
        holders.append(holder)
        assert holder.stdout.readline().strip() == "held"
        return holder

    yield hold
    for holder in holders:
        holder.kill()
        holder.wait()


@pytest.fixture
def train_config(tmp_path: Path, wandb_offline: None) -> Iterator[Callable[..., DictConfig]]:
    """``make(*overrides, run="run")`` composes ``conf/train.yaml`` as
    ``python -m gan_je.train`` would, with the run directory in ``tmp_path/<run>`` and Hydra's
    runtime config set."""

    def make(*overrides: str, run: str = "run") -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(
                config_name="train",
                overrides=[
                    f"paths.root_dir={tmp_path}",
                    f"paths.output_dir={tmp_path / run}",
                    *overrides,
                ],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]  # as in a real run: the task config has no hydra node
        return cfg

    yield make
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None
