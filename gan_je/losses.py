"""GAN objectives: the maths as pure functions, and small classes that configs instantiate.

Every function takes discriminator *logits* (raw scores, no sigmoid) and returns a 0-dim
tensor averaged over the batch. With r = D(x) on real data and f = D(G(z)) on generated data,
s(t) = 1 / (1 + exp(-t)) the logistic sigmoid, and softplus(t) = log(1 + exp(t)):

==============  ================================  ========================================
loss            discriminator minimises           generator minimises
==============  ================================  ========================================
nonsaturating   E softplus(-r) + E softplus(f)    E softplus(-f) = -E log s(f)
minimax         E softplus(-r) + E softplus(f)    -E softplus(f) = E log(1 - s(f))
hinge           E relu(1 - r) + E relu(1 + f)     -E f
wgan_gp         E f - E r  (+ gradient penalty)   -E f
lsgan           ½ E (r - 1)² + ½ E f²             ½ E (f - 1)²
==============  ================================  ========================================

``softplus(-t) = -log s(t)`` and ``softplus(t) = -log(1 - s(t))`` are evaluated without ever
forming s(t), so they neither underflow to log 0 nor lose precision for large |t|.

A loss object also says how to train: ``n_critic`` discriminator steps per generator step,
and ``penalty(...)``, the regularisers added to the discriminator loss (WGAN-GP's gradient
penalty; R1 when ``r1_weight > 0``, every ``r1_every`` discriminator steps).
"""

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_je.checks import non_negative_float, non_negative_int, positive_int
from gan_je.errors import ConfigError, DivergenceError

# --------------------------------------------------------------------------- pure functions


def bce_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E log s(r) - E log(1 - s(f)) = E softplus(-r) + E softplus(f).

    The negated value function of Goodfellow et al. 2014, i.e. binary cross-entropy with label
    1 for real and 0 for fake, summed over the two halves. Equals 2 log 2 when all logits are 0.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def nonsaturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E log s(f) = E softplus(-f) (Goodfellow et al. 2014, section 3).

    The generator maximises log D(G(z)). Its gradient w.r.t. f is -(1 - s(f)) ≈ -1 when the
    discriminator confidently rejects the fakes (f ≪ 0), so learning does not stall early on.
    """
    return F.softplus(-fake_logits).mean()


def minimax_generator_loss(fake_logits: Tensor) -> Tensor:
    """E log(1 - s(f)) = -E softplus(f) (Goodfellow et al. 2014, equation 1).

    The generator minimises the discriminator's own value function. Its gradient w.r.t. f is
    -s(f) ≈ 0 when f ≪ 0: it vanishes exactly when the generator is worst (saturation).
    """
    return -F.softplus(fake_logits).mean()


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E relu(1 - r) + E relu(1 + f) (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E f (Lim & Ye 2017; Miyato et al. 2018)."""
    return -fake_logits.mean()


def wasserstein_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E f - E r: the critic maximises E D(x) - E D(G(z)) (Arjovsky et al. 2017).

    Only an estimate of the Wasserstein-1 distance while D is (close to) 1-Lipschitz, hence
    the gradient penalty of WGAN-GP.
    """
    return fake_logits.mean() - real_logits.mean()


def wasserstein_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E f (Arjovsky et al. 2017)."""
    return -fake_logits.mean()


def least_squares_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """½ E (r - 1)² + ½ E f² (Mao et al. 2017, targets a = 0 for fake, b = 1 for real)."""
    return 0.5 * (real_logits - 1.0).square().mean() + 0.5 * fake_logits.square().mean()


def least_squares_generator_loss(fake_logits: Tensor) -> Tensor:
    """½ E (f - 1)² (Mao et al. 2017, target c = 1)."""
    return 0.5 * (fake_logits - 1.0).square().mean()


