"""GANModule: step counting, schedules, EMA, stopping, validation samples, saved state."""

from __future__ import annotations

import random
from types import SimpleNamespace

import lightning
import numpy as np
import pytest
import torch

from gan_je import seeding
from gan_je.callbacks import EntropyMatching, ModeCollapseMonitor
from gan_je.errors import ConfigError
from gan_je.estimators import entropy
from gan_je.estimators.coverage import mode_coverage
from gan_je.module import GANModule
from gan_je.train import build

SMALL_RING = ["experiment=ring", "data.n_train=1024", "data.n_val=300", "data.batch_size=64"]


def _fit(module, datamodule, callbacks=(), ckpt_path=None, **trainer_args) -> lightning.Trainer:
    trainer_args = {"num_sanity_val_steps": 0} | trainer_args
    trainer = lightning.Trainer(
        callbacks=list(callbacks),
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_args,
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    return trainer


def test_n_critic_steps_and_the_generator_step_counter(train_config):
    datamodule, module = build(train_config(*SMALL_RING, "loss=wgan_gp"))
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=4, limit_val_batches=0)
    assert module.g_step == 4
    assert trainer.global_step == 4 * (5 + 1)  # Lightning counts every optimizer step


def test_schedulers_step_once_per_generator_step(train_config):
    scheduler = "{_target_:torch.optim.lr_scheduler.ExponentialLR,_partial_:true,gamma:0.5}"
    datamodule, module = build(train_config(*SMALL_RING, f"model.scheduler_d={scheduler}"))
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=3, limit_val_batches=0)
    opt_g, opt_d = trainer.optimizers
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**3)


def test_max_g_steps_stops_training(train_config):
    datamodule, module = build(train_config(*SMALL_RING, "model.max_g_steps=7"))
    _fit(module, datamodule, max_epochs=5, limit_val_batches=0)
    assert module.g_step == 7


def test_ema_generator_is_used_for_samples(train_config):
    datamodule, module = build(train_config(*SMALL_RING, "model.ema_decay=0.5"))
    _fit(module, datamodule, max_epochs=1, limit_train_batches=5, limit_val_batches=0)
    ema, live = module.sampler, module.generator
    assert ema is not live
    assert not torch.allclose(ema(module.preview_latents), live(module.preview_latents))
    torch.testing.assert_close(module.preview(), ema.eval()(module.preview_latents))


def test_the_ema_ramp_up_follows_the_generator_from_the_start(train_config):
    # 5 steps of one seed: the ramped average (half-life 5 % of the steps) is near the trained
    # generator, the constant 0.999 still near the first step's weights
    def distance_from_ema_to_generator(rampup: str) -> float:
        config = train_config(*SMALL_RING, "model.ema_decay=0.999", f"model.ema_rampup={rampup}")
        datamodule, module = build(config)
        _fit(module, datamodule, max_epochs=1, limit_train_batches=5, limit_val_batches=0)
        live = module.generator.state_dict()
        average = module.ema.module.state_dict()
        floats = [name for name, tensor in live.items() if tensor.is_floating_point()]
        return sum((average[name] - live[name]).norm().item() for name in floats)

    assert distance_from_ema_to_generator("0.05") < 0.1 * distance_from_ema_to_generator("null")


def test_validation_compares_as_many_generated_samples_as_real_ones(train_config):
    datamodule, module = build(train_config(*SMALL_RING))
    seen = []
    original = module.metric.compute

    def spy():
        real, fake = module.metric.real_and_fake()
        seen.append((real.shape[0], fake.shape[0]))
        return original()

    module.metric.compute = spy
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=2)
    assert seen == [(300, 300)]
    logged = {"val/jsd", "val/entropy_real", "val/jsd_sliced", "val/jsd_se", "val/copying"}
    logged |= {"val/copying_cells", "val/copying_share"}
    assert logged | {"val/entropy_real_se", "val/precision_se"} <= set(trainer.callback_metrics)
    # the training samples the copying statistic compares against: given once, kept
    assert module.metric.training_samples().shape[0] == len(datamodule.train_set)


