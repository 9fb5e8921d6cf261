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
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from lightning import LightningModule
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gan_je.checks import positive_int
from gan_je.estimators import differentiable_entropy
from gan_je.losses import GANLoss
from gan_je.metrics import MixtureCoverage, RealFakeSamples
from gan_je.models.packing import pack_samples

OptimizerFactory = Callable[[Any], Optimizer]
SchedulerFactory = Callable[[Optimizer], LRScheduler]


class DivergenceError(FloatingPointError):
    """A loss became NaN or infinite; training cannot continue from this state."""


class GANModule(LightningModule):
    """A GAN trained with manual optimisation and measured by ``metric`` every validation.

    Args:
        generator: maps latents ``(B, generator.latent_dim)`` to samples.
        discriminator: maps samples to logits ``(B,)``; with ``pack > 1`` it maps packs,
            shaped :func:`gan_je.models.packing.packed_shape`, to one logit each.
        loss: the objective (:mod:`gan_je.losses`), with ``n_critic`` and its penalties.
        metric: a :class:`gan_je.metrics.RealFakeSamples` (its ``features`` are fitted on
            training samples by :meth:`fit_features` before training).
        optimizer_g, optimizer_d: callables ``params -> Optimizer`` (Hydra ``_partial_``).
        scheduler_g, scheduler_d: optional callables ``optimizer -> LRScheduler``, stepped
            once per generator step.
        grad_clip: clip each network's gradient norm to this value (``None``: no clipping).
        ema_decay: keep an exponential moving average of the generator with this decay and
            validate with it (``None``: off).
        n_preview: latents of the fixed, seeded preview batch for sample pictures.
        max_g_steps: stop training after this many generator steps (``None``: no limit).
        n_fake: generated samples per validation, over all processes (``None``: as many as
            the validation set has).
        coverage: for data from a known mixture, the mode-coverage metric; the validation
            samples also go through it (``val/modes_covered``, ``val/high_quality``,
            ``val/mode_kl``).
        pack: PacGAN packing (Lin et al. 2018): the discriminator sees ``pack`` samples of
            one source joined into one input (1: off). A training batch is trimmed to a
            multiple of ``pack``.
        seed: seeds the preview and validation latents.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        metric: RealFakeSamples,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        scheduler_g: SchedulerFactory | None = None,
        scheduler_d: SchedulerFactory | None = None,
        grad_clip: float | None = None,
        ema_decay: float | None = None,
        n_preview: int = 64,
        max_g_steps: int | None = None,
        n_fake: int | None = None,
        coverage: MixtureCoverage | None = None,
        pack: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(getattr(generator, "latent_dim", None), int):
            raise ValueError("generator must have an int attribute latent_dim")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be None or > 0, got {grad_clip!r}")
        if ema_decay is not None and not 0 < ema_decay < 1:
            raise ValueError(f"ema_decay must be None or in (0, 1), got {ema_decay!r}")
        n_preview = positive_int("n_preview", n_preview)
        self.pack = positive_int("pack", pack)
        if max_g_steps is not None:
            max_g_steps = positive_int("max_g_steps", max_g_steps)
        if n_fake is not None and positive_int("n_fake", n_fake) < 2:
            raise ValueError(f"n_fake must be None or at least 2, got {n_fake!r}")
        self.automatic_optimization = False
        self.n_fake, self.coverage = n_fake, coverage
        self.max_g_steps = max_g_steps
        self.generator, self.discriminator, self.loss, self.metric = (
            generator,
            discriminator,
            loss,
            metric,
        )
        self.optimizer_g, self.optimizer_d = optimizer_g, optimizer_d
        self.scheduler_g, self.scheduler_d = scheduler_g, scheduler_d
        self.grad_clip, self.seed = grad_clip, seed
        self.ema = (
            AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
            if ema_decay is not None
            else None
        )
        preview = torch.randn(n_preview, generator.latent_dim, generator=self._latents(seed))
        self.register_buffer("preview_latents", preview)
        self.g_step = 0
        self._n_real_seen = 0
        self._rng_to_restore: dict[str, Any] | None = None
        self.run_config: dict[str, Any] | None = None  # the resolved config, saved in checkpoints

    # ---------------------------------------------------------------- sampling
    @staticmethod
    def _latents(seed: int) -> torch.Generator:
        return torch.Generator(device="cpu").manual_seed(seed)

    @property
    def sampler(self) -> nn.Module:
        """The generator used for pictures and validation: the EMA copy when enabled."""
        return self.ema.module if self.ema is not None else self.generator

    @torch.no_grad()
    def generate(self, z: Tensor) -> Tensor:
        """:attr:`sampler` applied to latents ``z`` in eval mode (batch norm uses its running
        statistics), leaving the network's mode as it was."""
        net = self.sampler
        was_training = net.training
        net.eval()
        samples = net(z.to(self.device))
        net.train(was_training)
        return samples

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` samples from fresh latents drawn with ``generator``."""
        return self.generate(torch.randn(n, self.sampler.latent_dim, generator=generator))

    def preview(self) -> Tensor:
        """Samples of the fixed, seeded preview latents (the same every call)."""
        return self.generate(self.preview_latents)

    def _features(self, samples: Tensor) -> Tensor:
        """What the estimators see of ``samples``: the metric's features, flattened."""
        features = self.metric.features
        return (features(samples) if features is not None else samples).flatten(1)

    def fit_features(self, train_samples: Tensor, labels: Tensor | None = None) -> None:
        """Fit the metric's feature map (if it has ``fit``) on training samples, once;
        learned features (``needs_labels``) also get the samples' labels."""
        features = self.metric.features
        if features is None or not hasattr(features, "fit"):
            return
        if getattr(features, "needs_labels", False):
            features.fit(train_samples, labels)
        else:
            features.fit(train_samples)

    # ---------------------------------------------------------------- optimisers
    def configure_optimizers(self) -> Any:
        opt_g = self.optimizer_g(self.generator.parameters())
        opt_d = self.optimizer_d(self.discriminator.parameters())
        schedulers = [
            {"scheduler": factory(opt), "interval": "step"}
            for factory, opt in ((self.scheduler_g, opt_g), (self.scheduler_d, opt_d))
            if factory is not None
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
        if not torch.isfinite(value):
            raise DivergenceError(
                f"the {name} loss is {value.item()} at generator step {self.g_step} "
                f"(epoch {self.current_epoch}); training stopped. Lower the learning rate, "
                f"add grad_clip or a penalty, or resume from the last good checkpoint"
            )

    # ---------------------------------------------------------------- training
    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        opt_g, opt_d = self.optimizers()
        n = real.shape[0] - real.shape[0] % self.pack
        if n == 0:
            raise ValueError(
                f"a training batch of {real.shape[0]} samples holds no pack of "
                f"module.pack={self.pack}: raise data.batch_size"
            )
        real = pack_samples(real[:n], self.pack)

        self.toggle_optimizer(opt_d)
        for _ in range(self.loss.n_critic):
            with torch.no_grad():
                fake = self.generator(torch.randn(n, self.generator.latent_dim, device=self.device))
            fake = pack_samples(fake, self.pack)
            d_loss = self.loss.discriminator_loss(
                self.discriminator(real), self.discriminator(fake)
            ) + self.loss.penalty(self.discriminator, real, fake)
            self._check_finite(d_loss, "discriminator")
            self._step(opt_d, d_loss)
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        fake = self.generator(torch.randn(n, self.generator.latent_dim, device=self.device))
        g_loss = self.loss.generator_loss(self.discriminator(pack_samples(fake, self.pack)))
        entropy_weight = self.loss.entropy_weight_at(self.g_step)
        if entropy_weight > 0:
            batch_entropy = differentiable_entropy(self._features(fake))
            g_loss = g_loss - entropy_weight * batch_entropy
            self.log("train/entropy_batch", batch_entropy.detach())
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
    def on_validation_epoch_start(self) -> None:
        self.metric.reset()
        self._n_real_seen = 0

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        self.metric.update(real, real[:0])
        self._n_real_seen += real.shape[0]

    def on_validation_epoch_end(self) -> None:
        rank, world = self.global_rank, self.trainer.world_size
        latents = self._latents(self.seed + 1 + rank)
        if self.n_fake is None:
            remaining = self._n_real_seen
        else:  # this process's share of n_fake
            remaining = self.n_fake // world + (rank < self.n_fake % world)
        batch = max(1, min(1024, remaining))
        while remaining > 0:
            fake = self.sample(min(batch, remaining), latents)
            self.metric.update(fake[:0], fake)
            if self.coverage is not None:
                self.coverage.update(fake)
            remaining -= fake.shape[0]
        values = self.metric.compute()  # already over every process: no sync_dist
        if self.coverage is not None:
            values |= self.coverage.compute()
            self.coverage.reset()
        jsd = values.pop("jsd")
        self.log_dict({f"val/{key}": value for key, value in values.items()})
        self.log("val/jsd", jsd, prog_bar=True)
        self.metric.reset()

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["g_step"] = self.g_step
        if self.run_config is not None:
            checkpoint["run_config"] = self.run_config
        kind, keys, position, has_gauss, cached = np.random.get_state()
        checkpoint["rng"] = {  # tensors and plain values only, so weights_only loading works
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.g_step = int(checkpoint.get("g_step", 0))
        self._rng_to_restore = checkpoint.get("rng")

    def on_train_start(self) -> None:
        """Restore the random streams of a resumed run once Lightning has loaded it."""
        if self._rng_to_restore is None:
            return
        state, self._rng_to_restore = self._rng_to_restore, None
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        kind, keys, position, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        random.setstate(state["python"])