def check_finite(value: Tensor, name: str, limit: float, g_step: int, epoch: int) -> None:
    """End the run as diverged (:class:`~gan_je.errors.DivergenceError`) where the loss
    ``value`` is not finite or beyond ``limit`` in size (``model.max_loss``)."""
    if not abs(value) <= limit:  # CPU-GPU sync point, once per loss; NaN fails too
        raise DivergenceError(
            f"the {name} is {value.item():.4g} at generator step {g_step} (epoch {epoch}; "
            f"limit {limit:g}); training stopped. Lower the learning rate, add grad_clip or a "
            f"penalty, or resume from the last good checkpoint"
        )


def _input_gradients(outputs: Tensor, inputs: Tensor) -> Tensor:
    """∇_x Σ_i D(x_i), one row per sample: (B, *shape) -> (B, prod(shape)).

    Each D(x_i) depends only on x_i (no batch norm), so row i is ∇D(x_i). ``create_graph`` keeps
    the graph so that a penalty on these gradients can be back-propagated to D's parameters.
    """
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.flatten(start_dim=1)


def _warn_if_batch_norm(discriminator: nn.Module, name: str) -> None:
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
        warnings.warn(
            f"{name} is a per-sample gradient penalty, but the discriminator uses batch norm, "
            "which mixes the samples of a batch; use norm='layer' or norm='none'",
            stacklevel=3,
        )


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    weight: float = 10.0,
) -> Tensor:
    """λ · E[(‖∇D(x̂)‖₂ - 1)²] at x̂ = εx + (1 - ε)x̃, ε ~ U[0, 1] per sample.

    The WGAN-GP penalty of Gulrajani et al. 2017 (λ = ``weight``, 10 in the paper), computed
    at random interpolates between real samples x and generated samples x̃ (``fake`` is
    detached: the penalty trains D only). Differentiable w.r.t. D's parameters.
    Invalid with batch norm in D (the gradient would not be per sample); a warning says so.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake batches must have the same shape, got {tuple(real.shape)} "
            f"and {tuple(fake.shape)}"
        )
    if isinstance(discriminator, nn.Module):
        _warn_if_batch_norm(discriminator, "the WGAN-GP gradient penalty")
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = torch.rand(eps_shape, device=real.device, dtype=real.dtype)
    interpolates = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    grad = _input_gradients(discriminator(interpolates), interpolates)
    return weight * (torch.linalg.vector_norm(grad, dim=1) - 1.0).square().mean()


def r1_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    weight: float,
    real_logits: Tensor | None = None,
) -> Tensor:
    """(gamma / 2) · E ‖∇_x D(x)‖₂² on real data (Mescheder et al. 2018), gamma = ``weight``.

    Pass ``real_logits`` to reuse a forward pass: it is used when it was computed from ``real``
    with ``real.requires_grad`` set; otherwise D is run again on a copy of ``real`` that
    requires grad. Differentiable w.r.t. D's parameters.
    """
    grad = None
    if real_logits is not None and real_logits.requires_grad and real.requires_grad:
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True, allow_unused=True)
    if grad is None:
        real = real.detach().requires_grad_(True)
        grad = _input_gradients(discriminator(real), real)
    return 0.5 * weight * grad.flatten(start_dim=1).square().sum(dim=1).mean()


# --------------------------------------------------------------------------- loss classes


class GANLoss:
    """Base class: a pair of objectives plus the training schedule and regularisers.

    Attributes:
        n_critic: discriminator steps per generator step.
        r1_weight: gamma of the R1 penalty on real data (0 = off).
        r1_every: lazy R1 (Karras et al. 2020, "Analyzing and improving the image quality of
            StyleGAN", section 3.1): the penalty is applied on one discriminator step in
            ``r1_every``, multiplied by ``r1_every``, so its mean over the steps is unchanged
            while its cost (a second backward pass) is paid ``r1_every`` times less often.
        gp_weight: λ of the WGAN-GP gradient penalty (0 = off; only ``WassersteinGP`` sets it).
        entropy_weight: λ of the entropy regulariser: the generator minimises its adversarial
            loss - λ·Ĥ(G(z)), Ĥ the differentiable Kozachenko-Leonenko entropy of its batch
            (:func:`gan_je.estimators.differentiable_entropy`; 0 = off). The mode-collapse
            monitor's ``boost`` overrides it with ``GANModule.hold_entropy_weight``.
        entropy_anneal_steps: when set, the weight used at generator step t is
            λ·max(0, 1 - t / entropy_anneal_steps): the regulariser spreads the generator
            early and leaves the adversarial loss alone to sharpen the modes later
            (``None``: constant λ). See :meth:`entropy_weight_at`.
        logit_zero_separates: whether D's logit 0 separates what it calls real (> 0) from
            what it calls fake (< 0), as ADA's overfitting heuristic E[sign D(real)] assumes
            (:class:`gan_je.augment.AdaptiveProbability`): true for the losses on a sigmoid
            or a margin around 0; false for least squares (targets 0 and 1) and WGAN (no
            boundary).
    """

    name: str = ""
    logit_zero_separates: bool = True

    def __init__(
        self,
        n_critic: int = 1,
        r1_weight: float = 0.0,
        entropy_weight: float = 0.0,
        entropy_anneal_steps: int | None = None,
        r1_every: int = 1,
    ) -> None:
        self.n_critic = positive_int("n_critic (discriminator steps per generator step)", n_critic)
        self.r1_weight = non_negative_float("r1_weight", r1_weight)
        self.r1_every = positive_int("r1_every (discriminator steps per R1 penalty)", r1_every)
        self.entropy_weight = non_negative_float("entropy_weight", entropy_weight)
        self.entropy_anneal_steps = (
            None
            if entropy_anneal_steps is None
            else positive_int("entropy_anneal_steps", entropy_anneal_steps)
        )
        self.gp_weight = 0.0

    def check_discriminator(self, discriminator: nn.Module) -> None:
        """Refuse a discriminator with batch norm when the WGAN-GP penalty is on: it
        penalises per-sample gradients, which batch norm mixes across the batch."""
        if self.gp_weight > 0 and any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()
        ):
            raise ConfigError(
                f"{type(self).__name__} penalises per-sample gradients, which batch norm in "
                f"the discriminator mixes across the batch: set model.discriminator.norm=layer, "
                f"or use model=dcgan_sn (spectral norm, no batch norm)"
            )

    def entropy_weight_at(self, g_step: int) -> float:
        """The entropy regulariser's weight at generator step ``g_step``:
        λ·max(0, 1 - g_step / entropy_anneal_steps), or λ when not annealed."""
        g_step = non_negative_int("g_step", g_step)
        if self.entropy_anneal_steps is None:
            return self.entropy_weight
        return self.entropy_weight * max(0.0, 1.0 - g_step / self.entropy_anneal_steps)

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The loss D minimises, from its logits on a real and a generated batch."""
        raise NotImplementedError

    def generator_loss(self, fake_logits: Tensor) -> Tensor:
        """The loss G minimises, from D's logits on a generated batch."""
        raise NotImplementedError

    def penalty(
        self,
        discriminator: nn.Module,
        real: Tensor,
        fake: Tensor,
        real_logits: Tensor | None = None,
        *,
        d_step: int,
    ) -> Tensor:
        """Regularisers to add to the discriminator loss at discriminator step ``d_step``
        (counted from 0 over the run); a zero tensor when none applies.

        ``gp_weight · E[(‖∇D(x̂)‖ - 1)²]`` (WGAN-GP, see ``gradient_penalty``) plus, on the
        steps with ``d_step % r1_every == 0``, ``r1_every · (r1_weight / 2) · E‖∇D(x)‖²`` on
        real data (lazy R1, see ``r1_penalty``). Differentiable w.r.t. D's parameters.
        """
        d_step = non_negative_int("d_step", d_step)
        total = real.new_zeros(())
        if self.gp_weight > 0:
            total = total + gradient_penalty(discriminator, real, fake, self.gp_weight)
        if self.r1_weight > 0 and d_step % self.r1_every == 0:
            weight = self.r1_weight * self.r1_every
            total = total + r1_penalty(discriminator, real, weight, real_logits)
        return total

    def __repr__(self) -> str:
        args = f"n_critic={self.n_critic}, r1_weight={self.r1_weight}"
        if self.r1_every != 1:
            args += f", r1_every={self.r1_every}"
        if self.entropy_weight > 0:
            args += f", entropy_weight={self.entropy_weight}"
        if self.entropy_anneal_steps is not None:
            args += f", entropy_anneal_steps={self.entropy_anneal_steps}"
        if self.gp_weight > 0:
            args = f"gp_weight={self.gp_weight}, " + args
        return f"{type(self).__name__}({args})"


class NonSaturating(GANLoss):
    """The standard GAN (Goodfellow et al. 2014) with the non-saturating generator loss.

    D: E softplus(-r) + E softplus(f) (binary cross-entropy on logits).
    G: E softplus(-f) = -E log D(G(z)), i.e. G *maximises* log D(G(z)).

    The usual tutorial mistake is to derive G's loss from the discriminator's by flipping a
    sign: ``-(D's fake term)`` makes G minimise log(1 - D(G(z))), the saturating ``Minimax``
    loss whose gradient vanishes while the fakes are easy to reject; reusing D's fake term
    as is, E softplus(f) = -E log(1 - D(G(z))), even trains G to look *more* fake. The right
    loss is BCE of D(G(z)) against the label "real": E softplus(-f).
    """

    name = "nonsaturating"

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return bce_discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits: Tensor) -> Tensor:
        return nonsaturating_generator_loss(fake_logits)