@pytest.mark.slow
def test_the_validation_set_is_featurised_once_and_kept(train_config):
    datamodule, module = build(train_config(*SMALL_RING))
    assert module.metric.reset_real_features is False  # as conf/estimator/knn.yaml sets
    featurised = []
    original = module.metric.features.forward

    def spy(x):
        featurised.append(x.shape[0])
        return original(x)

    module.metric.features.forward = spy
    seen = []
    compute = module.metric.compute
    module.metric.compute = lambda: seen.append(module.metric.real_and_fake()) or compute()
    _fit(module, datamodule, max_epochs=3, limit_train_batches=2, num_sanity_val_steps=2)
    assert [(real.shape[0], fake.shape[0]) for real, fake in seen] == [(128, 128)] + [
        (300, 300)
    ] * 3
    for real, _ in seen[2:]:
        torch.testing.assert_close(real, seen[1][0], rtol=0, atol=0)
    # the sanity check's 2 batches, then the 300 real samples and the training samples (for
    # the copying statistic) once, then generated ones only
    n_train = len(datamodule.train_set)
    assert sum(featurised) == 128 + 300 + n_train + 128 + 3 * 300


@pytest.mark.slow
def test_each_trainer_call_featurises_its_own_validation_set(train_config):
    datamodule, module = build(train_config(*SMALL_RING))
    _fit(module, datamodule, max_epochs=1, limit_train_batches=2)
    other, _ = build(train_config(*SMALL_RING, "data.data_seed=7"))  # another validation set
    validated = lightning.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    (values,) = validated.validate(module, datamodule=other, verbose=False)
    expected = entropy(other.val_tensor().double())  # 2-D data: the features only centre
    assert values["val/entropy_real"] == pytest.approx(float(expected), abs=1e-6)


def test_n_fake_sets_the_number_of_generated_samples(train_config):
    datamodule, module = build(train_config(*SMALL_RING, "estimator.n_fake=123"))
    module.metric.compute = lambda: {
        "jsd": torch.tensor(float(module.metric.real_and_fake()[1].shape[0]))
    }
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=2)
    assert trainer.callback_metrics["val/jsd"] == 123


def _validation_samples(module, datamodule) -> tuple[torch.Tensor, dict]:
    """The generated samples one ``trainer.validate`` gives the metric, and the values."""
    fakes, update = [], module.metric.update

    def recording(samples, real):
        if not real:
            fakes.append(samples.clone())
        update(samples, real)

    module.metric.update = recording
    validated = lightning.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    (values,) = validated.validate(module, datamodule=datamodule, verbose=False)
    del module.metric.update
    return torch.cat(fakes), values


