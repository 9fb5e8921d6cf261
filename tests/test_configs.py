"""Every config file in every group composes with conf/train.yaml and builds what it names."""

import subprocess
import sys
from pathlib import Path

import lightning
import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gan_je.errors import ConfigError
from gan_je.losses import GANLoss
from gan_je.metrics import GaussianJointEntropy, JointEntropy
from gan_je.module import GANModule
from tests.test_module import _fit

CONF = Path(__file__).resolve().parents[1] / "conf"


def _options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def test_the_defaults_are_the_documented_ones(train_config):
    cfg = train_config()
    assert cfg.data._target_ == "gan_je.data.MNIST5k"
    assert cfg.model.generator._target_ == "gan_je.models.DCGANGenerator"
    # the recipe benchmarks/recipes.py chose: spectral norm instead of batch norm in D, hinge
    assert cfg.model.discriminator._target_ == "gan_je.models.DCGANDiscriminator"
    assert cfg.model.discriminator.norm == "none" and cfg.model.discriminator.spectral_norm
    assert cfg.loss._target_ == "gan_je.losses.Hinge"
    assert cfg.model.ema_decay is None and cfg.model.augment is None
    assert cfg.estimator._target_ == "gan_je.metrics.JointEntropy"
    assert cfg.estimator.features._target_ == "gan_je.features.PCA"
    assert cfg.trainer.accelerator == "auto"
    assert list(cfg.logger) == ["wandb"]
    assert cfg.model.optimizer_g.lr == 2e-4 and list(cfg.model.optimizer_g.betas) == [0.5, 0.999]
    measured = train_config("experiment=mnist5k_sn_hinge")  # the recipe as benchmarked
    assert cfg.model == measured.model and cfg.loss == measured.loss
    assert cfg.trainer.max_epochs == measured.trainer.max_epochs


#: what a model option builds for: DCGAN and the residual networks for 8-64 pixel images, the
#: MLP for anything (flat), the text models for token sequences
SUPPORTS = {"dcgan": lambda spec: spec["kind"] == "image", "mlp": lambda spec: True}
SUPPORTS |= dict.fromkeys(("dcgan_sn", "resnet", "resnet_paper"), SUPPORTS["dcgan"])
SUPPORTS |= dict.fromkeys(("char_resnet", "lstm_gan", "lstm_mle"), lambda s: s["kind"] == "tokens")
AUDIO = ("wavegan", "wavegan_paper", "specgan", "specgan_paper")
SUPPORTS |= dict.fromkeys(AUDIO, lambda s: s["kind"] == "waveform")
#: a small spec each model option builds for
IMAGE = {"kind": "image", "sample_shape": [1, 28, 28]}
TOKENS = {"kind": "tokens", "sample_shape": [6, 5], "vocab_size": 5}
SPEC_FOR = {"dcgan": IMAGE, "mlp": IMAGE, "char_resnet": TOKENS, "lstm_gan": TOKENS}
SPEC_FOR["lstm_mle"] = TOKENS
SPEC_FOR |= dict.fromkeys(("dcgan_sn", "resnet", "resnet_paper"), IMAGE)
WAVEFORM = {"kind": "waveform", "sample_shape": [1, 8192], "sample_rate": 8000}
SPEC_FOR |= dict.fromkeys(AUDIO, WAVEFORM)
#: data options whose spec comes from their files (TextLines: the vocabulary of the training
#: lines), with the settings that point them at a small file the test writes
READS_SPEC_FROM_FILES = {"text": lambda folder: [f"data.path={_lines(folder)}"]}
#: data options that need a path, with the settings that point them at files the test writes
NEEDS_PATH = {"audio_folder": lambda folder: [f"data.path={_wavs(folder)}"]}
#: the settings of conf/shared/model.yaml an option changes besides its networks and lr
OWN_SETTINGS = {"lstm_mle": {"adversarial"}, "lstm_gan": {"pretrain_steps"}}
OWN_SETTINGS |= {option: {"entropy_space"} for option in ("specgan", "specgan_paper")}


def _lines(folder: Path) -> Path:
    """A small UTF-8 text file of 200 lines."""
    path = folder / "lines.txt"
    path.write_text("".join(f"the {i} quick brown foxes jump over lazy dogs\n" for i in range(200)))
    return path


