"""The LightningModule: alternating discriminator and generator steps, manual optimisation.

Per training batch: ``loss.n_critic`` discriminator steps (fresh latents, the same real
batch), then one generator step. With ``pack = m > 1`` the discriminator judges packs of m
samples (PacGAN, :mod:`gan_je.models.packing`). Lightning's ``global_step`` counts every
optimizer step (both networks), so the module keeps its own generator-step counter
``g_step``, logs it as ``train/g_step`` and saves it in checkpoints; schedulers are stepped
once per generator step.

Each validation epoch compares the validation set with as many generated samples through the
configured metric (``JointEntropy`` or ``GaussianJointEntropy``, after its ``features``) and
logs ``val/<key>``. Generated samples come from seeded latents, the same every epoch, from
the EMA generator when ``ema_decay`` is set.

The model config builds the module (``instantiate(cfg.model)``) from plain descriptions of
its parts (:mod:`gan_je.parts`); the parts that depend on the data's shape are built in
:meth:`GANModule.setup` from the datamodule's ``data_spec``. Descriptions and data spec are
the module's hyperparameters, so a checkpoint restores it alone:
``GANModule.load_from_checkpoint(path)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning import LightningModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gan_je import checkpoints, parts, sampling, seeding
from gan_je.checks import finite_float, positive_float, positive_int
from gan_je.errors import ConfigError, DivergenceError
from gan_je.estimators import differentiable_entropy
from gan_je.metrics import MixtureCoverage
from gan_je.models.packing import pack_samples, packed_shape

Description = Mapping[str, Any]

#: where the entropy regulariser can measure a generated batch (``model.entropy_space``)
ENTROPY_SPACES = ("features", "discriminator")
#: dimension of the random projection of the discriminator's features the regulariser sees
DISCRIMINATOR_ENTROPY_DIM = 8


class GANModule(LightningModule):
    """A GAN trained with manual optimisation and measured by ``metric`` every validation.

    Every part is a plain description ``{"_target_": ..., **arguments}`` built by
    :func:`gan_je.parts.build` (``conf/model/*.yaml`` holds them).

    Args:
        generator: a network ``(B, latent_dim) -> (B, *sample_shape)``, completed with
            ``sample_shape`` and ``bounded`` (images lie in [-1, 1]) in :meth:`setup`.
        discriminator: a network ``(B, *packed_shape) -> (B,)`` logits, completed with
            ``sample_shape`` (of a pack when ``pack > 1``).
        loss: the objective (:mod:`gan_je.losses`), with ``n_critic`` and its penalties.
        metric: a :class:`gan_je.metrics.RealFakeSamples`; its ``features`` are fitted on
            training samples when training starts (and restored from checkpoints).
        optimizer_g, optimizer_d: ``_partial_`` optimisers, completed with the parameters.
        scheduler_g, scheduler_d: optional ``_partial_`` schedulers, stepped once per
            generator step.
        grad_clip: clip each network's gradient norm to this value (``None``: no clipping).
        ema_decay: keep an exponential moving average of the generator with this decay and
            sample from it (``None``: off).
        n_preview: latents of the fixed, seeded preview batch for sample pictures.
        max_g_steps: stop training after this many generator steps (``None``: no limit).
        n_fake: generated samples per validation, over all processes (``None``: as many as
            the validation set has).
        pack: PacGAN packing (Lin et al. 2018): the discriminator sees ``pack`` samples of
            one source joined into one input (1: off). A training batch is trimmed to a
            multiple of ``pack``.
        entropy_space: where the entropy regulariser measures the generated batch:
            ``"features"``, the metric's features (what ``val/entropy_fake`` measures), or
            ``"discriminator"``, the discriminator's last hidden layer (its ``features``
            method) under a fixed, seeded random projection onto
            ``DISCRIMINATOR_ENTROPY_DIM`` orthonormal directions: a space that moves with
            what the discriminator tells apart. Not with ``pack > 1`` (the discriminator
            sees packs there, not samples).
        coverage: ``{"n_sigma": ..., "min_count": ...}`` of the mode-coverage metric, used
            when the data come from a known mixture (``val/modes_covered``,
            ``val/high_quality``, ``val/mode_kl``).
        features_fit_samples: training samples the metric's unsupervised features (PCA)
            are fitted on (``None``: all); learned features use every labelled sample.
        max_loss: a loss larger than this in size (or not finite) stops the run as diverged.
        seed: seeds the preview and validation latents.
        data_spec: the samples' description (``sample_shape``, ``image``, mixture
            ``centers`` and ``std``); taken from the datamodule in :meth:`setup` when
            ``None``, stored in checkpoints.
        run_config: the run's resolved configuration, kept in checkpoints for the record.
    """

    #: The hyperparameters that describe parts (built through :mod:`gan_je.parts`).
    PARTS = (
        "generator",
        "discriminator",
        "loss",
        "metric",
        "optimizer_g",
        "optimizer_d",
        "scheduler_g",
        "scheduler_d",
    )

    def __init__(
        self,
        generator: Description,
        discriminator: Description,
        loss: Description,
        metric: Description,
        optimizer_g: Description,
        optimizer_d: Description,
        scheduler_g: Description | None = None,
        scheduler_d: Description | None = None,
        grad_clip: float | None = None,
        ema_decay: float | None = None,
        n_preview: int = 64,
        max_g_steps: int | None = None,
        n_fake: int | None = None,
        pack: int = 1,
        entropy_space: str = "features",
        coverage: Description | None = None,
        features_fit_samples: int | None = 5000,
        max_loss: float = 1e6,
        seed: int = 0,
        data_spec: Description | None = None,
        run_config: Description | None = None,
    ) -> None:
        super().__init__()
        if grad_clip is not None and not grad_clip > 0:
            raise ConfigError(f"model.grad_clip must be None or > 0, got {grad_clip!r}")
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ConfigError(f"model.ema_decay must be None or in (0, 1), got {ema_decay!r}")
        try:
            n_preview = positive_int("model.n_preview", n_preview)
            self.pack = positive_int("model.pack", pack)
            if max_g_steps is not None:
                max_g_steps = positive_int("model.max_g_steps", max_g_steps)
            if n_fake is not None and positive_int("model.n_fake", n_fake) < 2:
                raise ValueError(f"model.n_fake must be None or at least 2, got {n_fake!r}")
            if features_fit_samples is not None:
                positive_int("model.features_fit_samples", features_fit_samples)
            positive_float("model.max_loss", max_loss)
            for name, optimizer in (("optimizer_g", optimizer_g), ("optimizer_d", optimizer_d)):
                if "lr" in optimizer:
                    positive_float(f"model.{name}.lr (learning rate)", optimizer["lr"])
        except ValueError as err:
            raise ConfigError(str(err)) from err
        if entropy_space not in ENTROPY_SPACES:
            raise ConfigError(
                f"model.entropy_space must be one of {', '.join(ENTROPY_SPACES)}, "
                f"got {entropy_space!r}"
            )
        if entropy_space == "discriminator" and self.pack > 1:
            raise ConfigError(
                f"model.entropy_space=discriminator measures single samples, but with "
                f"model.pack={self.pack} the discriminator sees packs: use "
                f"model.entropy_space=features or model.pack=1"
            )
        self.save_hyperparameters(
            {
                "generator": parts.plain(generator),
                "discriminator": parts.plain(discriminator),
                "loss": parts.plain(loss),
                "metric": parts.plain(metric),
                "optimizer_g": parts.plain(optimizer_g),
                "optimizer_d": parts.plain(optimizer_d),
                "scheduler_g": parts.plain(scheduler_g),
                "scheduler_d": parts.plain(scheduler_d),
                "grad_clip": grad_clip,
                "ema_decay": ema_decay,
                "n_preview": n_preview,
                "max_g_steps": max_g_steps,
                "n_fake": n_fake,
                "pack": pack,
                "entropy_space": entropy_space,
                "coverage": parts.plain(coverage or {}),
                "features_fit_samples": features_fit_samples,
                "max_loss": max_loss,
                "seed": seed,
                "data_spec": None,
                "run_config": parts.plain(run_config),
            },
            logger=False,
        )
        self.automatic_optimization = False
        self.loss = parts.build(self.hparams.loss, "loss")
        self.metric = parts.build(self.hparams.metric, "estimator")
        self.grad_clip, self.ema_decay, self.seed = grad_clip, ema_decay, seed
        self.max_g_steps, self.n_fake, self.max_loss = max_g_steps, n_fake, float(max_loss)
        self.entropy_space = entropy_space
        self.generator: nn.Module | None = None
        self.discriminator: nn.Module | None = None
        self.ema: AveragedModel | None = None
        self.coverage: MixtureCoverage | None = None
        self.g_step = 0
        self.entropy_weight_held: float | None = None  # set by the collapse monitor's boost
        self._features_fitted = False
        self._real_complete = False  # the metric holds the whole validation set
        self._n_real_seen = 0
        self._rng_to_restore: dict[str, Any] | None = None
        if data_spec is not None:
            self.build_networks(data_spec)

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls, checkpoint_path: str | Path, map_location: Any = "cpu", **overrides: Any
    ) -> GANModule:
        """The module a ``gan_je.train`` checkpoint holds, without its training data.

        Unlike Lightning's loader, a checkpoint is only data here: a local file, read with
        ``torch.load(weights_only=True)``, its parts built through :mod:`gan_je.parts`
        (registered parts only), never a URL or a pickled object. ``map_location``: the
        device to put the module on; ``overrides`` replace hyperparameters.

        Raises:
            CheckpointError: the file is missing, unreadable, not a gan_je checkpoint, or
                names parts that are not registered.
        """
        return checkpoints.load_module(cls, checkpoint_path, map_location or "cpu", **overrides)

    # ---------------------------------------------------------------- shape-dependent parts
    def build_networks(self, data_spec: Description) -> None:
        """Build the networks, EMA copy, preview latents and mode-coverage metric for
        samples described by ``data_spec``; it is saved as a hyperparameter."""
        spec = parts.plain(data_spec)
        if not isinstance(spec, dict) or "sample_shape" not in spec:
            raise ConfigError(f"data_spec must be a dict with a sample_shape, got {spec!r}")
        shape = tuple(spec["sample_shape"])
        pack_shape = packed_shape(shape, self.pack)
        hp = self.hparams
        self.generator = sampling.build_generator(hp.generator, spec)
        self.discriminator = parts.build(
            hp.discriminator, "model.discriminator", sample_shape=pack_shape
        )
        if not isinstance(getattr(self.generator, "latent_dim", None), int):
            raise ConfigError("model.generator must have an int attribute latent_dim")
        if self.entropy_space == "discriminator" and not callable(
            getattr(self.discriminator, "features", None)
        ):
            raise ConfigError(
                f"model.entropy_space=discriminator needs a discriminator with a features(x) "
                f"method (its last hidden layer); {type(self.discriminator).__name__} has none"
            )
        if self.loss.gp_weight > 0 and any(
            isinstance(m, _BatchNorm) for m in self.discriminator.modules()
        ):
            raise ConfigError(
                f"{type(self.loss).__name__} penalises per-sample gradients, which batch norm in "
                f"the discriminator mixes across the batch: set model.discriminator.norm=layer"
            )
        if self.ema_decay is not None:
            average = get_ema_multi_avg_fn(self.ema_decay)
            self.ema = AveragedModel(self.generator, multi_avg_fn=average, use_buffers=True)
        preview = torch.randn(
            hp.n_preview,
            self.generator.latent_dim,
            generator=seeding.generator(self.seed, "preview"),
        )
        self.register_buffer("preview_latents", preview)
        if "centers" in spec:
            self.coverage = MixtureCoverage(spec["centers"], spec["std"], **hp.coverage)
        hp.data_spec = spec

    def setup(self, stage: str) -> None:
        """Build the shape-dependent parts from the datamodule's ``data_spec`` (a module
        restored from a checkpoint has them already and only checks the data match). Each
        trainer call (fit, validate) featurises its own validation set again."""
        self._real_complete = False
        datamodule = getattr(self.trainer, "datamodule", None)
        spec = getattr(datamodule, "data_spec", None)
        if spec is None:
            if self.hparams.data_spec is None:
                raise ConfigError(
                    "GANModule needs a datamodule with a data_spec (gan_je.data) or data_spec="
                )
            return
        if self.hparams.data_spec is None:
            self.build_networks(spec)
        elif parts.plain(spec) != self.hparams.data_spec:
            raise ConfigError(
                f"the data ({parts.plain(spec)}) differ from those this model was built for "
                f"({self.hparams.data_spec})"
            )

    def fit_features(self, datamodule: Any) -> None:
        """Fit the metric's feature map on the datamodule's training samples, once: a seeded
        subset of ``features_fit_samples`` for unsupervised maps (PCA), every labelled sample
        for learned ones (``needs_labels``). Restored features are not fitted again."""
        features = self.metric.features
        if self._features_fitted or features is None or not hasattr(features, "fit"):
            return
        if getattr(features, "needs_labels", False):
            features.fit(*datamodule.train_set.tensors)
        else:
            features.fit(datamodule.train_tensor(self.hparams.features_fit_samples))
        features.to(self.device)
        self._features_fitted = True

    def on_fit_start(self) -> None:
        self.fit_features(self.trainer.datamodule)

    def on_validation_start(self) -> None:
        if self.trainer.datamodule is not None:
            self.fit_features(self.trainer.datamodule)

    # ---------------------------------------------------------------- sampling
    @property
    def sampler(self) -> nn.Module:
        """The generator used for pictures and validation: the EMA copy when enabled."""
        if self.generator is None:
            raise RuntimeError(
                "GANModule has no networks yet: fit it, load a checkpoint or pass data_spec"
            )
        return self.ema.module if self.ema is not None else self.generator

    def generate(self, z: Tensor) -> Tensor:
        """:attr:`sampler` applied to latents ``z`` (eval mode, no gradients)."""
        return sampling.apply(self.sampler, z)

    def sample(self, n: int, seed: int | None = None, batch_size: int = 1024) -> Tensor:
        """``(n, *sample_shape)`` samples on the module's device, from latents drawn
        ``batch_size`` at a time with a generator seeded by ``seed`` (the same seed gives the
        same samples; ``None``: torch's global random state)."""
        return sampling.draw(self.sampler, n, sampling.seeded(seed), batch_size)

    def preview(self) -> Tensor:
        """Samples of the fixed, seeded preview latents (the same every call)."""
        return self.generate(self.preview_latents)

    def _features(self, samples: Tensor) -> Tensor:
        """What the estimators see of ``samples``: the metric's features, flattened."""
        features = self.metric.features
        return (features(samples) if features is not None else samples).flatten(1)

    def _entropy_coordinates(self, fake: Tensor) -> Tensor:
        """What the entropy regulariser measures of a generated batch (``entropy_space``):
        the metric's features, or the discriminator's last hidden layer ``h`` projected as
        ``h Q`` in float32 (also under mixed precision), ``Q`` a
        ``(dim h, DISCRIMINATOR_ENTROPY_DIM)`` matrix with orthonormal columns (QR of a
        Gaussian matrix from the run's ``projection`` stream): the same for the whole run
        and after a resume, kept as a buffer that is not saved (it moves with the module).

        With batch norm in the discriminator (``norm: batch``), ``h`` is normalised with the
        generated batch's own statistics: the regulariser then rewards how the samples
        spread relative to each other at that layer, not its overall scale."""
        if self.entropy_space == "features":
            return self._features(fake)
        hidden = self.discriminator.features(fake)
        projection = getattr(self, "entropy_projection", None)
        if projection is None:
            if hidden.shape[1] < DISCRIMINATOR_ENTROPY_DIM:
                raise ConfigError(
                    f"model.entropy_space=discriminator projects the discriminator's "
                    f"{hidden.shape[1]} features onto {DISCRIMINATOR_ENTROPY_DIM} directions: "
                    f"widen the discriminator"
                )
            gaussian = torch.randn(
                hidden.shape[1],
                DISCRIMINATOR_ENTROPY_DIM,
                generator=seeding.generator(self.seed, "projection"),
                dtype=torch.float64,
            )
            projection = torch.linalg.qr(gaussian).Q.float().to(hidden.device)
            self.register_buffer("entropy_projection", projection, persistent=False)
        with torch.autocast(hidden.device.type, enabled=False):
            return hidden.float() @ projection

    # ---------------------------------------------------------------- entropy weight
    def entropy_weight(self) -> float:
        """The entropy regulariser's weight now: the one a callback held (the collapse
        monitor's boost, the entropy-matching controller), else the loss's (possibly
        annealed) weight at this generator step."""
        if self.entropy_weight_held is not None:
            return self.entropy_weight_held
        return self.loss.entropy_weight_at(self.g_step)

    def hold_entropy_weight(self, weight: float) -> None:
        """From now on a constant entropy weight (ends any annealing); saved in checkpoints.
        A negative weight pulls the generated entropy down (an over-dispersed generator)."""
        self.entropy_weight_held = finite_float("entropy_weight", weight)

    # ---------------------------------------------------------------- optimisers
    def configure_optimizers(self) -> Any:
        """One optimiser per network; the schedulers are stepped by :meth:`training_step`
        once per generator step (manual optimisation ignores Lightning's ``interval``)."""
        hp = self.hparams
        opt_g = parts.build(hp.optimizer_g, "model.optimizer_g", params=self.generator.parameters())
        opt_d = parts.build(
            hp.optimizer_d, "model.optimizer_d", params=self.discriminator.parameters()
        )
        schedulers = [
            parts.build(description, name, optimizer=optimizer)
            for description, name, optimizer in (
                (hp.scheduler_g, "model.scheduler_g", opt_g),
                (hp.scheduler_d, "model.scheduler_d", opt_d),
            )
            if description is not None
        ]
        return [opt_g, opt_d], schedulers

    def _step(self, optimizer: Any, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.grad_clip is not None:
            self.clip_gradients(
                optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm"
            )
        optimizer.step()

    def _check_finite(self, value: Tensor, name: str) -> None:
        """A loss that is not finite or beyond ``max_loss`` in size ends the run as diverged."""
        if not abs(value) <= self.max_loss:  # CPU-GPU sync point, once per loss; NaN fails too
            raise DivergenceError(
                f"the {name} loss is {value.item():.4g} at generator step {self.g_step} (epoch "
                f"{self.current_epoch}; limit {self.max_loss:g}); training stopped. Lower the "
                f"learning rate, add grad_clip or a penalty, or resume from the last good "
                f"checkpoint"
            )

    # ---------------------------------------------------------------- training
    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        opt_g, opt_d = self.optimizers()
        n = real.shape[0] - real.shape[0] % self.pack
        if n == 0:
            raise ConfigError(
                f"a training batch of {real.shape[0]} samples holds no pack of "
                f"model.pack={self.pack}: raise data.batch_size"
            )
        real = pack_samples(real[:n], self.pack)
        latent_dim = self.generator.latent_dim

        self.toggle_optimizer(opt_d)
        for _ in range(self.loss.n_critic):
            with torch.no_grad():
                fake = self.generator(torch.randn(n, latent_dim, device=self.device))
            fake = pack_samples(fake, self.pack)
            d_loss = self.loss.discriminator_loss(
                self.discriminator(real), self.discriminator(fake)
            ) + self.loss.penalty(self.discriminator, real, fake)
            self._check_finite(d_loss, "discriminator")
            self._step(opt_d, d_loss)
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        fake = self.generator(torch.randn(n, latent_dim, device=self.device))
        g_loss = self.loss.generator_loss(self.discriminator(pack_samples(fake, self.pack)))
        entropy_weight = self.entropy_weight()
        if entropy_weight != 0:
            batch_entropy = differentiable_entropy(self._entropy_coordinates(fake))
            g_loss = g_loss - entropy_weight * batch_entropy
            space = "" if self.entropy_space == "features" else f"_{self.entropy_space}"
            self.log(f"train/entropy_batch{space}", batch_entropy.detach())
        if entropy_weight != 0 or self.loss.entropy_weight > 0:
            self.log("train/entropy_weight", entropy_weight)
        self._check_finite(g_loss, "generator")
        self._step(opt_g, g_loss)
        self.untoggle_optimizer(opt_g)

        self.g_step += 1
        if self.max_g_steps is not None and self.g_step >= self.max_g_steps:
            self.trainer.should_stop = True
        if self.ema is not None:
            self.ema.update_parameters(self.generator)
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is not None:
                scheduler.step()
        self.log_dict(
            {"train/d_loss": d_loss.detach(), "train/g_loss": g_loss.detach()}, prog_bar=True
        )
        self.log("train/g_step", float(self.g_step))

    # ---------------------------------------------------------------- validation
    def _keeps_real(self) -> bool:
        """Whether the metric keeps the real samples across ``reset()`` and already holds
        the whole validation set, so it need not see it again."""
        return self._real_complete and not getattr(self.metric, "reset_real_features", True)

    def on_validation_epoch_start(self) -> None:
        if self.trainer.sanity_checking or not self._keeps_real():
            self.metric.reset_all()
            self._real_complete = False
        self._n_real_seen = 0
        self._feed_training_samples()

    def _feed_training_samples(self) -> None:
        """Give a metric that reports data copying (``copying=True``) the training samples
        it compares against: a seeded subset of ``max_samples`` of them, from rank 0 only
        (the metric gathers over processes), unless it already holds them; not in the
        sanity check."""
        datamodule = self.trainer.datamodule
        if not getattr(self.metric, "copying", False) or self.global_rank != 0:
            return
        if self.trainer.sanity_checking:
            return  # forgotten right after (reset_all): not worth featurising twice
        if getattr(datamodule, "train_set", None) is None:
            return  # validate-only runs load no training split
        if self.metric.training_samples().shape[0] > 0:
            return
        train = datamodule.train_tensor(self.metric.max_samples)
        for batch in train.split(1024):
            self.metric.update(batch.to(self.device), real=True, train=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        self._n_real_seen += real.shape[0]
        if not self._keeps_real():
            self.metric.update(real, real=True)

    def on_validation_epoch_end(self) -> None:
        rank, world = self.global_rank, self.trainer.world_size
        if self.n_fake is None:
            n = self._n_real_seen
        else:  # this process's share of n_fake
            n = self.n_fake // world + (rank < self.n_fake % world)
        if n > 0:
            fake = sampling.draw(self.sampler, n, seeding.generator(self.seed, "validation", rank))
            self.metric.update(fake, real=False)
            if self.coverage is not None:
                self.coverage.update(fake)
        values = self.metric.compute()  # already over every process: no sync_dist
        if self.coverage is not None:
            values |= self.coverage.compute()
            self.coverage.reset()
        jsd = values.pop("jsd")
        self.log_dict({f"val/{key}": value for key, value in values.items()})
        self.log("val/jsd", jsd, prog_bar=True)
        self.metric.reset()
        self._real_complete = not self.trainer.sanity_checking

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["g_step"] = self.g_step
        checkpoint["entropy_weight_held"] = self.entropy_weight_held
        checkpoint["rng"] = checkpoints.random_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.g_step = int(checkpoint.get("g_step", 0))
        self.entropy_weight_held = checkpoint.get("entropy_weight_held")
        self._rng_to_restore = checkpoint.get("rng")
        self._features_fitted = True  # the state dict holds the fitted features

    def on_train_start(self) -> None:
        """Restore the random streams of a resumed run (``ckpt_path``) once Lightning has
        loaded it; a module loaded from a checkpoint and trained afresh keeps its seed."""
        state, self._rng_to_restore = self._rng_to_restore, None
        if state is None or not self.trainer.ckpt_path:
            return
        checkpoints.restore_random_state(state)
        self._apply_configured_learning_rates()

    def _apply_configured_learning_rates(self) -> None:
        """A resumed optimiser keeps its state but takes the configured learning rate (the
        checkpoint's unless the user changed it), except where a scheduler sets it."""
        hp = self.hparams
        pairs = zip(self.optimizers(), ("optimizer_g", "optimizer_d"), strict=True)
        for optimizer, name in pairs:
            scheduled = hp[name.replace("optimizer", "scheduler")] is not None
            if "lr" in hp[name] and not scheduled:
                for group in optimizer.param_groups:
                    group["lr"] = hp[name]["lr"]
