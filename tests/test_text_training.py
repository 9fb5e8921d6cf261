"""Training on token sequences: the text models' configs (model=char_resnet, lstm_gan,
lstm_mle) on a tiny token data module defined here; maximum likelihood (model.adversarial,
model.pretrain_steps), the entropy regulariser on relaxed sequences, exact resume."""

from __future__ import annotations

import math

import lightning
import pytest
import torch

from gan_je import sampling
from gan_je.commands import build_from_config
from gan_je.data.base import ArrayDataModule
from gan_je.errors import ConfigError
from gan_je.estimators import differentiable_entropy
from gan_je.models.lstm import LSTMLanguageModel
from gan_je.module import GANModule

LENGTH, VOCAB = 5, 4
#: a small, quick metric: the k-NN JSD alone, on a random projection of the sequences
QUICK = ["features=random", "estimator.features.dim=4", "estimator.quality=false"]
QUICK += ["estimator.standard_errors=0", "estimator.copying=false"]
QUICK += ["estimator.jsd_classifier=false"]
#: small networks for the tiny data
SMALL = {
    "char_resnet": ["model.generator.width=8", "model.discriminator.width=8"],
    "lstm_gan": ["model.discriminator.width=8", "model.pretrain_steps=0"],
    "lstm_mle": [],
}


class TinyTokens(ArrayDataModule):
    """Token sequences ``(LENGTH, VOCAB)``, one-hot, sampled from a random LSTM language
    model (every parameter N(0, 1), seeded by ``data_seed``): the oracle benchmark in small."""

    kind = "tokens"

    def __init__(self, n_train: int = 256, n_val: int = 64, **kwargs) -> None:
        super().__init__(**{"batch_size": 32} | kwargs)
        self.n_train, self.n_val = n_train, n_val

    def _load(self):
        generator = torch.Generator().manual_seed(self.data_seed)
        oracle = LSTMLanguageModel(VOCAB, LENGTH).init_normal_(generator)
        with torch.no_grad():
            ids = oracle.sample(self.n_train + self.n_val, generator)
        x = torch.nn.functional.one_hot(ids, VOCAB).float()
        y = torch.zeros(len(x), dtype=torch.int64)
        return x[: self.n_train], y[: self.n_train], x[self.n_train :], y[self.n_train :]

    @property
    def data_spec(self) -> dict:
        return {"kind": "tokens", "sample_shape": [LENGTH, VOCAB], "vocab_size": VOCAB}


def _module(train_config, model: str, *overrides: str) -> tuple[TinyTokens, GANModule]:
    cfg = train_config(f"model={model}", *SMALL[model], *QUICK, *overrides)
    torch.manual_seed(cfg.seed)  # as gan_je.train seeds every stream before building
    module = build_from_config(cfg.model, "model")
    datamodule = TinyTokens()
    datamodule.setup("fit")
    module.build_networks(datamodule.data_spec)
    return datamodule, module


def _fit(module, datamodule, ckpt_path=None, **trainer_args) -> lightning.Trainer:
    trainer = lightning.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **trainer_args,
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    return trainer


def _held_out_nll(module: GANModule, datamodule: TinyTokens) -> float:
    with torch.no_grad():
        return float(module.generator.nll(datamodule.val_tensor().argmax(-1)))


@pytest.mark.parametrize(
    ("model", "loss"),
    [
        pytest.param("char_resnet", "wgan_gp", marks=pytest.mark.slow),
        ("lstm_gan", "nonsaturating"),
        ("lstm_mle", "nonsaturating"),
    ],
)
def test_each_text_model_trains_and_validates_on_token_sequences(train_config, model, loss):
    datamodule, module = _module(train_config, model, f"loss={loss}")
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=3)
    assert module.g_step == 3
    assert math.isfinite(float(trainer.callback_metrics["val/jsd"]))
    logged = set(trainer.callback_metrics)
    if model == "lstm_mle":
        assert "train/nll" in logged and "train/d_loss" not in logged
    else:
        assert {"train/d_loss", "train/g_loss"} <= logged and "train/nll" not in logged
    samples = module.sample(10, seed=0)  # eval mode: one-hot sequences
    assert samples.shape == (10, LENGTH, VOCAB)
    assert ((samples == 0) | (samples == 1)).all() and (samples.sum(-1) == 1).all()


def test_maximum_likelihood_lowers_the_nll_and_never_steps_the_discriminator(train_config):
    datamodule, module = _module(train_config, "lstm_mle")
    before = _held_out_nll(module, datamodule)
    discriminator = {k: v.clone() for k, v in module.discriminator.state_dict().items()}
    _fit(module, datamodule, max_epochs=3, limit_val_batches=0)
    assert module.g_step == 3 * 8
    assert _held_out_nll(module, datamodule) < before - 0.2
    for key, value in module.discriminator.state_dict().items():
        assert torch.equal(value, discriminator[key]), key