class Minimax(GANLoss):
    """The original minimax game (Goodfellow et al. 2014, equation 1).

    D: E softplus(-r) + E softplus(f).   G: E log(1 - D(G(z))) = -E softplus(f).
    Saturates: G's gradient vanishes when D rejects the fakes confidently. For comparison only;
    prefer ``NonSaturating``.
    """

    name = "minimax"

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return bce_discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits: Tensor) -> Tensor:
        return minimax_generator_loss(fake_logits)


class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018).

    D: E relu(1 - r) + E relu(1 + f).   G: -E f.
    """

    name = "hinge"

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return hinge_discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits: Tensor) -> Tensor:
        return hinge_generator_loss(fake_logits)


class WassersteinGP(GANLoss):
    """Wasserstein GAN with gradient penalty (Gulrajani et al. 2017).

    D (the critic): E f - E r + λ E[(‖∇D(x̂)‖₂ - 1)²], λ = ``gp_weight`` = 10.
    G: -E f. The paper trains the critic ``n_critic = 5`` times per generator step.
    The critic must not use batch norm (use ``DCGANDiscriminator(norm="layer")`` or
    ``norm="none"``).
    """

    name = "wgan_gp"
    logit_zero_separates = False

    def __init__(
        self,
        gp_weight: float = 10.0,
        n_critic: int = 5,
        r1_weight: float = 0.0,
        entropy_weight: float = 0.0,
        entropy_anneal_steps: int | None = None,
        r1_every: int = 1,
    ) -> None:
        super().__init__(
            n_critic=n_critic,
            r1_weight=r1_weight,
            entropy_weight=entropy_weight,
            entropy_anneal_steps=entropy_anneal_steps,
            r1_every=r1_every,
        )
        self.gp_weight = non_negative_float("gp_weight", gp_weight)

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return wasserstein_discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits: Tensor) -> Tensor:
        return wasserstein_generator_loss(fake_logits)


class LeastSquares(GANLoss):
    """Least-squares GAN (Mao et al. 2017) with targets a = 0 (fake), b = 1 (real), c = 1.

    D: ½ E (r - 1)² + ½ E f².   G: ½ E (f - 1)².
    """

    name = "lsgan"
    logit_zero_separates = False

    def discriminator_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return least_squares_discriminator_loss(real_logits, fake_logits)

    def generator_loss(self, fake_logits: Tensor) -> Tensor:
        return least_squares_generator_loss(fake_logits)


LOSSES: dict[str, type[GANLoss]] = {
    cls.name: cls for cls in (NonSaturating, Minimax, Hinge, WassersteinGP, LeastSquares)
}
