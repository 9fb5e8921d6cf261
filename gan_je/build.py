"""Building a run's pieces from its config: the datamodule (set up) and the ``GANModule``
with its networks, loss, metrics and fitted features. Used by ``gan_je.train`` and to
rebuild a trained run from a checkpoint (:mod:`gan_je.checkpoints`)."""

from __future__ import annotations

import lightning
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.nn.modules.batchnorm import _BatchNorm

from gan_je.metrics import MixtureCoverage
from gan_je.models.packing import packed_shape
from gan_je.module import GANModule


class ConfigError(ValueError):
    """The chosen configs cannot work together; raised before any training."""


def build(cfg: DictConfig) -> tuple[lightning.LightningDataModule, GANModule]:
    """The datamodule (set up) and the module, with every incompatibility reported as one
    :class:`ConfigError` sentence before training starts."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    shape = tuple(datamodule.sample_shape)
    try:
        pack_shape = packed_shape(shape, cfg.module.get("pack", 1))
    except ValueError as err:
        raise ConfigError(f"module.pack: {err}") from err
    try:
        generator = instantiate(
            cfg.model.generator, sample_shape=shape, bounded=bool(datamodule.is_image)
        )
        discriminator = instantiate(cfg.model.discriminator, sample_shape=pack_shape)
    except InstantiationException as err:
        if not isinstance(err.__cause__, ValueError):
            raise
        raise ConfigError(
            f"model={_choice('model')} cannot be used with data={_choice('data')}: {err.__cause__}"
        ) from err
    loss = instantiate(cfg.loss)
    if loss.gp_weight > 0 and any(isinstance(m, _BatchNorm) for m in discriminator.modules()):
        raise ConfigError(
            f"loss={_choice('loss')} penalises per-sample gradients, which batch norm in the "
            f"discriminator mixes across the batch: set model.discriminator.norm=layer"
        )
    try:
        metric = instantiate(cfg.estimator)
    except InstantiationException as err:
        if not isinstance(err.__cause__, RuntimeError | ValueError):
            raise
        raise ConfigError(f"estimator={_choice('estimator')}: {err.__cause__}") from err
    module = GANModule(
        generator=generator,
        discriminator=discriminator,
        loss=loss,
        metric=metric,
        optimizer_g=instantiate(cfg.model.optimizer_g),
        optimizer_d=instantiate(cfg.model.optimizer_d),
        scheduler_g=instantiate(cfg.model.get("scheduler_g")),
        scheduler_d=instantiate(cfg.model.get("scheduler_d")),
        coverage=_coverage(datamodule, cfg),
        **cfg.module,
    )
    fit_metric_features(module, datamodule, cfg.features_fit_samples)
    return datamodule, module


def fit_metric_features(
    module: GANModule, datamodule: lightning.LightningDataModule, max_samples: int | None
) -> None:
    """Fit the metric's features on training data: a seeded subset of ``max_samples`` for
    unsupervised maps (PCA), every labelled sample for learned ones (``needs_labels``)."""
    if getattr(module.metric.features, "needs_labels", False):
        module.fit_features(*datamodule.train_set.tensors)
    else:
        module.fit_features(datamodule.train_tensor(max_samples))


def _coverage(datamodule: lightning.LightningDataModule, cfg: DictConfig) -> MixtureCoverage | None:
    """The mode-coverage metric when the data come from a known mixture (ring, grid)."""
    if not hasattr(datamodule, "centers"):
        return None
    return MixtureCoverage(datamodule.centers, datamodule.std, **cfg.coverage)


def _choice(group: str) -> str:
    """The option chosen for a config group (``?`` outside a Hydra run)."""
    if not HydraConfig.initialized():
        return "?"
    return str(HydraConfig.get().runtime.choices.get(group, "?"))
