"""The LightningModule: alternating discriminator and generator steps, manual optimisation.

Per training batch: ``loss.n_critic`` discriminator steps (fresh latents, the same real
batch; packs of ``pack`` samples, :mod:`gan_je.models.packing`), then one generator step.
With ``augment`` every batch the discriminator sees, real and generated, is augmented
(:mod:`gan_je.augment`) before packing, with fresh draws each time.
Lightning's ``global_step`` counts both networks' steps, so the module keeps its own
generator-step counter ``g_step`` (logged, checkpointed; schedulers step once per ``g_step``).
The first ``pretrain_steps`` generator steps (all of them when ``adversarial`` is false) are
maximum likelihood on the real token sequences instead, with no discriminator step.

Each validation epoch compares the validation set with generated samples (seeded latents,
the same every epoch; the EMA generator's when kept) through the metric, driven through the
:class:`gan_je.metrics.ValidationMetric` protocol alone, and logs ``val/<key>``.

``instantiate(cfg.model)`` builds the module from plain descriptions of its parts
(:mod:`gan_je.parts`), the shape-dependent ones in :meth:`GANModule.setup` from the data's
``data_spec``; both are hyperparameters, so ``GANModule.load_from_checkpoint(path)`` needs
no data.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning import LightningModule
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from gan_je import checkpoints, parts, sampling, seeding
from gan_je.augment import Augmentation
from gan_je.checks import (
    check_fits_in_memory,
    finite_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from gan_je.data.kinds import kind_of
from gan_je.ema import averaged_generator, check_ema_settings
from gan_je.entropy_space import EntropySpace
from gan_je.errors import ConfigError
from gan_je.estimators import differentiable_entropy
from gan_je.features import fit_feature_map
from gan_je.losses import check_finite
from gan_je.metrics import ValidationMetric
from gan_je.models import contract
from gan_je.models.packing import pack_samples, packed_shape, whole_packs

Description = Mapping[str, Any]


class GANModule(LightningModule):
    """A GAN trained with manual optimisation and measured by ``metric`` every validation.

    Every part is a plain description ``{"_target_": ..., **arguments}`` built by
    :func:`gan_je.parts.build` (``conf/model/*.yaml`` holds them).

    Args:
        generator: ``(B, latent_dim) -> (B, *sample_shape)``, given ``sample_shape`` and
            ``bounded`` (by the data's kind) in :meth:`setup`; it has an int ``latent_dim``.
            One that trains in another form (SpecGAN's spectrograms) declares ``train_shape``
            and ``to_train_form(real)`` (:mod:`gan_je.models.contract`): the discriminator
            is built for that shape and each real training batch turned into that form.
        discriminator: ``(B, *packed_shape) -> (B,)`` logits, given ``sample_shape`` (a pack's).
        loss: the objective (:mod:`gan_je.losses`), with ``n_critic`` and its penalties.
        metric: a :class:`gan_je.metrics.ValidationMetric` (the ``estimator`` group, which
            also holds how many samples it compares: ``n_fake``, ``features_fit_samples``,
            ``mode_coverage``); its ``features`` are fitted on training samples when training
            starts (and restored from checkpoints).
        optimizer_g, optimizer_d: ``_partial_`` optimisers, completed with the parameters.
        scheduler_g, scheduler_d: optional ``_partial_`` schedulers, stepped once per
            generator step.
        grad_clip: clip each network's gradient norm to this value (``None``: no clipping).
            (Lightning's ``trainer.gradient_clip_val`` does not apply to manual optimisation.)
        compile: compile the generator and discriminator with ``torch.compile`` (in place,
            ``nn.Module.compile``: the state dict keys stay those of the plain networks).
        ema_decay: sample from an EMA of the generator with this decay (``None``: off).
        ema_rampup: cap the EMA's half-life at this fraction of the generator steps taken
            (StyleGAN2-ADA's ramp-up, :mod:`gan_je.ema`; ``None``: the constant ``ema_decay``).
        n_preview: latents of the fixed, seeded preview batch for sample pictures.
        max_g_steps: stop training after this many generator steps (``None``: no limit).
        pack: PacGAN packing (Lin et al. 2018): the discriminator sees ``pack`` samples of
            one source joined into one input (1: off). A training batch is trimmed to a
            multiple of ``pack``.
        entropy_space: where the entropy regulariser measures the generated batch:
            ``"features"`` (the metric's) or ``"discriminator"`` (its last hidden layer,
            randomly projected; ``pack`` 1 only): :mod:`gan_je.entropy_space`.
        max_loss: a loss larger than this in size (or not finite) stops the run as diverged.
        pretrain_steps: the first generator steps are maximum likelihood on the real batch
            (token sequences: ids ``real.argmax(-1)``, the generator's ``nll``), with no
            discriminator step, as RelGAN's pretraining (Nie et al. 2019); 0: none.
        adversarial: false: maximum likelihood throughout, the discriminator never stepped
            (the baseline every text GAN must beat, Caccia et al. 2018).
        augment: differentiable augmentation of the discriminator's inputs, a mapping of
            :class:`gan_je.augment.Augmentation`'s settings (``policy``, ``probability``,
            ``adaptive``, ``target``, ``interval``, ``speed_images``); images only.
            ``None``: off.
        seed: seeds the preview and validation latents.
        data_spec: the samples' description (their ``kind``, ``sample_shape`` and the
            kind's fields, e.g. mixture ``centers`` and ``std``; :mod:`gan_je.data.kinds`);
            taken from the datamodule in :meth:`setup` when ``None``, stored in checkpoints.
        run_config: the run's resolved configuration, kept in checkpoints for the record.
    """

    #: The hyperparameters that describe parts (built through :mod:`gan_je.parts`).
    PARTS = (
        *("generator", "discriminator", "loss", "metric"),
        *("optimizer_g", "optimizer_d", "scheduler_g", "scheduler_d"),
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
        compile: bool = False,
        ema_decay: float | None = None,
        ema_rampup: float | None = None,
        n_preview: int = 64,
        max_g_steps: int | None = None,
        pack: int = 1,
        entropy_space: str = "features",
        max_loss: float = 1e6,
        pretrain_steps: int = 0,
        adversarial: bool = True,
        augment: Description | None = None,
        seed: int = 0,
        data_spec: Description | None = None,
        run_config: Description | None = None,
    ) -> None:
        settings = {name: value for name, value in locals().items() if name in _ARGUMENTS}
        super().__init__()
        if grad_clip is not None and not grad_clip > 0:
            raise ConfigError(f"model.grad_clip must be None or > 0, got {grad_clip!r}")
        if not isinstance(compile, bool):
            raise ConfigError(f"model.compile must be true or false, got {compile!r}")
        if not isinstance(adversarial, bool):
            raise ConfigError(f"model.adversarial must be true or false, got {adversarial!r}")
        try:
            self.pack = positive_int("model.pack", pack)
            self.pretrain_steps = non_negative_int("model.pretrain_steps", pretrain_steps)
            positive_int("model.n_preview", n_preview), positive_float("model.max_loss", max_loss)
            if max_g_steps is not None:
                positive_int("model.max_g_steps", max_g_steps)
            check_ema_settings(ema_decay, ema_rampup)
            for name, optimizer in (("optimizer_g", optimizer_g), ("optimizer_d", optimizer_d)):
                if "lr" in optimizer:
                    positive_float(f"model.{name}.lr (learning rate)", optimizer["lr"])
        except ValueError as err:
            raise ConfigError(str(err)) from err
        self.entropy_space = EntropySpace(entropy_space, self.pack, seed)
        self.augmentation = Augmentation.from_setting(augment)
        # the arguments are the hyperparameters, as plain data (the data spec once built)
        self.save_hyperparameters(parts.plain(settings | {"data_spec": None}), logger=False)
        self.automatic_optimization = False
        self.loss = parts.build(self.hparams.loss, "loss")
        if adversarial and max_g_steps is not None and self.pretrain_steps >= max_g_steps:
            raise ConfigError(
                f"model.pretrain_steps={self.pretrain_steps} >= model.max_g_steps={max_g_steps}: "
                f"no adversarial step would run; lower model.pretrain_steps, or set "
                f"model.adversarial=false for maximum likelihood alone"
            )
        if not adversarial and getattr(self.loss, "entropy_weight", 0) > 0:
            raise ConfigError(
                f"loss.entropy_weight={self.loss.entropy_weight} with model.adversarial=false: "
                f"maximum-likelihood steps ignore the entropy regulariser; set "
                f"loss.entropy_weight=0 or model.adversarial=true"
            )
        if self.augmentation is not None and self.augmentation.adaptive:
            if not getattr(self.loss, "logit_zero_separates", True):
                name = getattr(self.loss, "name", "") or type(self.loss).__name__
                raise ConfigError(
                    f"model.augment.adaptive=true moves the probability by the sign of D's "
                    f"logits on real data, but loss={name} does not separate real from fake "
                    f"at logit 0: set model.augment.adaptive=false with a fixed "
                    f"model.augment.probability (e.g. 1.0), or a loss whose boundary is 0 "
                    f"(nonsaturating, minimax, hinge)"
                )
            self.augmentation.controller.reduce = self._sum_over_processes
        self.metric = parts.build(self.hparams.metric, "estimator")
        if not isinstance(self.metric, ValidationMetric):
            raise ConfigError(
                f"estimator: {type(self.metric).__name__} is not a gan_je.metrics."
                f"ValidationMetric (subclass gan_je.metrics.RealFakeSamples)"
            )
        self.grad_clip, self.ema_decay, self.ema_rampup = grad_clip, ema_decay, ema_rampup
        self.seed = seed
        self.compile_networks = compile
        self.max_g_steps, self.max_loss = max_g_steps, float(max_loss)
        self.adversarial = adversarial
        self.generator: nn.Module | None = None
        self.discriminator: nn.Module | None = None
        self.ema: AveragedModel | None = None
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

        Unlike Lightning's loader, a checkpoint is only data here: a local file read with
        ``weights_only=True``, registered parts only (:func:`gan_je.checkpoints.load_module`,
        which raises ``CheckpointError``). ``overrides`` replace hyperparameters."""
        return checkpoints.load_module(cls, checkpoint_path, map_location or "cpu", **overrides)

    # ---------------------------------------------------------------- shape-dependent parts
    def build_networks(self, data_spec: Description) -> None:
        """Build the networks, EMA copy and preview latents for samples described by
        ``data_spec`` (and have the metric watch the modes of a known mixture); it is saved
        as a hyperparameter."""
        spec = kind_of(parts.plain(data_spec)).spec  # a spec from before kinds gets its kind
        if self.augmentation is not None and spec["kind"] != "image":
            raise ConfigError(
                f"model.augment transforms images, but the data are of kind {spec['kind']!r}: "
                f"set model.augment=null"
            )
        with torch.device("meta"):  # their sizes first, without taking any memory
            networks = self._networks(spec)
        n_parameters = sum(p.numel() for network in networks for p in network.parameters())
        # trained in float32 with Adam: weights, gradients and two moments per parameter
        check_fits_in_memory("the networks' parameter count", n_parameters, 16)
        self.generator, self.discriminator = self._networks(spec)
        sample_shape = tuple(spec["sample_shape"])
        contract.check_generator(self.generator, sample_shape)
        train_shape = contract.train_shape(self.generator)
        contract.check_discriminator(
            self.discriminator, packed_shape(train_shape or sample_shape, self.pack)
        )
        if train_shape is not None and self.entropy_space.space == "features":
            raise ConfigError(
                f"model.entropy_space=features: the entropy regulariser would measure the "
                f"metric's features, made for samples {sample_shape}, of what "
                f"{type(self.generator).__name__} makes in training, {train_shape}: set "
                f"model.entropy_space=discriminator"
            )
        hp = self.hparams
        if (self.pretrain_steps > 0 or not self.adversarial) and not hasattr(self.generator, "nll"):
            raise ConfigError(
                f"model.pretrain_steps={self.pretrain_steps} and model.adversarial="
                f"{str(self.adversarial).lower()} train the generator by maximum likelihood, "
                f"which {type(self.generator).__name__} cannot (it has no nll(ids) method): "
                f"use model=lstm_gan or model=lstm_mle, or model.pretrain_steps=0 "
                f"model.adversarial=true"
            )
        self.entropy_space.check(self.discriminator)
        self.loss.check_discriminator(self.discriminator)
        if self.ema_decay is not None:
            self.ema = averaged_generator(self.generator, self.ema_decay, self.ema_rampup)
        if self.compile_networks:  # after the EMA's copy; compiled at their first call
            self.generator.compile()
            self.discriminator.compile()
        preview = torch.randn(
            hp.n_preview,
            self.generator.latent_dim,
            generator=seeding.generator(self.seed, "preview"),
        )
        self.register_buffer("preview_latents", preview)
        if "centers" in spec:
            self.metric.watch_modes(torch.tensor(spec["centers"]), spec["std"])
        hp.data_spec = spec

    def _networks(self, spec: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
        """The generator and discriminator this module's descriptions build for ``spec``."""
        generator = sampling.build_generator(self.hparams.generator, spec)
        form = contract.train_shape(generator) or tuple(spec["sample_shape"])
        pack_shape = packed_shape(form, self.pack)
        discriminator = parts.build(
            self.hparams.discriminator, "model.discriminator", sample_shape=pack_shape
        )
        return generator, discriminator

    def setup(self, stage: str) -> None:
        """Build the shape-dependent parts from the datamodule's ``data_spec`` (a module
        restored from a checkpoint has them already and only checks the data match). Each
        trainer call (fit, validate) featurises its own validation set again."""
        self._real_complete = False
        spec = getattr(getattr(self.trainer, "datamodule", None), "data_spec", None)
        if spec is None and self.hparams.data_spec is None:
            raise ConfigError("GANModule needs a datamodule with a data_spec (gan_je.data)")
        if spec is None:
            return
        if self.hparams.data_spec is None:
            self.build_networks(spec)
        elif kind_of(parts.plain(spec)).spec != self.hparams.data_spec:
            raise ConfigError(
                f"the data ({parts.plain(spec)}) differ from those this model was built for "
                f"({self.hparams.data_spec})"
            )

    def fit_features(self, datamodule: Any, again: bool = False) -> None:
        """Fit the metric's feature map on the datamodule's training samples, once (or
        ``again``, e.g. after replacing it): a seeded subset of the metric's
        ``features_fit_samples`` for unsupervised maps (PCA), every labelled sample for learned
        ones (``needs_labels``). Restored features are not fitted again."""
        features = self.metric.features
        if (self._features_fitted and not again) or not hasattr(features, "fit"):
            return
        kind = self.hparams.data_spec["kind"]
        fit_feature_map(features, datamodule, self.metric.features_fit_samples, kind)
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
            raise RuntimeError("GANModule has no networks yet: fit it or load a checkpoint")
        return self.ema.module if self.ema is not None else self.generator

    def sample(
        self, n: int, seed: int | None = None, batch_size: int = 1024, desc: str | None = None
    ) -> Tensor:
        """``(n, *sample_shape)`` samples on the module's device from latents drawn
        ``batch_size`` at a time, seeded by ``seed`` (``None``: torch's global stream); with
        ``desc``, a progress bar of that name on a terminal."""
        return sampling.draw(self.sampler, n, sampling.seeded(seed), batch_size, desc)

    def preview(self) -> Tensor:
        """Samples of the fixed, seeded preview latents (the same every call)."""
        return sampling.apply(self.sampler, self.preview_latents)

    @property
    def _sample_shape(self) -> tuple[int, ...]:
        return tuple(self.hparams.data_spec["sample_shape"])

    def _features(self, samples: Tensor) -> Tensor:
        """What the estimators see of ``samples``: the metric's features, flattened."""
        features = self.metric.features
        return (features(samples) if features is not None else samples).flatten(1)

    # ---------------------------------------------------------------- entropy weight
    def entropy_weight(self) -> float:
        """The entropy regulariser's weight now: the one a callback held (collapse monitor,
        entropy matching), else the loss's (possibly annealed) weight at this step."""
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
        hp, networks = self.hparams, {"g": self.generator, "d": self.discriminator}
        optimizers = {
            n: parts.build(hp[f"optimizer_{n}"], f"model.optimizer_{n}", params=net.parameters())
            for n, net in networks.items()
        }
        schedulers = [
            parts.build(hp[f"scheduler_{n}"], f"model.scheduler_{n}", optimizer=optimizer)
            for n, optimizer in optimizers.items()
            if hp[f"scheduler_{n}"] is not None
        ]
        return list(optimizers.values()), schedulers

    def _step(self, optimizer: Any, loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.grad_clip is not None:
            self.clip_gradients(optimizer, self.grad_clip, gradient_clip_algorithm="norm")
        optimizer.step()

    # ---------------------------------------------------------------- training
    @property
    def maximum_likelihood(self) -> bool:
        """Whether the next generator step is maximum likelihood (pretraining, or a
        non-adversarial run) rather than adversarial."""
        return not self.adversarial or self.g_step < self.pretrain_steps

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        if self.maximum_likelihood:
            losses = self._likelihood_step(real)
        else:
            losses = self._adversarial_step(real)
        self.g_step += 1
        if self.max_g_steps is not None and self.g_step >= self.max_g_steps:
            self.trainer.should_stop = True
        if self.ema is not None:
            self.ema.update_parameters(self.generator)
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if scheduler is not None:
                scheduler.step()
        self.log_dict(losses, prog_bar=True)
        self.log("train/g_step", float(self.g_step))
        if self.augmentation is not None:
            self.log("train/augment_p", self.augmentation.p)

    def _likelihood_step(self, real: Tensor) -> dict[str, Tensor]:
        """One maximum likelihood step of the generator on the real token sequences
        ``(B, L, V)``: the mean negative log-likelihood per token of ``real.argmax(-1)``."""
        opt_g = self.optimizers()[0]
        self.toggle_optimizer(opt_g)
        nll = self.generator.nll(real.argmax(dim=-1))
        check_finite(nll, "generator NLL", self.max_loss, self.g_step, self.current_epoch)
        self._step(opt_g, nll)
        self.untoggle_optimizer(opt_g)
        return {"train/nll": nll.detach()}

    def _seen(self, samples: Tensor) -> Tensor:
        """``samples`` as the discriminator sees them: augmented (when on), then packed."""
        if self.augmentation is not None:
            samples = self.augmentation(samples)
        return pack_samples(samples, self.pack)

    def _sum_over_processes(self, tensor: Tensor) -> Tensor:
        """``tensor`` summed over the training processes (itself in one process, or with no
        trainer)."""
        if self._trainer is None:
            return tensor
        return self.trainer.strategy.reduce(tensor.to(self.device), reduce_op="sum")

    def _adversarial_step(self, real: Tensor) -> dict[str, Tensor]:
        """``loss.n_critic`` discriminator steps, then one generator step. Discriminator
        step ``i`` of this generator step is step ``g_step · n_critic + i`` of the run (lazy
        R1 counts them)."""
        if contract.train_shape(self.generator) is not None:  # e.g. SpecGAN's spectrograms
            real = self.generator.to_train_form(real)
        real = whole_packs(real, self.pack)
        n = real.shape[0]
        opt_g, opt_d = self.optimizers()
        at = (self.g_step, self.current_epoch)  # where a diverged loss is reported
        latent_dim = self.generator.latent_dim

        self.toggle_optimizer(opt_d)
        for i in range(self.loss.n_critic):
            with torch.no_grad():
                fake = self.generator(torch.randn(n, latent_dim, device=self.device))
            real_seen, fake = self._seen(real), self._seen(fake)
            real_logits = self.discriminator(real_seen)
            d_step = self.g_step * self.loss.n_critic + i
            d_loss = self.loss.discriminator_loss(
                real_logits, self.discriminator(fake)
            ) + self.loss.penalty(self.discriminator, real_seen, fake, d_step=d_step)
            check_finite(
                d_loss, "discriminator loss", self.max_loss, self.g_step, self.current_epoch
            )
            self._step(opt_d, d_loss)
            if self.augmentation is not None:  # r_t over every process's real batches
                self.augmentation.observe(real_logits, n * self.trainer.world_size)
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        fake = self.generator(torch.randn(n, latent_dim, device=self.device))
        g_loss = self.loss.generator_loss(self.discriminator(self._seen(fake)))
        entropy_weight = self.entropy_weight()
        if entropy_weight != 0:
            coordinates = self.entropy_space(fake, self._features, self.discriminator)
            batch_entropy = differentiable_entropy(coordinates)
            g_loss = g_loss - entropy_weight * batch_entropy
            self.log(f"train/entropy_batch{self.entropy_space.log_suffix}", batch_entropy.detach())
        if entropy_weight != 0 or self.loss.entropy_weight > 0:
            self.log("train/entropy_weight", entropy_weight)
        check_finite(g_loss, "generator loss", self.max_loss, *at)
        self._step(opt_g, g_loss)
        self.untoggle_optimizer(opt_g)
        return {"train/d_loss": d_loss.detach(), "train/g_loss": g_loss.detach()}

    # ---------------------------------------------------------------- validation
    @property
    def _keeps_real(self) -> bool:
        """Whether the metric keeps the real samples across ``reset()`` and already holds
        the whole validation set, so it need not see it again."""
        return self._real_complete and self.metric.keeps_real

    def on_validation_epoch_start(self) -> None:
        """Start the metric's epoch; give a metric that wants them (data copying) a seeded
        subset of ``max_samples`` training samples, from rank 0 only (the metric gathers over
        processes), not in the sanity check (forgotten right after) nor in validate-only runs
        (no training split)."""
        if self.trainer.sanity_checking or not self._keeps_real:
            self.metric.reset_all()
            self._real_complete = False
        self._n_real_seen = 0
        train_set = self.trainer.datamodule.train_set
        if self.trainer.sanity_checking or self.global_rank != 0 or train_set is None:
            return
        if self.metric.wants_training_samples():
            chunk = min(1024, sampling.chunk_rows(self._sample_shape))
            datamodule = self.trainer.datamodule
            training = datamodule.sample_batches("train", self.metric.max_samples, chunk)
            for batch in training:
                self.metric.update_training(batch.to(self.device))

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        self._n_real_seen += real.shape[0]
        if not self._keeps_real:
            self.metric.update(real, real=True)

    def on_validation_epoch_end(self) -> None:
        rank, world, n_fake = self.global_rank, self.trainer.world_size, self.metric.n_fake
        # as many as this process's real samples, or its share of n_fake
        n = self._n_real_seen if n_fake is None else n_fake // world + (rank < n_fake % world)
        if n > 0:  # in chunks of sampling.CHUNK_BYTES (a long token sequence is 400 KB)
            latents = seeding.generator(self.seed, "validation", rank)
            chunk = sampling.chunk_rows(self._sample_shape)
            for fake in sampling.batches(self.sampler, n, latents, chunk=chunk):
                self.metric.update(fake, real=False)
        values = self.metric.compute()  # already over every process: no sync_dist
        jsd = values.pop("jsd")
        self.log_dict({f"val/{key}": value for key, value in values.items()})
        self.log("val/jsd", jsd, prog_bar=True)
        self.log("train/g_step", float(self.g_step))  # the x-axis of W&B's charts, in this row too
        self.metric.reset()
        self._real_complete = not self.trainer.sanity_checking

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["g_step"] = self.g_step
        checkpoint["entropy_weight_held"] = self.entropy_weight_held
        checkpoint["rng"] = checkpoints.random_state()
        if self.augmentation is not None:
            checkpoint["augment"] = self.augmentation.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.g_step = int(checkpoint.get("g_step", 0))
        self.entropy_weight_held = checkpoint.get("entropy_weight_held")
        self._rng_to_restore = checkpoint.get("rng")
        if self.augmentation is not None:
            # one process takes the partial sums of r_t, which the next reduction adds up
            state = checkpoint.get("augment", {})
            self.augmentation.load_state_dict(state, sums=self.global_rank == 0)
        self._features_fitted = True  # the state dict holds the fitted features

    def on_train_start(self) -> None:
        """Restore the random streams of a resumed run (``ckpt_path``) once Lightning has
        loaded it; a module loaded from a checkpoint and trained afresh keeps its seed."""
        state, self._rng_to_restore = self._rng_to_restore, None
        if state is None or not self.trainer.ckpt_path:
            return
        checkpoints.restore_random_state(state)
        checkpoints.apply_configured_learning_rates(self.optimizers(), self.hparams)


#: the arguments of ``GANModule``, saved as its hyperparameters
_ARGUMENTS = tuple(inspect.signature(GANModule.__init__).parameters)[1:]
