"""gan_je.evaluate and gan_je.generate on checkpoints of tiny real runs."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from gan_je.checkpoints import load_sampler, read_checkpoint
from gan_je.data.torchvision_images import CIFAR10_FILES, CIFAR10_FOLDER
from gan_je.errors import CheckpointError, ConfigError, DataError
from gan_je.estimators import jensen_shannon
from gan_je.evaluate import SE_NOTE, evaluate, jsd_cap, table
from gan_je.evaluation_records import record_name, records_folder
from gan_je.generate import run as generate
from gan_je.module import GANModule
from gan_je.sampling import draw, seeded
from gan_je.train import train

# every test here trains a run first (a few seconds each): the full suite, not the quick one
pytestmark = pytest.mark.slow

CONF = Path(__file__).resolve().parents[1] / "conf"
QUIET = ["logger=none", "callbacks=none", "trainer.enable_progress_bar=false"]


def _app_config(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


def _record(checkpoint: Path, result: dict) -> dict:
    """The record ``evaluate`` wrote for ``result``."""
    return json.loads((records_folder(checkpoint) / record_name(result)).read_text())


@pytest.fixture
def checkpoint(train_config, request) -> Path:
    data = getattr(request, "param", "ring")
    overrides = ["experiment=ring", "data.n_train=2048", "data.n_val=500"] if data == "ring" else []
    cfg = train_config(*overrides, f"data={data}", "debug=limit", *QUIET[:1])
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize("checkpoint", ["ring", "digits"], indirect=True)
def test_evaluate_writes_every_metric(checkpoint):
    result = evaluate(_app_config("evaluate", f"ckpt_path={checkpoint}", "n_samples=300"))
    written = _record(checkpoint, result)
    assert written["metrics"] == result["metrics"] and written["g_step"] == 10
    keys = {"jsd", "entropy_fake", "precision", "recall", "density", "coverage", "frechet"}
    keys |= {"jsd_se", "entropy_fake_se", "precision_se", "copying", "copying_cells"}
    keys |= {"copying_share"}
    assert keys <= set(result["metrics"])
    assert all(math.isfinite(v) for v in result["metrics"].values())
    # equal sizes: 300, or the whole split where it holds fewer (297 digits)
    assert result["n_generated"] == result["n_real"] in (297, 300) and result["equal_sizes"]
    if "modes_covered" in result["metrics"]:  # the ring: a known mixture
        assert 0 <= result["metrics"]["modes_covered"] <= 8


def test_evaluate_compares_equal_sizes_unless_told_otherwise(checkpoint):
    """The ring's split holds 500 samples: 1,000 asked for gives 500 against 500 unless
    ``equal_sizes=false``, and then the table and the record say the sizes differ and show
    the cap H(1/3, 2/3) of the weighted JSD."""
    equal = evaluate(_app_config("evaluate", f"ckpt_path={checkpoint}", "n_samples=1000"))
    assert equal["n_real"] == equal["n_generated"] == 500 and equal["equal_sizes"]
    assert equal["jsd_cap"] == pytest.approx(math.log(2))
    assert "jsd_cap" not in table(equal) and "Sizes differ" not in table(equal)
    fewer = evaluate(_app_config("evaluate", f"ckpt_path={checkpoint}", "n_samples=300"))
    assert fewer["n_real"] == fewer["n_generated"] == 300  # a seeded subset of the split
    unequal = evaluate(
        _app_config("evaluate", f"ckpt_path={checkpoint}", "n_samples=1000", "equal_sizes=false")
    )
    assert (unequal["n_real"], unequal["n_generated"], unequal["equal_sizes"]) == (500, 1000, False)
    third = 1 / 3
    cap = -third * math.log(third) - (1 - third) * math.log(1 - third)
    assert unequal["jsd_cap"] == pytest.approx(cap) and cap < 0.64
    written = _record(checkpoint, unequal)
    assert written["equal_sizes"] is False and written["jsd_cap"] == unequal["jsd_cap"]
    shown = table(unequal)
    assert "| jsd_cap | 0.6365 |" in shown and "Sizes differ (1000 generated, 500 real)" in shown
    with pytest.raises(ConfigError, match="equal_sizes"):
        evaluate(_app_config("evaluate", f"ckpt_path={checkpoint}", "equal_sizes=3"))


def test_the_table_says_what_a_standard_error_covers():
    with_se = {"metrics": {"jsd": 0.1, "jsd_se": 0.01}, "equal_sizes": True}
    assert table(with_se).endswith(SE_NOTE) and "sampling error only" in SE_NOTE
    assert "bias" in SE_NOTE
    assert SE_NOTE not in table({"metrics": {"jsd": 0.1}, "equal_sizes": True})


def test_jsd_cap_is_the_label_entropy_the_knn_jsd_reaches_at_total_separation():
    assert jsd_cap(500, 500) == pytest.approx(math.log(2))
    assert jsd_cap(7, 7, base=2) == pytest.approx(1.0)
    assert jsd_cap(40, 1000) == jsd_cap(1000, 40) == pytest.approx(0.16302, abs=1e-5)
    # the case: 1,000 generated against 40 real, told apart perfectly
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(40, 2, generator=generator)
    far = torch.randn(1000, 2, generator=generator) + 50
    assert float(jensen_shannon(real, far)) == pytest.approx(jsd_cap(40, 1000), abs=1e-3)
    for bad in ({"n_real": 0}, {"n_generated": 2.5}, {"base": 1}, {"base": True}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            jsd_cap(**({"n_real": 3, "n_generated": 4} | bad))


def test_evaluate_baseline_is_a_near_perfect_match(checkpoint):
    result = evaluate(
        _app_config("evaluate", f"ckpt_path={checkpoint}", "n_samples=300", "baseline=true")
    )
    ceiling = result["baseline_train_vs_split"]
    assert ceiling["precision"] > 0.8 and ceiling["jsd"] < result["metrics"]["jsd"]


@pytest.mark.parametrize("checkpoint", ["digits"], indirect=True)
def test_generate_png_npz_and_interpolation(checkpoint, tmp_path):
    png = generate(_app_config("generate", f"ckpt_path={checkpoint}", f"out={tmp_path}/a.png"))
    assert png.stat().st_size > 0
    npz = generate(
        _app_config(
            "generate", f"ckpt_path={checkpoint}", "format=npz", "n=5", f"out={tmp_path}/b.npz"
        )
    )
    samples = np.load(npz)["samples"]
    assert samples.shape == (5, 1, 8, 8) and samples.min() >= -1 and samples.max() <= 1
    strip = generate(_app_config("generate", f"ckpt_path={checkpoint}", "interpolate=true", "n=8"))
    assert strip.name == "last-interpolation.png" and strip.is_file()


@pytest.mark.slow
def test_bad_checkpoints_are_refused_in_one_sentence(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_checkpoint(tmp_path / "missing.ckpt")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not written by"):
        read_checkpoint(foreign)
    (tmp_path / "junk.ckpt").write_text("not a checkpoint")
    result = subprocess.run(
        [sys.executable, "-m", "gan_je.evaluate", f"ckpt_path={tmp_path / 'junk.ckpt'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("gan_je.evaluate: ")


@pytest.mark.parametrize("checkpoint", ["digits"], indirect=True)
def test_evaluate_in_another_feature_space(checkpoint, tmp_path):
    cfg = _app_config(
        "evaluate",
        f"ckpt_path={checkpoint}",
        "n_samples=300",
        "features=classifier",
        f"paths.root_dir={tmp_path}",
    )
    result = evaluate(cfg)
    features = result["features"]  # the config it compared in, as plain values
    assert features["_target_"] == "gan_je.features.Classifier" and features["dim"] == 8
    assert features["cache_dir"] == str(tmp_path / "outputs" / ".feature_cache")  # resolved
    assert math.isfinite(result["metrics"]["jsd"])
    assert list((tmp_path / "outputs" / ".feature_cache").glob("classifier-*.pt"))


def _image_folder(folder: Path, n: int = 96) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"{i:03d}.png")


@pytest.mark.slow
def test_a_checkpoint_samples_and_generates_after_its_training_data_is_gone(train_config, tmp_path):
    folder = tmp_path / "images"
    _image_folder(folder)
    data = ["data=folder", f"data.path={folder}", "data.image_size=8", "data.val_size=0.25"]
    cfg = train_config(*data, "data.batch_size=16", "data.num_workers=0", "debug=limit", *QUIET[:1])
    train(cfg)
    checkpoint = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    for image in folder.iterdir():
        image.unlink()
    folder.rmdir()

    module = GANModule.load_from_checkpoint(checkpoint, map_location="cpu")
    first, again = module.sample(6, seed=3), module.sample(6, seed=3)
    assert first.shape == (6, 3, 8, 8) and torch.equal(first, again)
    assert not torch.equal(first, module.sample(6, seed=4))
    assert module.g_step == 8 and module.metric.features.fitted  # 2 epochs of 4 batches

    result = subprocess.run(
        [sys.executable, "-m", "gan_je.generate", f"ckpt_path={checkpoint}", "n=16"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert checkpoint.with_name("last-samples.png").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", ["ring"], indirect=True)
def test_a_checkpoint_cannot_name_code_to_run(checkpoint, tmp_path, train_config):
    """A checkpoint is data: a part naming anything but a registered gan_je part is refused
    before anything is imported or called."""
    marker = tmp_path / "pwned"
    hostile_part = {"_target_": "builtins.open", "file": str(marker), "mode": "w"}
    for name, command in (("generator", generate), ("loss", evaluate)):
        state = torch.load(checkpoint, weights_only=True)
        state["hyper_parameters"][name] = hostile_part
        hostile = tmp_path / f"hostile-{name}.ckpt"
        torch.save(state, hostile)
        with pytest.raises(CheckpointError, match="not a registered gan_je part"):
            command(_app_config(command.__module__.split(".")[-1], f"ckpt_path={hostile}"))
        if name == "loss":
            with pytest.raises(CheckpointError, match="not a registered gan_je part"):
                GANModule.load_from_checkpoint(hostile)
            with pytest.raises(CheckpointError, match=r"loss: _target_ 'builtins\.open' is not"):
                train(train_config("experiment=ring", f"ckpt_path={hostile}", *QUIET, run="new"))
    with pytest.raises(CheckpointError, match="no checkpoint at http"):  # never a download
        GANModule.load_from_checkpoint("http://127.0.0.1:9/model.ckpt")
    assert not marker.exists()


class _RunsCode:
    """Unpickling this would run ``touch <marker>``: what a poisoned data file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint", ["ring"], indirect=True)