@pytest.mark.slow
def test_preview_and_validation_latents_are_fixed_by_the_seed(train_config):
    datamodule, module = build(train_config(*SMALL_RING))
    _fit(module, datamodule, max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    _, again = build(train_config(*SMALL_RING))
    _, other_seed = build(train_config(*SMALL_RING, "seed=1"))
    torch.testing.assert_close(module.preview_latents, again.preview_latents)
    assert not torch.equal(module.preview_latents, other_seed.preview_latents)
    torch.manual_seed(5)
    first, values = _validation_samples(module, datamodule)
    torch.manual_seed(6)  # the global stream (training's latents) plays no part
    second, again_values = _validation_samples(module, datamodule)
    assert first.shape == (300, 2)  # as many as the validation set holds
    torch.testing.assert_close(first, second)
    assert values == again_values
    module.seed = 1  # the validation latents come from the module's seed
    third, _ = _validation_samples(module, datamodule)
    assert not torch.allclose(first, third)
    torch.testing.assert_close(module.preview(), module.preview())


def test_checkpoint_state_restores_the_step_and_every_random_stream(train_config):
    _, module = build(train_config(*SMALL_RING))
    module.g_step = 42
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # move every stream on

    _, resumed = build(train_config(*SMALL_RING))
    resumed.on_load_checkpoint(checkpoint)
    resumed._trainer = SimpleNamespace(ckpt_path="last.ckpt")  # trainer.fit(ckpt_path=...)
    resumed.optimizers = lambda: resumed.configure_optimizers()[0]
    resumed.on_train_start()
    assert resumed.g_step == 42
    torch.testing.assert_close(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]

    _, fine_tuned = build(train_config(*SMALL_RING))  # loaded, then trained as a new run
    fine_tuned.on_load_checkpoint(checkpoint)
    fine_tuned._trainer = SimpleNamespace(ckpt_path=None)
    torch.manual_seed(123)
    fine_tuned.on_train_start()
    assert not torch.equal(torch.rand(3), expected[0])  # its own seed's stream, not the old one


def test_module_arguments_are_checked(train_config):
    _, module = build(train_config(*SMALL_RING))
    parts = {key: module.hparams[key] for key in ("generator", "discriminator", "loss", "metric")}
    parts |= {key: module.hparams[key] for key in ("optimizer_g", "optimizer_d")}
    module_class = type(module)
    for bad, match in (
        ({"grad_clip": 0}, "grad_clip"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"ema_decay": "0.999"}, "ema_decay"),
        ({"ema_rampup": 0}, "ema_rampup"),
        ({"n_preview": 0}, "n_preview"),
        ({"max_g_steps": 0}, "max_g_steps"),
        ({"metric": parts["metric"] | {"n_fake": 1}}, "n_fake"),
        ({"metric": parts["metric"] | {"features_fit_samples": 0}}, "features_fit_samples"),
        ({"metric": parts["metric"] | {"mode_coverage": {"sigma": 3}}}, "n_sigma and min_count"),
        ({"metric": {"_target_": "gan_je.features.PCA"}}, "not a gan_je.metrics.ValidationMetric"),
        ({"loss": {"_target_": "os.system", "command": "true"}}, "not a registered"),
        ({"data_spec": {"shape": [2]}}, "sample_shape"),
    ):
        with pytest.raises(ConfigError, match=match):
            module_class(**(parts | bad))