def _wavs(folder: Path) -> Path:
    """A folder of two short WAV files."""
    from gan_je.audio import write_wav

    for i in range(2):
        write_wav(folder / "sounds" / f"{i}.wav", torch.zeros(1, 100), 8000)
    return folder / "sounds"


def test_every_model_option_says_what_data_it_supports():
    assert set(SUPPORTS) == set(_options("model"))


@pytest.mark.slow
@pytest.mark.parametrize("data", _options("data"))
@pytest.mark.parametrize("model", _options("model"))
def test_every_model_builds_for_every_data_it_supports(train_config, model, data, tmp_path):
    """Each model composes with each data option: a network that fits the data's sample
    shape where the model claims to support it, a one-sentence refusal where not."""
    own_file = READS_SPEC_FROM_FILES.get(data, lambda folder: [])(tmp_path)
    path = NEEDS_PATH.get(data, lambda folder: [])(tmp_path)
    cfg = train_config(f"model={model}", f"data={data}", "estimator=gaussian", *own_file, *path)
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, lightning.LightningDataModule)
    if own_file:  # the vocabulary is the training lines'
        datamodule.prepare_data()
        datamodule.setup("fit")
    spec = datamodule.data_spec  # else fixed by the data's settings, before any file is read
    assert (spec["kind"] == "image") == (len(spec["sample_shape"]) == 3)
    module = instantiate(cfg.model)
    if not SUPPORTS[model](spec):
        with pytest.raises(ConfigError):
            module.build_networks(spec)
        return
    module.build_networks(spec)
    fake = module.generator(torch.randn(2, module.generator.latent_dim))
    shape = getattr(module.generator, "train_shape", spec["sample_shape"])  # SpecGAN's images
    assert fake.shape == (2, *shape) and module.discriminator(fake).shape == (2,)


def test_the_model_options_share_the_base_and_differ_only_in_networks_and_lr(train_config):
    shared = OmegaConf.load(CONF / "shared" / "model.yaml")
    own = {"generator", "discriminator", "optimizer_g", "optimizer_d"}
    models = {}
    for option in _options("model"):
        model = train_config(f"model={option}").model
        assert not OmegaConf.missing_keys(model), option  # the option filled in every ???
        models[option] = OmegaConf.to_container(model)
        for key in shared.keys() - own - OWN_SETTINGS.get(option, set()):  # as the base says
            assert models[option][key] == OmegaConf.to_container(shared)[key], (option, key)
        for name in ("optimizer_g", "optimizer_d"):
            optimizer, base = dict(models[option][name]), OmegaConf.to_container(shared[name])
            assert optimizer.pop("lr") > 0 and base.pop("lr") == "???"
            assert optimizer == base
        for name in ("generator", "discriminator"):
            assert models[option][name]["_partial_"] is True
            assert models[option][name]["_target_"].startswith("gan_je.models.")
    dcgan, mlp = models["dcgan"], models["mlp"]
    assert {k: v for k, v in dcgan.items() if k not in own} == {
        k: v for k, v in mlp.items() if k not in own
    }
    assert set(dcgan) == set(mlp) == set(shared)


def test_the_shared_configs_are_not_options_and_name_no_part():
    """conf/shared holds what a group's options extend: alone it leaves the parts unnamed."""
    missing = {
        "model": {
            "generator._target_",
            "discriminator._target_",
            "optimizer_g.lr",
            "optimizer_d.lr",
        },
        "loss": {"_target_"},
    }
    for group, keys in missing.items():
        assert "shared" not in _options(group)
        shared = OmegaConf.to_container(OmegaConf.load(CONF / "shared" / f"{group}.yaml"))
        assert set(_missing(shared)) == keys


def _missing(node: dict, prefix: str = ""):
    """The dotted keys of the ``???`` values of a plain config (interpolations unread)."""
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _missing(value, f"{prefix}{key}.")
        elif value == "???":
            yield f"{prefix}{key}"