def test_the_data_a_checkpoint_names_cannot_run_code_either(checkpoint, tmp_path):
    """evaluate rebuilds the data the checkpoint names; CIFAR-10's files are pickles, read
    so that they yield arrays only, and the checkpoint cannot make it download."""
    marker, folder = tmp_path / "pwned", tmp_path / "data" / CIFAR10_FOLDER
    folder.mkdir(parents=True)
    for name in CIFAR10_FILES:
        (folder / name).write_bytes(pickle.dumps({"data": _RunsCode(marker), "labels": [0]}))
    state = torch.load(checkpoint, weights_only=True)
    data = {"_target_": "gan_je.data.TorchvisionImages", "name": "cifar10", "download": True}
    state["hyper_parameters"]["run_config"]["data"] = data | {"data_dir": str(tmp_path / "data")}
    hostile = tmp_path / "hostile.ckpt"
    torch.save(state, hostile)
    with pytest.raises(DataError, match=r"names (posix|os)\.system"):
        evaluate(_app_config("evaluate", f"ckpt_path={hostile}", "n_samples=100"))
    assert not marker.exists()
    assert not marker.exists()


@pytest.mark.slow
def test_generate_draws_what_the_restored_module_draws(train_config):
    """``generate`` loads only the sampling network (the EMA copy here); it must draw
    exactly the samples of the whole restored module."""
    ring = ["experiment=ring", "data.n_train=2048", "data.n_val=500", "model.ema_decay=0.9"]
    cfg = train_config(*ring, "debug=limit", *QUIET[:1])
    train(cfg)
    path = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    module = GANModule.load_from_checkpoint(path)
    sampler = load_sampler(path)
    assert sampler.g_step == module.g_step == 10 and sampler.data_spec["centers"]
    expected = module.sample(300, seed=5, batch_size=64)
    torch.testing.assert_close(draw(sampler.network, 300, seeded(5), 64), expected, rtol=0, atol=0)
    live = module.generator(torch.randn(3, 64, generator=seeded(1)))
    assert not torch.allclose(live, module.sample(3, seed=1))  # it is the EMA copy
