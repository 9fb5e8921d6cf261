"""A kind of sample added from outside gan_je: docs/howto.md's example package (1-D signals,
docs/examples/my_signals.py, and its configs) trains, validates, checkpoints, resumes and
generates with nothing in gan_je edited."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from PIL import Image
from torch import nn

from gan_je.errors import ConfigError
from gan_je.generate import run as generate
from gan_je.metrics_csv import read_metrics
from gan_je.module import GANModule
from gan_je.train import train

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
EXAMPLE_FILES = ["my_signals.py", "conf/data/sines.yaml", "conf/model/signal_gan.yaml"]


@pytest.fixture
def my_signals(monkeypatch: pytest.MonkeyPatch):
    """The example package, importable as a user's own package would be."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    return importlib.import_module("my_signals")


def _generate(*overrides: str) -> Path:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return generate(compose(config_name="generate", overrides=list(overrides)))


def test_the_howto_quotes_the_example_as_it_is():
    howto = (ROOT / "docs" / "howto.md").read_text()
    for name in EXAMPLE_FILES:
        assert (EXAMPLES / name).read_text() in howto, f"docs/howto.md quotes another {name}"


@pytest.mark.slow
def test_a_kind_from_outside_gan_je_trains_resumes_and_generates(
    train_config, my_signals, tmp_path
):
    run_settings = [
        f"hydra.searchpath=[file://{EXAMPLES / 'conf'}]",
        "imports=[my_signals]",
        "data=sines",
        "model=signal_gan",
        "logger=none",
        "~callbacks.progress",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.accelerator=cpu",
        "trainer.limit_train_batches=4",
        "data.n_val=128",
        "estimator.jsd_classifier=false",  # a classifier per validation: slow, and not the point
    ]
    cfg = train_config(*run_settings, "trainer.max_epochs=2")
    summary = train(cfg)
    assert (summary["status"], summary["g_steps"], summary["validations"]) == ("finished", 8, 2)
    run = Path(cfg.paths.output_dir)
    last = run / "checkpoints" / "last.ckpt"
    spec = torch.load(last, weights_only=True)["hyper_parameters"]["data_spec"]
    assert spec == {"kind": "signal", "sample_shape": [1, 32]}
    module = GANModule.load_from_checkpoint(last)
    assert isinstance(module.generator, my_signals.SignalGenerator)
    assert isinstance(module.generator.net[-1], nn.Tanh)  # the kind is bounded

    resumed = train(train_config(*run_settings, "trainer.max_epochs=3", "resume=true"))
    assert (resumed["g_steps"], resumed["validations"]) == (12, 3)
    rows = read_metrics(run / "metrics.csv")
    assert [row["g_step"] for row in rows] == [4, 8, 12]
    assert all(math.isfinite(row["val/jsd"]) and 0 <= row["val/jsd"] <= 1 for row in rows)
    pictures = sorted((run / "samples").glob("*.png"))
    assert len(pictures) == 3
    assert Image.open(pictures[-1]).width == 800  # plot_signals' line plots, not a grid

    png = _generate(f"ckpt_path={last}", "imports=[my_signals]", f"out={tmp_path}/signals.png")
    assert Image.open(png).width == 800
    npz = _generate(f"ckpt_path={last}", "imports=[my_signals]", "format=npz", "n=6")
    samples = np.load(npz)["samples"]
    assert samples.shape == (6, 1, 32) and np.abs(samples).max() <= 1
    with pytest.raises(ConfigError, match="format=wav is not offered for samples of kind 'signal'"):
        _generate(f"ckpt_path={last}", "imports=[my_signals]", "format=wav")