@pytest.mark.parametrize("option", _options("model"))
def test_model_configs_build_the_module_and_its_parts(train_config, option):
    cfg = train_config(f"model={option}", "loss=lsgan", "estimator=gaussian")
    module = instantiate(cfg.model)
    assert isinstance(module, GANModule)
    assert type(module.loss).__name__ == "LeastSquares"
    assert isinstance(module.metric, GaussianJointEntropy)
    module.build_networks(SPEC_FOR[option])
    fake = module.generator(torch.randn(4, module.generator.latent_dim))
    shape = getattr(module.generator, "train_shape", SPEC_FOR[option]["sample_shape"])
    assert fake.shape == (4, *shape) and module.discriminator(fake).shape == (4,)
    (opt_g, opt_d), schedulers = module.configure_optimizers()
    assert opt_g.param_groups[0]["lr"] == cfg.model.optimizer_g.lr and schedulers == []
    assert {id(p) for p in opt_d.param_groups[0]["params"]} == {
        id(p) for p in module.discriminator.parameters()
    }


#: the settings every loss shares (conf/shared/loss.yaml), with their defaults
REGULARISER = {"r1_weight": 0.0, "entropy_weight": 0.0, "entropy_anneal_steps": None}


@pytest.mark.slow
@pytest.mark.parametrize("option", _options("loss"))
def test_every_loss_has_the_regulariser_settings_with_their_defaults(train_config, option):
    config = train_config(f"loss={option}").loss
    n_critic = 5 if option == "wgan_gp" else 1
    assert {key: config[key] for key in REGULARISER} == REGULARISER
    assert config.n_critic == n_critic
    loss = instantiate(config)
    assert isinstance(loss, GANLoss) and type(loss).__name__ == config._target_.split(".")[-1]
    assert (loss.n_critic, loss.r1_weight, loss.entropy_weight) == (n_critic, 0.0, 0.0)
    assert loss.entropy_anneal_steps is None and loss.gp_weight == (10.0 if n_critic == 5 else 0)
    overrides = ("loss.entropy_weight=0.5", "loss.entropy_anneal_steps=100", "loss.r1_weight=2")
    loss = instantiate(train_config(f"loss={option}", *overrides).loss)
    assert (loss.entropy_weight, loss.entropy_anneal_steps, loss.r1_weight) == (0.5, 100, 2.0)
    assert loss.entropy_weight_at(50) == pytest.approx(0.25)


# estimator=inception takes images (and Inception-v3's weights, a download): it is run with a
# stand-in feature extractor on digits in tests/test_estimator_configs.py
@pytest.mark.slow
@pytest.mark.parametrize("option", [o for o in _options("estimator") if o != "inception"])
@pytest.mark.parametrize("features", [f for f in _options("features") if f != "tokens"])
def test_estimator_configs_give_the_design_keys(train_config, option, features):
    """On points, or on waveforms (1,024 samples at 8 kHz) for the features that need them."""
    metric = instantiate(train_config(f"estimator={option}", f"features={features}").estimator)
    assert isinstance(metric, JointEntropy | GaussianJointEntropy)
    generator = torch.Generator().manual_seed(0)
    waveforms = getattr(metric.features, "needs_sample_rate", False)  # log_mel
    shape = (200, 1, 1024) if waveforms else (200, 12)
    real, fake = torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)
    if waveforms:
        real, fake = 0.1 * real, 0.5 * fake  # louder noise
        metric.features.fit(real, sample_rate=8000)
    elif getattr(metric.features, "needs_labels", False):
        labels = torch.randint(0, 3, (200,), generator=generator)
        metric.features.fit(real, labels, kind="points")
    else:
        metric.features.fit(real)
    fake = fake if waveforms else fake + 1
    metric.update(real, real=True)
    metric.update(fake, real=False)
    values = metric.compute()
    keys = {"entropy_real", "entropy_fake", "entropy_mixture", "joint_entropy", "jsd"}
    assert keys | {"jsd_sliced"} <= set(values)
    assert all(torch.isfinite(value) for value in values.values())


def test_the_knn_config_passes_its_fields(train_config):
    cfg = train_config("estimator.k=5", "estimator.max_samples=500", "estimator.features.dim=4")
    metric = instantiate(cfg.estimator)
    assert (metric.k, metric.max_samples, metric.backend, metric.features.dim) == (
        5,
        500,
        "auto",
        4,
    )


@pytest.mark.parametrize("option", _options("logger"))
def test_logger_configs_build_loggers_writing_in_the_run_directory(train_config, option):
    cfg = train_config(f"logger={option}")
    loggers = {name: instantiate(c) for name, c in (cfg.logger or {}).items()}
    for name, logger in loggers.items():
        assert isinstance(logger, lightning.pytorch.loggers.Logger), name
        assert Path(logger.save_dir) == Path(cfg.paths.output_dir), name
    assert not loggers if option == "none" else loggers