def test_pretraining_switches_to_adversarial_steps_at_the_right_generator_step(train_config):
    datamodule, module = _module(train_config, "lstm_gan", "model.pretrain_steps=5")
    kinds = []
    for kind, name in (("mle", "_likelihood_step"), ("gan", "_adversarial_step")):
        step = getattr(module, name)

        def recording(real, kind=kind, step=step):
            kinds.append((kind, module.g_step))
            return step(real)

        setattr(module, name, recording)
    _fit(module, datamodule, max_epochs=1, limit_val_batches=0)
    assert kinds == [("mle", step) for step in range(5)] + [("gan", step) for step in range(5, 8)]


def test_maximum_likelihood_needs_a_generator_with_nll(train_config):
    for setting in ("model.pretrain_steps=3", "model.adversarial=false"):
        with pytest.raises(ConfigError, match=r"CharResNetGenerator cannot \(it has no nll"):
            _module(train_config, "char_resnet", setting)
    with pytest.raises(ConfigError, match=r"model\.pretrain_steps"):
        _module(train_config, "lstm_gan", "model.pretrain_steps=-1")
    with pytest.raises(ConfigError, match=r"model\.adversarial must be true or false"):
        _module(train_config, "lstm_gan", "model.adversarial=2")


def test_settings_that_would_do_nothing_are_refused(train_config):
    with pytest.raises(ConfigError, match=r"pretrain_steps=5 >= model.max_g_steps=5: no adv"):
        _module(train_config, "lstm_gan", "model.pretrain_steps=5", "model.max_g_steps=5")
    _module(train_config, "lstm_gan", "model.pretrain_steps=4", "model.max_g_steps=5")
    _module(train_config, "lstm_mle", "model.pretrain_steps=5", "model.max_g_steps=5")
    with pytest.raises(ConfigError, match=r"loss.entropy_weight=0.1 with model.adversarial=false"):
        _module(train_config, "lstm_mle", "loss.entropy_weight=0.1")


@pytest.mark.parametrize("model", ["lstm_gan", "char_resnet"])
def test_the_entropy_regulariser_differentiates_relaxed_sequences(train_config, model):
    """The regulariser's batch entropy is taken of the train-mode (relaxed) samples' features
    and reaches the generator's parameters."""
    datamodule, module = _module(train_config, model, "loss.entropy_weight=0.5")
    module.fit_features(datamodule)
    module.generator.train()
    fake = module.generator(torch.randn(32, module.generator.latent_dim))
    differentiable_entropy(module._features(fake)).backward()
    grads = [p.grad for p in module.generator.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    assert math.isfinite(float(trainer.callback_metrics["train/entropy_batch"]))


def test_validation_feeds_the_metric_in_chunks_from_the_same_latents(train_config, monkeypatch):
    datamodule, module = _module(train_config, "lstm_gan", "estimator.n_fake=100")
    sizes, update = [], module.metric.update

    def recording(samples, real):
        if not real:
            sizes.append(samples.shape[0])
        update(samples, real)

    module.metric.update = recording
    monkeypatch.setattr("gan_je.sampling.CHUNK_BYTES", 30 * 4 * LENGTH * VOCAB)
    _fit(module, datamodule, max_epochs=1, limit_train_batches=1)
    assert sizes == [30, 30, 30, 10]
    chunks = list(sampling.batches(module.sampler, 100, torch.Generator().manual_seed(1), chunk=30))
    whole = sampling.draw(module.sampler, 100, torch.Generator().manual_seed(1))
    assert torch.equal(torch.cat(chunks), whole)


def _state(module: GANModule) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "overrides"),
    [
        ("lstm_gan", ["model.pretrain_steps=4"]),  # Gumbel noise from the restored stream
        ("lstm_gan", ["model.pretrain_steps=12"]),  # the switch at g_step 12, after the cut
        ("lstm_mle", []),
    ],
)
def test_a_resumed_text_run_equals_the_uninterrupted_one(train_config, tmp_path, model, overrides):
    """8 generator steps, a checkpoint, 8 more ends bit for bit where 16 in one go end,
    through pretraining into adversarial steps."""
    datamodule, full = _module(train_config, model, *overrides)
    _fit(full, datamodule, max_epochs=2)
    datamodule, cut = _module(train_config, model, *overrides)
    trainer = _fit(cut, datamodule, max_epochs=1)
    trainer.save_checkpoint(tmp_path / "cut.ckpt")
    datamodule, resumed = _module(train_config, model, *overrides)
    _fit(resumed, datamodule, max_epochs=2, ckpt_path=tmp_path / "cut.ckpt")
    assert (full.g_step, resumed.g_step) == (16, 16)
    expected, got = _state(full), _state(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_the_entropy_controller_warns_that_maximum_likelihood_ignores_it(caplog):
    from types import SimpleNamespace

    from gan_je.callbacks import EntropyMatching

    with caplog.at_level("WARNING", logger="gan_je.callbacks"):
        EntropyMatching().on_fit_start(None, SimpleNamespace(adversarial=True))
        assert not caplog.records
        EntropyMatching().on_fit_start(None, SimpleNamespace(adversarial=False))
    assert "does nothing with model.adversarial=false" in caplog.text
