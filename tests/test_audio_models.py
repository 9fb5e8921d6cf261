"""WaveGAN and SpecGAN (gan_je.models.wavegan, gan_je.models.specgan): phase shuffle, the
networks' shapes and refusals, SpecGAN's train form, and GANModule training them (the
generator's optional train_shape / to_train_form), resuming and loading their checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import lightning
import pytest
import torch
from torch import nn

from gan_je.audio import log_spectrogram
from gan_je.commands import build_from_config
from gan_je.data.base import ArrayDataModule
from gan_je.data.kinds import kind_of
from gan_je.errors import ConfigError
from gan_je.models import (
    SpecGANDiscriminator,
    SpecGANGenerator,
    WaveGANDiscriminator,
    WaveGANGenerator,
    contract,
    phase_shuffle,
)
from gan_je.module import GANModule

RATE = 8000


class TinyWaves(ArrayDataModule):
    """Sines of random frequency and phase, ``(1, length)`` at 8 kHz: a stand-in for the
    audio data modules (the kind ``waveform`` and its spec)."""

    kind = "waveform"

    def __init__(self, length: int = 1024, n: int = 64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.length, self.n = length, n

    def _load(self):
        rng = torch.Generator().manual_seed(self.data_seed)
        t = torch.arange(self.length) / RATE
        frequency = 200 + 800 * torch.rand(2 * self.n, 1, 1, generator=rng)
        phase = 2 * math.pi * torch.rand(2 * self.n, 1, 1, generator=rng)
        x = 0.5 * torch.sin(2 * math.pi * frequency * t + phase)
        y = torch.zeros(2 * self.n, dtype=torch.int64)
        return x[: self.n], y[: self.n], x[self.n :], y[self.n :]

    @property
    def data_spec(self) -> dict:
        shape = [1, self.length]
        return kind_of({"kind": "waveform", "sample_shape": shape, "sample_rate": RATE}).spec


# ------------------------------------------------------------------------- phase shuffle
def test_phase_shuffle_rolls_each_example_by_its_own_shift_and_keeps_its_values():
    x = torch.randn(64, 3, 50, generator=torch.Generator().manual_seed(1))
    out = phase_shuffle(x, 2, generator=torch.Generator().manual_seed(0))
    shifts = []
    for example, shuffled in zip(x, out, strict=True):
        matches = [k for k in range(-2, 3) if torch.equal(shuffled, torch.roll(example, k, -1))]
        assert len(matches) == 1
        shifts.append(matches[0])
        values = example.flatten().sort().values
        assert torch.equal(shuffled.flatten().sort().values, values)
    assert set(shifts) == {-2, -1, 0, 1, 2}  # 64 draws of 5 shifts use them all
    again = phase_shuffle(x, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # seeded
    assert torch.equal(phase_shuffle(x, 0), x)


def test_phase_shuffle_draws_from_the_global_stream_when_given_no_generator():
    x = torch.randn(16, 2, 30)
    torch.manual_seed(3)
    first = phase_shuffle(x, 2)
    torch.manual_seed(3)
    assert torch.equal(phase_shuffle(x, 2), first)


@pytest.mark.parametrize(("shape", "n"), [((4, 30), 2), ((2, 1, 30), -1)])
def test_phase_shuffle_refuses_other_shapes_and_negative_shifts(shape, n):
    with pytest.raises(ValueError, match="phase"):
        phase_shuffle(torch.zeros(shape), n)


# ------------------------------------------------------------------------- WaveGAN
@pytest.mark.parametrize("length", [1024, 2048, 8192, 16384])
def test_wavegan_shapes_for_every_length_it_supports(length):
    generator = WaveGANGenerator((2, length), bounded=True, width=2, latent_dim=10)
    clips = generator(torch.randn(3, 10))
    assert clips.shape == (3, 2, length) and clips.abs().max() <= 1
    assert generator.input.out_features == 32 * length // 1024  # 16·width at L / 4^5
    discriminator = WaveGANDiscriminator((4, length), width=2)  # a pack of 2 stereo clips
    assert discriminator(torch.randn(3, 4, length)).shape == (3,)
    assert discriminator.features(torch.randn(3, 4, length)).shape == (3, 32 * length // 1024)


def test_the_published_wavegan_has_the_papers_layers():
    generator = WaveGANGenerator((1, 16384), bounded=True)  # width 64, latent_dim 100
    n_parameters = sum(p.numel() for p in generator.parameters())
    assert 19.0e6 < n_parameters < 19.1e6  # 16 x 16·64 from z, then 25-tap kernels
    layers = [layer for layer in generator.net if isinstance(layer, nn.ConvTranspose1d)]
    assert [layer.out_channels for layer in layers] == [512, 256, 128, 64, 1]


def test_wavegan_unbounded_has_no_tanh_and_refuses_other_lengths():
    assert not isinstance(WaveGANGenerator((1, 1024), bounded=False, width=2).net[-1], nn.Tanh)
    for network in (WaveGANGenerator, WaveGANDiscriminator):
        with pytest.raises(ValueError, match=r"multiple of 1024 .*8192 at 8 kHz.*got samples"):
            network((1, 8000))
        with pytest.raises(ValueError, match="multiple of 1024"):
            network((1, 32, 32))


def test_the_wavegan_discriminator_shuffles_phase_in_train_mode_only():
    discriminator = WaveGANDiscriminator((1, 1024), width=2)
    x = torch.randn(8, 1, 1024)
    discriminator.eval()
    state = torch.get_rng_state()
    assert torch.equal(discriminator(x), discriminator(x))
    assert torch.equal(torch.get_rng_state(), state)  # eval mode draws nothing
    discriminator.train()
    assert not torch.equal(discriminator(x), discriminator.eval()(x))
    discriminator.train()
    torch.manual_seed(0)
    first = discriminator(x)
    torch.manual_seed(0)
    assert torch.equal(discriminator(x), first)
    no_shuffle = WaveGANDiscriminator((1, 1024), width=2, phase_shuffle=0)
    no_shuffle.load_state_dict(discriminator.state_dict())
    assert torch.equal(no_shuffle.train()(x), discriminator.eval()(x))


# ------------------------------------------------------------------------- SpecGAN
def test_specgan_makes_spectrograms_in_training_and_waveforms_in_eval():
    generator = SpecGANGenerator((1, 8192), bounded=True, width=2, latent_dim=10)
    assert generator.train_shape == (1, 64, 128)  # n_fft 128, hop 64
    z = torch.randn(3, 10)
    image = generator.train()(z)
    assert image.shape == (3, 1, 64, 128) and image.abs().max() <= 1
    clips = generator.eval()(z)
    assert clips.shape == (3, 1, 8192) and clips.abs().max() <= 1
    torch.testing.assert_close(clips, generator.to_waveform(image))
    discriminator = SpecGANDiscriminator(generator.train_shape, width=2)
    assert discriminator(image).shape == (3,)
    assert discriminator.features(image).shape == (3, 32 * 2 * 4)


def test_specgan_at_the_papers_size_makes_128_by_128_images():
    generator = SpecGANGenerator((1, 16384), bounded=True, n_fft=256, hop=128, width=2)
    assert generator.train_shape == (1, 128, 128) and generator.base == (4, 4)
    assert generator.train()(torch.randn(2, 100)).shape == (2, 1, 128, 128)


def test_specgans_train_form_of_real_clips_is_their_log_spectrogram():
    generator = SpecGANGenerator((1, 8192), bounded=True, width=2)
    real = TinyWaves(length=8192, n=4)
    real.setup("fit")
    clips = real.train_set.tensors[0]
    form = generator.to_train_form(clips)
    assert form.shape == (4, 1, 64, 128)
    torch.testing.assert_close(form, log_spectrogram(clips, 128, 64))
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 8192\)"):
        generator.to_train_form(torch.zeros(4, 1, 4096))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sample_shape": (1, 8192), "hop": 100}, "hop that divides the clip length 8192"),
        ({"sample_shape": (1, 8192), "hop": 128}, "hop must be below n_fft"),
        ({"sample_shape": (1, 8192), "n_fft": 127}, "even number"),
        ({"sample_shape": (1, 8192), "n_fft": 32768}, "8192 samples is too short"),
        ({"sample_shape": (1, 8192), "n_fft": 100}, "multiples of 32"),
        ({"sample_shape": (1, 8192), "bounded": False}, "in \\[-1, 1\\]"),
        ({"sample_shape": (1, 64, 64)}, "waveforms \\(channels, length\\)"),
    ],
)
def test_specgan_refuses_shapes_it_cannot_make(arguments, message):
    with pytest.raises(ValueError, match=message):
        SpecGANGenerator(**({"bounded": True} | arguments))


def test_the_specgan_discriminator_refuses_other_images():
    with pytest.raises(ValueError, match="multiples of 32"):
        SpecGANDiscriminator((1, 64, 100))


# ------------------------------------------------------------------------- the contract
class Halved(nn.Module):
    """A generator of ``(1, 8)`` samples that trains on ``(1, 4)`` halves."""

    latent_dim = 2

    def __init__(self, train_shape=(1, 4), to_train_form=True, train_output=(1, 4)) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 8)
        if train_shape is not None:
            self.train_shape = train_shape
        if to_train_form:
            self.to_train_form = lambda real: real[..., :4]
        self.train_output = train_output

    def forward(self, z):
        x = self.linear(z).view(-1, 1, 8)
        return x[..., : self.train_output[-1]] if self.training else x


def test_a_generator_with_a_train_form_passes_the_contract():
    assert contract.train_shape(Halved()) == (1, 4)
    contract.check_generator(Halved(), (1, 8))
    assert contract.train_shape(WaveGANGenerator((1, 1024))) is None


@pytest.mark.parametrize(
    ("generator", "message"),
    [
        (Halved(to_train_form=False), r"only one of train_shape and .*add to_train_form"),
        (Halved(train_shape=None), r"only one of train_shape and .*add train_shape"),
        (Halved(train_shape=[1, 4]), "train_shape must be a tuple of ints"),
        (
            Halved(train_output=(1, 3)),
            r"declares train_shape \(1, 4\), but its train-mode output "
            r"has shape \(2, 1, 3\)",
        ),
        (Halved(train_shape=(1, 5), train_output=(1, 5)), r"to_train_form\(real\) has shape"),
    ],
)
def test_the_contract_refuses_a_train_form_half_declared_or_not_kept(generator, message):
    with pytest.raises(ConfigError, match=message):
        contract.check_generator(generator, (1, 8))


# ------------------------------------------------------------------------- training
def _small(train_config, model: str, *overrides: str) -> GANModule:
    """``model=<model> loss=wgan_gp`` with networks of width 2, not built yet."""
    cfg = train_config(
        f"model={model}",
        "loss=wgan_gp",
        "model.generator.width=2",
        "model.discriminator.width=2",
        "model.generator.latent_dim=8",
        "model.n_preview=4",
        *overrides,
    )
    return build_from_config(cfg.model, "model")


def _fit(module, datamodule, ckpt_path=None, **trainer_args) -> lightning.Trainer:
    trainer = lightning.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        **trainer_args,
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    return trainer


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "length", "settings"),
    [
        ("wavegan", 1024, []),
        ("specgan", 1024, ["model.generator.n_fft=64", "model.generator.hop=32"]),
    ],
)
def test_ganmodule_trains_and_reloads_wavegan_and_specgan(
    train_config, tmp_path, model, length, settings
):
    torch.manual_seed(0)
    module = _small(train_config, model, *settings)
    datamodule = TinyWaves(length=length, n=16, batch_size=8)
    seen = []
    penalty = module.loss.penalty

    def spy(discriminator, real, fake, real_logits=None, *, d_step):
        seen.append((tuple(real.shape), tuple(fake.shape)))
        return penalty(discriminator, real, fake, real_logits, d_step=d_step)

    module.loss.penalty = spy
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=2)
    assert module.g_step == 2
    form = (1, 32, 32) if model == "specgan" else (1, length)
    assert seen == [((8, *form), (8, *form))] * 10  # n_critic 5, each penalised in train form
    assert module.preview().shape == (4, 1, length)
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    loaded = GANModule.load_from_checkpoint(path)
    assert type(loaded.generator) is type(module.generator)
    torch.testing.assert_close(loaded.sample(5, seed=1), module.sample(5, seed=1))
    assert loaded.sample(5, seed=1).shape == (5, 1, length)


def test_specgan_refuses_the_entropy_regulariser_in_the_metrics_features(train_config):
    module = _small(train_config, "specgan", "model.entropy_space=features")
    with pytest.raises(ConfigError, match=r"set model\.entropy_space=discriminator"):
        module.build_networks(TinyWaves(length=8192).data_spec)
    module = _small(train_config, "specgan")  # the config's own: the discriminator
    module.build_networks(TinyWaves(length=8192).data_spec)
    assert module.discriminator.sample_shape == (1, 64, 128)


def test_a_packed_wavegan_discriminator_judges_packs_of_clips(train_config):
    module = _small(train_config, "wavegan", "model.pack=2")
    module.build_networks(TinyWaves().data_spec)
    assert module.discriminator.sample_shape == (2, 1024)


def _state(module: GANModule) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in module.state_dict().items()}


@pytest.mark.slow
def test_a_resumed_wavegan_run_equals_the_uninterrupted_one(train_config, tmp_path: Path):
    """Phase shuffle draws from torch's global stream, which the checkpoint saves: 2 epochs
    in one go and 1 + 1 resumed end bit for bit alike."""
    datamodule = TinyWaves(n=16, batch_size=8)
    torch.manual_seed(0)
    full = _small(train_config, "wavegan")
    _fit(full, datamodule, max_epochs=2, limit_train_batches=2)
    torch.manual_seed(0)
    cut = _small(train_config, "wavegan")
    trainer = _fit(cut, datamodule, max_epochs=1, limit_train_batches=2)
    trainer.save_checkpoint(tmp_path / "cut.ckpt")
    torch.manual_seed(1)  # the streams the checkpoint saved win over these
    resumed = _small(train_config, "wavegan")
    _fit(resumed, datamodule, ckpt_path=tmp_path / "cut.ckpt", max_epochs=2, limit_train_batches=2)
    assert resumed.g_step == full.g_step == 4
    expected, got = _state(full), _state(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