def test_the_many_logger_is_every_other_logger(train_config):
    many = OmegaConf.to_container(train_config("logger=many").logger)
    others = {}
    for option in set(_options("logger")) - {"many", "none"}:
        others |= OmegaConf.to_container(train_config(f"logger={option}").logger)
    assert many == others


def test_the_callback_configs_extend_the_defaults_unchanged(train_config):
    default = OmegaConf.to_container(train_config("callbacks=default").callbacks, resolve=True)
    output_dir = train_config().paths.output_dir
    assert default["best_checkpoint"]["monitor"] == "val/jsd"
    assert default["best_checkpoint"]["mode"] == "min"
    for checkpoint in ("best_checkpoint", "last_checkpoint"):
        assert default[checkpoint]["dirpath"] == f"{output_dir}/checkpoints"
    monitor = instantiate(default["mode_collapse"])
    assert (monitor.margin, monitor.action, monitor.patience) == (1.0, "none", 2)
    assert not train_config("callbacks=none").callbacks
    extra = {"early_stopping": "EarlyStopping", "entropy_matching": "EntropyMatching"}
    extra["class_scores"] = "ClassScores"
    for option, own in extra.items():
        configured = OmegaConf.to_container(
            train_config(f"callbacks={option}").callbacks, resolve=True
        )
        assert configured.pop(option)["_target_"].endswith(own)
        assert configured == default, option
    assert set(extra) | {"default", "none"} == set(_options("callbacks"))


@pytest.mark.parametrize("option", _options("callbacks"))
def test_callback_configs_build_callbacks(train_config, option):
    configured = train_config(f"callbacks={option}").callbacks or {}
    assert all(isinstance(instantiate(c), lightning.Callback) for c in configured.values())


@pytest.mark.slow
@pytest.mark.parametrize("option", _options("trainer"))
@pytest.mark.parametrize("debug", [None, *_options("debug")])
def test_trainer_and_debug_configs_build_trainers(train_config, option, debug):
    overrides = [f"trainer={option}", "trainer.accelerator=cpu", "trainer.precision=32-true"]
    cfg = train_config(*overrides, *([f"debug={debug}"] if debug else []))
    trainer = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    assert isinstance(trainer, lightning.Trainer)
    if debug == "fdr":
        assert trainer.fast_dev_run


#: the generator and the kind of data of each experiment preset (else DCGAN on images)
EXPERIMENT_BUILDS = {"ring": ("MLPGenerator", "points"), "grid": ("MLPGenerator", "points")}
EXPERIMENT_BUILDS["text_oracle"] = ("LSTMGenerator", "tokens")
EXPERIMENT_BUILDS["text_chars"] = ("LSTMGenerator", "tokens")
EXPERIMENT_BUILDS["spoken_digits_wavegan"] = ("WaveGANGenerator", "waveform")
EXPERIMENT_BUILDS["spoken_digits_specgan"] = ("SpecGANGenerator", "waveform")
EXPERIMENT_BUILDS["mnist5k_resnet"] = ("ResNetGenerator", "image")
EXPERIMENT_BUILDS["mnist5k_resnet_diffaugment_ema"] = ("ResNetGenerator", "image")


@pytest.mark.slow
@pytest.mark.parametrize("option", _options("experiment"))
def test_experiment_presets_compose(train_config, option):
    cfg = train_config(f"experiment={option}")
    generator, kind = EXPERIMENT_BUILDS.get(option, ("DCGANGenerator", "image"))
    assert cfg.model.generator._target_ == f"gan_je.models.{generator}"
    datamodule = instantiate(cfg.data)
    assert datamodule.kind == kind


