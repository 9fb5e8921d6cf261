"""Every config file in every group composes with conf/train.yaml and builds what it names."""

import importlib.util
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
from gan_je.train import build

CONF = Path(__file__).resolve().parents[1] / "conf"


def _options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def test_the_defaults_are_the_documented_ones(train_config):
    cfg = train_config()
    assert cfg.data._target_ == "gan_je.data.MNIST5k"
    assert cfg.model.generator._target_ == "gan_je.models.DCGANGenerator"
    assert cfg.loss._target_ == "gan_je.losses.NonSaturating"
    assert cfg.estimator._target_ == "gan_je.metrics.JointEntropy"
    assert cfg.estimator.features._target_ == "gan_je.features.PCA"
    assert cfg.trainer.accelerator == "auto"
    assert list(cfg.logger) == ["wandb"]
    assert cfg.model.optimizer_g.lr == 2e-4 and list(cfg.model.optimizer_g.betas) == [0.5, 0.999]


@pytest.mark.parametrize("option", _options("data"))
def test_data_configs_build_datamodules(train_config, option):
    datamodule = instantiate(train_config(f"data={option}").data)
    assert isinstance(datamodule, lightning.LightningDataModule)
    assert len(datamodule.sample_shape) in (1, 3)


@pytest.mark.parametrize("option", _options("model"))
def test_model_configs_build_the_module_and_its_parts(train_config, option):
    cfg = train_config(f"model={option}", "loss=hinge", "estimator=gaussian")
    module = instantiate(cfg.model)
    assert isinstance(module, GANModule)
    assert type(module.loss).__name__ == "Hinge"
    assert isinstance(module.metric, GaussianJointEntropy)
    shape = (1, 28, 28)
    module.build_networks({"kind": "image", "sample_shape": list(shape)})
    fake = module.generator(torch.randn(4, module.generator.latent_dim))
    assert fake.shape == (4, *shape) and module.discriminator(fake).shape == (4,)
    (opt_g, opt_d), schedulers = module.configure_optimizers()
    assert opt_g.param_groups[0]["lr"] == cfg.model.optimizer_g.lr and schedulers == []
    assert {id(p) for p in opt_d.param_groups[0]["params"]} == {
        id(p) for p in module.discriminator.parameters()
    }


@pytest.mark.parametrize("option", _options("loss"))
def test_loss_configs_build_losses(train_config, option):
    loss = instantiate(train_config(f"loss={option}").loss)
    assert isinstance(loss, GANLoss)
    assert loss.n_critic == (5 if option == "wgan_gp" else 1)


FIDELITY = importlib.util.find_spec("torch_fidelity") is not None


@pytest.mark.parametrize(
    "option", [o for o in _options("estimator") if o != "inception" or FIDELITY]
)
@pytest.mark.parametrize("features", _options("features"))
def test_estimator_configs_give_the_design_keys(train_config, option, features):
    metric = instantiate(train_config(f"estimator={option}", f"features={features}").estimator)
    assert isinstance(metric, JointEntropy | GaussianJointEntropy)
    generator = torch.Generator().manual_seed(0)
    real, fake = (
        torch.randn(200, 12, generator=generator),
        torch.randn(200, 12, generator=generator),
    )
    if getattr(metric.features, "needs_labels", False):
        labels = torch.randint(0, 3, (200,), generator=generator)
        metric.features.fit(real, labels, kind="points")
    else:
        metric.features.fit(real)
    metric.update(real, real=True)
    metric.update(fake + 1, real=False)
    values = metric.compute()
    keys = {"entropy_real", "entropy_fake", "entropy_mixture", "joint_entropy", "jsd"}
    assert keys | {"jsd_sliced"} <= set(values)
    assert all(torch.isfinite(value) for value in values.values())


@pytest.mark.skipif(FIDELITY, reason="torch-fidelity is installed here")
def test_the_inception_estimator_says_what_it_needs(train_config):
    message = r"estimator: Inception features need torch-fidelity"
    with pytest.raises(ConfigError, match=message):
        build(train_config("estimator=inception", "data=digits"))


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
def test_logger_configs_build_loggers(train_config, option):
    loggers = [instantiate(c) for c in (train_config(f"logger={option}").logger or {}).values()]
    assert all(isinstance(logger, lightning.pytorch.loggers.Logger) for logger in loggers)
    assert len(loggers) == {"none": 0, "many": 3}.get(option, 1)


@pytest.mark.parametrize("option", _options("callbacks"))
def test_callback_configs_build_callbacks(train_config, option):
    configured = train_config(f"callbacks={option}").callbacks or {}
    default = {"best_checkpoint", "last_checkpoint", "samples", "progress", "mode_collapse"}
    expected = {"default": default, "early_stopping": default | {"early_stopping"}, "none": set()}
    expected["entropy_matching"] = default | {"entropy_matching"}
    assert set(configured) == expected[option]
    assert all(isinstance(instantiate(c), lightning.Callback) for c in configured.values())


@pytest.mark.parametrize("option", _options("trainer"))
@pytest.mark.parametrize("debug", [None, *_options("debug")])
def test_trainer_and_debug_configs_build_trainers(train_config, option, debug):
    overrides = [f"trainer={option}", "trainer.accelerator=cpu", "trainer.precision=32-true"]
    cfg = train_config(*overrides, *([f"debug={debug}"] if debug else []))
    trainer = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    assert isinstance(trainer, lightning.Trainer)
    if debug == "fdr":
        assert trainer.fast_dev_run


@pytest.mark.parametrize("option", _options("experiment"))
def test_experiment_presets_compose(train_config, option):
    cfg = train_config(f"experiment={option}")
    flat = option in ("ring", "grid")
    assert cfg.model.generator._target_.endswith("MLPGenerator" if flat else "DCGANGenerator")
    datamodule = instantiate(cfg.data)
    assert datamodule.kind == ("points" if flat else "image")


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