def test_ring_validation_logs_mode_coverage_of_its_generated_samples(train_config):
    overrides = ("estimator.mode_coverage.n_sigma=2", "estimator.mode_coverage.min_count=3")
    datamodule, module = build(train_config(*SMALL_RING, *overrides))
    _fit(module, datamodule, max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    fake, values = _validation_samples(module, datamodule)
    centers, std = torch.tensor(datamodule.data_spec["centers"]), datamodule.data_spec["std"]
    expected = mode_coverage(fake, centers, std, n_sigma=2, min_count=3)
    assert values["val/modes_covered"] == float(expected.modes_covered)
    assert values["val/high_quality"] == pytest.approx(float(expected.high_quality))
    assert values["val/mode_kl"] == pytest.approx(float(expected.mode_kl))
    _, again = _validation_samples(module, datamodule)  # counts restart every validation
    assert again == values


def _monitored(train_config, action: str, *overrides: str):
    datamodule, module = build(train_config(*SMALL_RING, *overrides))
    # 9 modes can never be covered on the 8-mode ring, and with a 100-nat margin the entropy
    # never counts as over-dispersed: every validation looks collapsed
    monitor = ModeCollapseMonitor(min_modes=9, margin=100, patience=2, warmup=0, action=action)
    trainer = _fit(module, datamodule, max_epochs=4, limit_train_batches=3, callbacks=[monitor])
    return module, monitor, trainer


@pytest.mark.slow
def test_monitor_stops_training(train_config):
    module, monitor, _ = _monitored(train_config, "stop")
    assert module.g_step == 6 and monitor.events == [{"g_step": 6, "action": "stop"}]


@pytest.mark.slow
def test_monitor_boosts_the_entropy_weight(train_config):
    module, monitor, _ = _monitored(train_config, "boost")
    assert module.g_step == 12
    assert [event["entropy_weight"] for event in monitor.events] == [0.1, 0.2]
    assert module.entropy_weight() == module.entropy_weight_held == 0.2


@pytest.mark.slow
def test_monitor_boosts_the_weight_in_use_and_ends_annealing(train_config):
    # lambda = 1 annealed to 0 by step 2: the first boost (step 6) starts again from 0.1
    annealed = ("loss.entropy_weight=1.0", "loss.entropy_anneal_steps=2")
    module, monitor, _ = _monitored(train_config, "boost", *annealed)
    assert [event["entropy_weight"] for event in monitor.events] == [0.1, 0.2]
    assert module.loss.entropy_weight_at(module.g_step) == 0.0  # the annealed schedule ended
    assert module.entropy_weight() == 0.2


@pytest.mark.slow
def test_the_boosted_weight_is_module_state_saved_in_checkpoints(train_config, tmp_path):
    _, _, trainer = _monitored(train_config, "boost")
    path = tmp_path / "boosted.ckpt"
    trainer.save_checkpoint(path)
    restored = GANModule.load_from_checkpoint(path)
    assert restored.entropy_weight_held == 0.2 and restored.entropy_weight() == 0.2

    annealed = ("loss.entropy_weight=1.0", "loss.entropy_anneal_steps=2")
    datamodule, resumed = build(train_config(*SMALL_RING, *annealed))
    weights = []

    class Record(lightning.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            weights.append(float(trainer.callback_metrics["train/entropy_weight"]))

    _fit(resumed, datamodule, [Record()], ckpt_path=path, max_epochs=5, limit_train_batches=3)
    assert weights == pytest.approx([0.2] * 3)


def test_a_held_entropy_weight_replaces_the_annealed_one(train_config):
    annealed = ("loss.entropy_weight=1.0", "loss.entropy_anneal_steps=100")
    _, module = build(train_config(*SMALL_RING, *annealed))
    module.g_step = 50
    assert module.entropy_weight() == 0.5
    module.hold_entropy_weight(0.3)  # constant from now on, annealing ended
    for module.g_step in (0, 50, 500):
        assert module.entropy_weight() == 0.3
    module.hold_entropy_weight(-0.2)  # the entropy-matching controller pulls entropy down
    assert module.entropy_weight() == -0.2
    for bad in (float("nan"), float("inf"), "0.1"):
        with pytest.raises(ValueError, match="entropy_weight must be a finite number"):
            module.hold_entropy_weight(bad)


def test_monitor_reads_the_entropy_gap():
    monitor = ModeCollapseMonitor(margin=1.0)
    real = torch.tensor(5.0)
    assert monitor.collapsed({"val/entropy_real": real, "val/entropy_fake": torch.tensor(3.9)})
    assert not monitor.collapsed({"val/entropy_real": real, "val/entropy_fake": torch.tensor(4.1)})
    with pytest.raises(ValueError, match="action"):
        ModeCollapseMonitor(action="panic")


def test_missing_modes_count_only_when_the_generator_is_not_over_dispersed():
    monitor = ModeCollapseMonitor(margin=1.0, min_modes=8)
    real, modes = torch.tensor(-4.0), torch.tensor(6.0)

    def collapsed(fake: float, covered: torch.Tensor = modes) -> bool:
        metrics = {"val/entropy_real": real, "val/entropy_fake": torch.tensor(fake)}
        return monitor.collapsed(metrics | {"val/modes_covered": covered})

    assert collapsed(-4.0) and collapsed(-3.0)  # modes missing, entropy at most 1 nat above
    assert not collapsed(-2.9)  # spread wider than the data: under-trained, not collapsed
    assert not collapsed(-4.0, torch.tensor(8.0))  # every mode covered
    assert collapsed(-5.5, torch.tensor(8.0))  # every mode, but the entropy gap says collapse


def test_entropy_matching_moves_the_weight_both_ways_and_clips_it(train_config):
    _, module = build(train_config(*SMALL_RING))
    controller = EntropyMatching(gain=0.1, max_weight=0.5, warmup=1)

    def validate(real: float, fake: float) -> float:
        metrics = {"val/entropy_real": torch.tensor(real), "val/entropy_fake": torch.tensor(fake)}
        trainer = SimpleNamespace(callback_metrics=metrics, sanity_checking=False)
        controller.on_validation_end(trainer, module)
        return module.entropy_weight()

    assert validate(-4.0, -6.0) == 0.0  # warmup: measured only
    assert validate(-4.0, -6.0) == pytest.approx(0.2)  # too little entropy: weight up
    assert validate(-4.0, -5.0) == pytest.approx(0.3)
    assert validate(-4.0, -1.0) == pytest.approx(0.0)  # over-dispersed: weight down...
    assert validate(-4.0, -2.0) == pytest.approx(-0.2)  # ...and below zero
    assert validate(-4.0, 20.0) == -0.5  # clipped
    assert validate(-4.0, float("nan")) == -0.5  # an undefined estimate changes nothing
    assert controller.state_dict() == {"seen": 6}
    with pytest.raises(ValueError, match="gain"):
        EntropyMatching(gain=0)


def test_a_boost_after_the_controller_pulled_the_weight_below_zero_starts_from_boost_start(
    train_config,
):
    _, module = build(train_config(*SMALL_RING))
    module.hold_entropy_weight(-0.2)
    monitor = ModeCollapseMonitor(margin=1.0, patience=1, warmup=0, action="boost")
    collapsed = {"val/entropy_real": torch.tensor(5.0), "val/entropy_fake": torch.tensor(1.0)}
    trainer = SimpleNamespace(
        callback_metrics=collapsed, sanity_checking=False, is_global_zero=True, loggers=[]
    )
    monitor.on_validation_end(trainer, module)
    assert module.entropy_weight() == monitor.boost_start == 0.1  # not -0.4


def test_a_negative_entropy_weight_trains_and_is_restored_from_the_checkpoint(
    train_config, tmp_path
):
    """The controller's weight is module state: a run holding -0.3 trains with it (the
    batch entropy enters the generator loss) and logs it, and a checkpoint carries it."""
    datamodule, module = build(train_config(*SMALL_RING))
    module.hold_entropy_weight(-0.3)
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=2)
    assert float(trainer.callback_metrics["train/entropy_weight"]) == pytest.approx(-0.3)
    assert "train/entropy_batch" in trainer.callback_metrics
    trainer.save_checkpoint(tmp_path / "held.ckpt")
    restored = type(module).load_from_checkpoint(tmp_path / "held.ckpt")
    assert restored.entropy_weight() == -0.3


def test_packed_discriminator_judges_packs_of_generated_and_real_samples(train_config):
    # batch 66 is trimmed to 64 = 16 packs of 4 two-dimensional samples
    cfg = train_config(*SMALL_RING, "data.batch_size=66", "model.pack=4", "loss.r1_weight=1")
    datamodule, module = build(cfg)
    assert module.discriminator.sample_shape == (8,)
    seen = []
    module.discriminator.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    _fit(module, datamodule, max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    assert module.g_step == 2 and seen and set(seen) == {(16,)}


def test_module_pack_is_checked_before_training(train_config):
    with pytest.raises(ConfigError, match=r"model\.pack must be a positive integer"):
        build(train_config(*SMALL_RING, "model.pack=0"))
    cfg = train_config(*SMALL_RING, "data.batch_size=3", "model.pack=4")
    datamodule, module = build(cfg)
    with pytest.raises(ValueError, match=r"raise data\.batch_size"):
        _fit(module, datamodule, max_epochs=1, limit_train_batches=1, limit_val_batches=0)


def test_annealed_entropy_weight_reaches_zero(train_config):
    cfg = train_config(
        *SMALL_RING, "loss.entropy_weight=1.0", "loss.entropy_anneal_steps=2", "data.n_train=256"
    )
    datamodule, module = build(cfg)
    weights = []

    class Record(lightning.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            weights.append(float(trainer.callback_metrics.get("train/entropy_weight", 0.0)))

    _fit(module, datamodule, callbacks=[Record()], max_epochs=1, limit_val_batches=0)
    assert module.g_step == 4
    # steps 0 and 1 use 1.0 and 0.5; from step 2 on the regulariser is off
    assert weights == [1.0, 0.5, 0.0, 0.0]


def test_the_entropy_regulariser_can_measure_the_discriminators_features(train_config, monkeypatch):
    """model.entropy_space=discriminator: the batch entropy is taken of the discriminator's
    last hidden layer under a seeded orthonormal projection to 8 dims; inside the generator
    step its gradient reaches every generator weight while the discriminator is frozen."""
    import gan_je.module

    seen = []

    def spy(x):
        value = entropy_of(x)
        generator = list(module.generator.parameters())
        grads = torch.autograd.grad(value, generator, retain_graph=True)
        frozen = not any(p.requires_grad for p in module.discriminator.parameters())
        seen.append((tuple(x.shape), all(g.abs().sum() > 0 for g in grads), frozen))
        return value

    entropy_of = gan_je.module.differentiable_entropy
    monkeypatch.setattr(gan_je.module, "differentiable_entropy", spy)
    space = ("loss.entropy_weight=0.1", "model.entropy_space=discriminator")
    datamodule, module = build(train_config(*SMALL_RING, *space))
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    assert seen == [((64, 8), True, True)] * 2
    assert "train/entropy_batch_discriminator" in trainer.callback_metrics
    assert "train/entropy_batch" not in trainer.callback_metrics

    hidden = module.discriminator.features(torch.randn(5, 2)).shape[1]  # 256 units (mlp)
    gaussian = torch.randn(
        hidden, 8, generator=seeding.generator(0, "projection"), dtype=torch.float64
    )
    expected = torch.linalg.qr(gaussian).Q.float()
    torch.testing.assert_close(module.entropy_space.projection, expected)
    assert not any("projection" in key for key in module.state_dict())  # rebuilt from the seed
    fake = module.generator(torch.randn(32, module.generator.latent_dim))
    coordinates = module.entropy_space(fake, module._features, module.discriminator)
    torch.testing.assert_close(coordinates, module.discriminator.features(fake) @ expected)


def test_the_entropy_space_is_checked(train_config):
    with pytest.raises(ConfigError, match="entropy_space must be one of features, discriminator"):
        build(train_config(*SMALL_RING, "model.entropy_space=critic"))
    with pytest.raises(ConfigError, match="discriminator sees packs"):
        build(train_config(*SMALL_RING, "model.entropy_space=discriminator", "model.pack=2"))
    narrow = ("model.entropy_space=discriminator", "loss.entropy_weight=0.1")
    datamodule, module = build(train_config(*SMALL_RING, *narrow, "model.discriminator.hidden=4"))
    with pytest.raises(ConfigError, match="4 features onto 8 directions: widen"):
        _fit(module, datamodule, max_epochs=1, limit_train_batches=1, limit_val_batches=0)


def test_the_discriminator_space_needs_a_features_method(train_config, monkeypatch):
    from gan_je.models import MLPDiscriminator

    monkeypatch.delattr(MLPDiscriminator, "features")
    with pytest.raises(ConfigError, match=r"features\(x\) method .* MLPDiscriminator has none"):
        build(train_config(*SMALL_RING, "model.entropy_space=discriminator"))
