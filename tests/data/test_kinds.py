"""The kinds of sample a data spec names: their checks, pictures, files and the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_je.data.kinds import KINDS, SampleKind, kind_of, register_kind, with_kind
from gan_je.errors import ConfigError
from gan_je.module import GANModule
from gan_je.sampling import build_generator

MLP = {"_target_": "gan_je.models.MLPGenerator", "_partial_": True, "hidden": 8, "n_layers": 1}


def test_a_spec_from_before_kinds_gets_its_kind():
    """Checkpoints of the previous version hold ``{"sample_shape", "image"}``."""
    image = {"sample_shape": [1, 8, 8], "image": True}
    ring = {"sample_shape": [2], "image": False, "centers": [[1.0, 0.0]], "std": 0.01}
    assert with_kind(image) == {"kind": "image", "sample_shape": [1, 8, 8]}
    assert with_kind(ring) == {
        "kind": "points",
        "sample_shape": [2],
        "centers": [[1.0, 0.0]],
        "std": 0.01,
    }
    assert with_kind({"kind": "waveform", "sample_shape": [1, 4]}) == {
        "kind": "waveform",
        "sample_shape": [1, 4],
    }
    assert kind_of(image).name == "image" and kind_of(ring).name == "points"


def test_an_old_spec_builds_the_networks_it_built_before():
    """A module given a legacy spec (as ``load_from_checkpoint`` passes the checkpoint's)
    builds a bounded generator for images and keeps the spec with its kind."""
    module_args = {
        "generator": MLP,
        "discriminator": {"_target_": "gan_je.models.MLPDiscriminator", "_partial_": True},
        "loss": {"_target_": "gan_je.losses.NonSaturating"},
        "metric": {"_target_": "gan_je.metrics.JointEntropy"},
        "optimizer_g": {"_target_": "torch.optim.Adam", "_partial_": True},
        "optimizer_d": {"_target_": "torch.optim.Adam", "_partial_": True},
    }
    module = GANModule(**module_args, data_spec={"sample_shape": [1, 4, 4], "image": True})
    assert module.hparams.data_spec == {"kind": "image", "sample_shape": [1, 4, 4]}
    assert module.generator.bounded
    z = torch.randn(3, module.generator.latent_dim) * 100
    assert module.generator(z).abs().max() <= 1
    module = GANModule(**module_args, data_spec={"sample_shape": [2], "image": False})
    assert module.hparams.data_spec["kind"] == "points" and not module.generator.bounded


@pytest.mark.parametrize(
    ("spec", "bounded"),
    [
        ({"kind": "points", "sample_shape": [2]}, False),
        ({"kind": "image", "sample_shape": [3, 4, 4]}, True),
        ({"kind": "tokens", "sample_shape": [5, 7], "vocab_size": 7}, False),
        ({"kind": "waveform", "sample_shape": [1, 32], "sample_rate": 8000}, True),
    ],
)
def test_the_kind_says_whether_the_generator_is_bounded(spec, bounded):
    generator = build_generator(MLP, spec)
    assert generator.bounded is bounded and kind_of(spec).bounded is bounded
    assert generator(torch.randn(2, generator.latent_dim)).shape == (2, *spec["sample_shape"])


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"sample_shape": [2, 2]}, r"kind 'points' needs a sample_shape \(d,\)"),
        ({"kind": "points", "sample_shape": [2], "std": 0.1}, "both a mixture's centers and std"),
        ({"kind": "image", "sample_shape": [28, 28]}, r"\(C, H, W\)"),
        ({"kind": "image", "sample_shape": [1, 0, 4]}, "list of positive ints"),
        ({"kind": "tokens", "sample_shape": [5, 7]}, "vocab_size >= 2"),
        ({"kind": "tokens", "sample_shape": [5, 6], "vocab_size": 7}, r"\(length, vocab_size\)"),
        ({"kind": "waveform", "sample_shape": [1, 32]}, "sample_rate"),
        ({"kind": "waveform", "sample_shape": [1, 32], "sample_rate": 0}, "sample_rate"),
        ({"kind": "waveform", "sample_shape": [32], "sample_rate": 8000}, "(channels, length)"),
        ({"kind": "video", "sample_shape": [3]}, "'video', not a registered kind"),
        ([2], "must be a dict"),
    ],
)
def test_a_spec_that_does_not_fit_its_kind_is_refused(spec, match):
    with pytest.raises(ConfigError, match=match):
        kind_of(spec)


def test_register_kind_refuses_nameless_and_clashing_kinds():
    class Nameless(SampleKind):
        pass

    class OtherImage(SampleKind):
        name = "image"

    with pytest.raises(ValueError, match="with a name"):
        register_kind(Nameless)
    with pytest.raises(ValueError, match="already"):
        register_kind(OtherImage)
    assert register_kind(KINDS["image"]) is KINDS["image"]  # registering again is harmless


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_each_kind_draws_its_picture(tmp_path):
    image = kind_of({"kind": "image", "sample_shape": [1, 2, 2]})
    image.picture(torch.ones(4, 1, 2, 2), tmp_path / "grid.png", "t")
    assert _png(tmp_path / "grid.png").shape == (7, 7, 3)  # 2 x 2 cells of 2 px, 1 px padding
    image.picture(torch.ones(4, 1, 2, 2), tmp_path / "strip.png", "t", strip=True)
    assert _png(tmp_path / "strip.png").shape == (4, 13, 3)  # one row of 4
    drawn = {
        "points": ({"kind": "points", "sample_shape": [2], "centers": [[0, 0]], "std": 1}, (9, 2)),
        "tokens": ({"kind": "tokens", "sample_shape": [4, 3], "vocab_size": 3}, (5, 4, 3)),
        "waveform": ({"kind": "waveform", "sample_shape": [2, 50], "sample_rate": 100}, (3, 2, 50)),
    }
    for name, (spec, shape) in drawn.items():
        kind_of(spec).picture(torch.rand(shape), tmp_path / f"{name}.png", "title")
        assert _png(tmp_path / f"{name}.png").std() > 0  # something was drawn
    points_3d = kind_of({"kind": "points", "sample_shape": [3]})
    assert not points_3d.has_picture and points_3d.formats == ("npz",)
    with pytest.raises(NotImplementedError, match="no picture"):
        points_3d.picture(torch.rand(4, 3), tmp_path / "none.png", "t")


def test_write_offers_the_kinds_formats(tmp_path):
    waveform = kind_of({"kind": "waveform", "sample_shape": [1, 8], "sample_rate": 8000})
    samples = torch.rand(3, 1, 8) * 2 - 1
    waveform.write(samples, tmp_path / "out" / "s.npz", "npz", "t", strip=False)
    saved = np.load(tmp_path / "out" / "s.npz")
    assert np.array_equal(saved["samples"], samples.numpy()) and str(saved["kind"]) == "waveform"
    assert list(saved["value_range"]) == [-1, 1]
    assert "value_range" not in np.load(_written_points(tmp_path))
    with pytest.raises(ConfigError, match="format=txt is not offered for samples of kind"):
        waveform.write(samples, tmp_path / "s.txt", "txt", "t", strip=False)


def _written_points(tmp_path: Path) -> Path:
    path = tmp_path / "points.npz"
    kind_of({"kind": "points", "sample_shape": [2]}).write(
        torch.rand(4, 2), path, "npz", "t", False
    )
    return path