@pytest.mark.slow
@pytest.mark.parametrize("option", [o for o in _options("experiment") if o.startswith("mnist5k")])
def test_the_recipe_presets_train_what_they_name(train_config, option):
    """Each recipe of benchmarks/recipes.py builds its networks for the 28-pixel digits and
    takes a training step; what its name promises is on: augmentation, EMA, spectral norm."""
    cfg = train_config(f"experiment={option}")
    assert cfg.callbacks.class_scores.network == "digit"  # every recipe is scored alike
    module = instantiate(cfg.model)
    module.build_networks(instantiate(cfg.data).data_spec)
    assert (module.augmentation is not None) == ("augment" in option or "ada" in option)
    assert (module.ema is not None) == option.endswith("ema")
    normalised = [name for name, _ in module.discriminator.named_parameters() if "orig" in name]
    assert bool(normalised) == ("sn" in option or "resnet" in option)
    before = [p.clone() for p in module.generator.parameters()]
    _fit(module, instantiate(cfg.data), max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    assert module.g_step == 1
    assert any(
        not torch.equal(a, b) for a, b in zip(before, module.generator.parameters(), strict=True)
    )


def test_the_optuna_search_composes(train_config):
    cfg = train_config("hparams_search=optuna")
    sweeper = HydraConfig.get().sweeper
    assert cfg.optimized_metric == "val/jsd" and sweeper.direction == "minimize"
    assert set(sweeper.params) >= {"model.optimizer_g.lr", "loss"}


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local", "slurm"])
def test_launcher_configs_compose(train_config, launcher):
    train_config(f"hydra/launcher={launcher}", "trainer=ddp", "trainer.devices=4")
    config = HydraConfig.get().launcher
    assert config._target_.startswith("hydra_plugins.")
    if launcher == "slurm":
        assert (config.gpus_per_node, config.tasks_per_node, config.nodes) == (4, 4, 1)


@pytest.mark.parametrize(
    ("trainer", "size"),
    [
        (["trainer.accelerator=cpu"], (None, 1, 1)),
        (["trainer=cpu"], (None, 1, 1)),
        (["trainer=gpu"], (1, 1, 1)),
        (["trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"], (4, 4, 2)),
        (["trainer=ddp", "trainer.devices=[0,1]"], (2, 2, 1)),
    ],
    ids=["default-cpu", "cpu", "gpu", "ddp-2-nodes", "ddp-list"],
)
def test_the_slurm_launcher_sizes_the_job_from_any_trainer(train_config, trainer, size):
    train_config("hydra/launcher=slurm", *trainer)
    config = HydraConfig.get().launcher
    assert (config.gpus_per_node, config.tasks_per_node, config.nodes) == size
    assert config.additional_parameters.signal == f"USR1@{config.signal_delay_s}"


@pytest.mark.parametrize(
    ("trainer", "match"),
    [
        (["trainer=ddp"], r"needs trainer\.devices=<GPUs per node>"),  # devices: auto
        ([], r"trainer\.accelerator=cpu or gpu \(not auto\)"),  # the default trainer
        (["trainer=ddp_sim"], "start_method=spawn starts its own processes"),
    ],
    ids=["gpu-count", "auto", "ddp_sim"],
)
def test_the_slurm_launcher_refuses_what_it_cannot_size(train_config, trainer, match):
    train_config("hydra/launcher=slurm", *trainer)
    launcher = HydraConfig.get().launcher
    with pytest.raises(Exception, match=match):
        OmegaConf.select(launcher, "tasks_per_node", throw_on_resolution_failure=True)


def test_wandb_groups_multirun_jobs_by_sweep(train_config):
    single = train_config("loss=hinge").logger.wandb
    assert (single.group, single.job_type, list(single.tags)) == (None, None, [])
    job = train_config("hydra.mode=MULTIRUN", "loss=hinge", "seed=3", "+db.token=abc").logger.wandb
    assert HydraConfig.get().sweep.dir.endswith(job.group)
    assert "loss=hinge" in job.job_type and "seed=3" not in job.job_type
    assert {"loss=hinge", "seed=3", "+db.token=***"} <= set(job.tags)
    assert "abc" not in job.job_type and "+db.token=***" in job.job_type


def test_importing_gan_je_registers_the_resolvers_and_names_the_configs():
    code = (
        "from omegaconf import OmegaConf; import gan_je; "
        "print(OmegaConf.has_resolver('gan_je.run_id'), OmegaConf.has_resolver('gan_je.sweep'), "
        "gan_je.CONFIG_PATH)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["True", "True", "pkg://gan_je.conf"], result.stderr
    with initialize_config_module("gan_je.conf", version_base="1.3"):  # the packaged configs
        assert compose("train").model._target_ == "gan_je.module.GANModule"
