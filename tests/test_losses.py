"""GAN objectives: values by hand, gradients, stability, penalties, argument errors."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from gan_je.losses import (
    LOSSES,
    GANLoss,
    Hinge,
    LeastSquares,
    Minimax,
    NonSaturating,
    WassersteinGP,
    gradient_penalty,
    r1_penalty,
)
from gan_je.models import DCGANDiscriminator, MLPDiscriminator
from gan_je.train import build
from tests.test_module import SMALL_RING, _fit

LOG2 = math.log(2.0)
ALL = [NonSaturating, Minimax, Hinge, WassersteinGP, LeastSquares]


def softplus(t: float) -> float:
    return math.log1p(math.exp(t))


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


class Linear(nn.Module):
    """D(x) = w · flatten(x) + b, so ∇_x D = w everywhere."""

    def __init__(self, w: torch.Tensor, b: float = 0.3) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(b, dtype=w.dtype))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x.flatten(1) @ self.w + self.b


# ---------------------------------------------------------------------------------- values


def test_zero_logits():
    zeros = torch.zeros(4)
    assert NonSaturating().discriminator_loss(zeros, zeros).item() == pytest.approx(2 * LOG2)
    assert NonSaturating().generator_loss(zeros).item() == pytest.approx(LOG2)
    assert Minimax().discriminator_loss(zeros, zeros).item() == pytest.approx(2 * LOG2)
    assert Minimax().generator_loss(zeros).item() == pytest.approx(-LOG2)
    assert Hinge().discriminator_loss(zeros, zeros).item() == 2.0
    assert Hinge().generator_loss(zeros).item() == 0.0
    assert WassersteinGP().discriminator_loss(zeros, zeros).item() == 0.0
    assert LeastSquares().discriminator_loss(zeros, zeros).item() == 0.5
    assert LeastSquares().generator_loss(zeros).item() == 0.5


def test_values_by_hand():
    r, f = t(2.0, -1.0, 0.5), t(0.5, -3.0, 1.5)
    rs, fs = [2.0, -1.0, 0.5], [0.5, -3.0, 1.5]

    def mean(xs):
        return sum(xs) / len(xs)

    bce = mean([softplus(-x) for x in rs]) + mean([softplus(x) for x in fs])
    assert NonSaturating().discriminator_loss(r, f).item() == pytest.approx(bce)
    assert Minimax().discriminator_loss(r, f).item() == pytest.approx(bce)
    assert NonSaturating().generator_loss(f).item() == pytest.approx(
        mean([-math.log(1 / (1 + math.exp(-x))) for x in fs])
    )
    assert Minimax().generator_loss(f).item() == pytest.approx(
        mean([math.log(1 - 1 / (1 + math.exp(-x))) for x in fs])
    )
    # hinge: relu(1 - r) = (0, 2, 0.5); relu(1 + f) = (1.5, 0, 2.5)
    assert Hinge().discriminator_loss(r, f).item() == pytest.approx(2.5 / 3 + 4.0 / 3)
    assert Hinge().generator_loss(f).item() == pytest.approx(-(0.5 - 3.0 + 1.5) / 3)
    assert WassersteinGP().discriminator_loss(r, f).item() == pytest.approx(-1.0 / 3 - 1.5 / 3)
    assert WassersteinGP().generator_loss(f).item() == pytest.approx(1.0 / 3)
    # lsgan: (r - 1)² = (1, 4, 0.25); f² = (0.25, 9, 2.25); (f - 1)² = (0.25, 16, 0.25)
    assert LeastSquares().discriminator_loss(r, f).item() == pytest.approx(
        0.5 * 5.25 / 3 + 0.5 * 11.5 / 3
    )
    assert LeastSquares().generator_loss(f).item() == pytest.approx(0.5 * 16.5 / 3)


def test_losses_return_scalars_and_batch_size_does_not_scale_them():
    for cls in ALL:
        loss = cls()
        small = loss.discriminator_loss(t(1.0, -1.0), t(0.5, 0.5))
        big = loss.discriminator_loss(t(1.0, -1.0).repeat(50), t(0.5, 0.5).repeat(50))
        assert small.ndim == 0 and big.item() == pytest.approx(small.item())
        assert loss.generator_loss(t(0.5, 2.0)).ndim == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_numerically_stable_for_extreme_logits(dtype):
    big = torch.tensor([200.0, 60.0], dtype=dtype)
    for cls in ALL:
        loss = cls()
        for r, f in [(big, -big), (-big, big)]:
            assert torch.isfinite(loss.discriminator_loss(r, f))
            assert torch.isfinite(loss.generator_loss(f))
    # softplus, not log(sigmoid): exact far in the tails, where log(sigmoid) gives inf
    f = torch.tensor([-200.0])
    assert NonSaturating().generator_loss(f).item() == pytest.approx(200.0)
    assert Minimax().generator_loss(-f).item() == pytest.approx(-200.0)
    assert NonSaturating().discriminator_loss(-f, f).item() < 1e-30


def test_nonsaturating_gradient_is_large_where_minimax_vanishes():
    """Early in training D rejects the fakes: D(G(z)) = s(f) ≈ 0, f ≪ 0."""
    f = torch.full((4,), -10.0, dtype=torch.float64, requires_grad=True)
    (g_ns,) = torch.autograd.grad(NonSaturating().generator_loss(f), f)
    (g_mm,) = torch.autograd.grad(Minimax().generator_loss(f), f)
    # d/df softplus(-f) = -(1 - s(f)); d/df -softplus(f) = -s(f); each divided by the batch size
    s = 1 / (1 + math.exp(10.0))
    assert g_ns.tolist() == pytest.approx([-(1 - s) / 4] * 4)
    assert g_mm.tolist() == pytest.approx([-s / 4] * 4)
    assert g_ns.abs().min() > 1e4 * g_mm.abs().max()  # both push f up; only one noticeably
    # where the generator already fools D the roles swap, but both still point the same way
    f = torch.full((4,), 10.0, dtype=torch.float64, requires_grad=True)
    (g_ns,) = torch.autograd.grad(NonSaturating().generator_loss(f), f)
    (g_mm,) = torch.autograd.grad(Minimax().generator_loss(f), f)
    assert (g_ns < 0).all() and (g_mm < 0).all() and g_mm.abs().min() > g_ns.abs().max()


def test_discriminator_losses_push_logits_the_right_way():
    for cls in ALL:
        r = torch.full((3,), 0.5, requires_grad=True)
        f = torch.full((3,), 0.5, requires_grad=True)
        cls().discriminator_loss(r, f).backward()
        assert (r.grad < 0).all() and (f.grad > 0).all(), cls.__name__  # raise r, lower f
        f = torch.full((3,), 0.5, requires_grad=True)
        cls().generator_loss(f).backward()
        assert (f.grad < 0).all(), cls.__name__  # G raises f


@pytest.mark.parametrize("cls", ALL)
def test_logit_zero_separates_says_where_the_discriminator_is_undecided(cls):
    """A sample D scores t as real and as fake costs L(t) = discriminator_loss(t, t). Logit 0
    separates real from fake when L is stationary at 0 and only there: L'(0) = 0, L'(-2) < 0
    < L'(2). Least squares is stationary at 0.5; WGAN everywhere (L = 0)."""

    def slope(value: float) -> float:
        logit = torch.full((4,), value, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(cls().discriminator_loss(logit, logit), logit)
        return grad.sum().item()

    separates = slope(0.0) == 0 and slope(-2.0) < 0 < slope(2.0)
    assert cls.logit_zero_separates == separates
    assert separates == (cls not in (LeastSquares, WassersteinGP))


# ------------------------------------------------------------------------------- penalties


@pytest.mark.parametrize("shape", [(5,), (1, 3, 3)])
def test_gradient_penalty_of_a_linear_discriminator_is_exact(shape):
    torch.manual_seed(0)
    d = math.prod(shape)
    D = Linear(torch.randn(d, dtype=torch.float64))
    real = torch.randn(16, *shape, dtype=torch.float64)
    fake = torch.randn(16, *shape, dtype=torch.float64)
    norm = D.w.detach().norm().item()
    expected = 10.0 * (norm - 1.0) ** 2
    assert WassersteinGP().penalty(D, real, fake, d_step=0).item() == pytest.approx(
        expected, rel=1e-12
    )
    assert gradient_penalty(D, real, fake, weight=3.0).item() == pytest.approx(0.3 * expected)


@pytest.mark.parametrize("shape", [(5,), (1, 3, 3)])
def test_r1_of_a_linear_discriminator_is_exact(shape):
    torch.manual_seed(0)
    D = Linear(torch.randn(math.prod(shape), dtype=torch.float64))
    real = torch.randn(16, *shape, dtype=torch.float64)
    sq = D.w.detach().square().sum().item()
    assert NonSaturating(r1_weight=2.0).penalty(D, real, real, d_step=0).item() == pytest.approx(sq)
    assert Hinge(r1_weight=0.2).penalty(D, real, real, d_step=0).item() == pytest.approx(0.1 * sq)
    both = WassersteinGP(r1_weight=2.0).penalty(D, real, torch.zeros_like(real), d_step=0)
    norm = math.sqrt(sq)
    assert both.item() == pytest.approx(10.0 * (norm - 1.0) ** 2 + sq)
    assert r1_penalty(D, real, weight=4.0).item() == pytest.approx(2.0 * sq)


def test_penalties_are_differentiable_wrt_discriminator_parameters():
    torch.manual_seed(0)
    w = torch.randn(4, dtype=torch.float64)
    real = torch.randn(8, 4, dtype=torch.float64)
    fake = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)  # as if from G

    D = Linear(w)
    WassersteinGP().penalty(D, real, fake, d_step=0).backward()
    norm = w.norm()
    # d/dw 10 (‖w‖ - 1)² = 20 (‖w‖ - 1) w / ‖w‖
    torch.testing.assert_close(D.w.grad, 20.0 * (norm - 1.0) * w / norm)
    assert fake.grad is None  # the penalty trains D only

    D = Linear(w)
    LeastSquares(r1_weight=3.0).penalty(D, real, fake, d_step=0).backward()
    torch.testing.assert_close(D.w.grad, 3.0 * w)  # d/dw (g/2) ‖w‖² = g w, g = r1_weight


def test_penalty_reaches_every_parameter_of_a_real_discriminator():
    torch.manual_seed(0)
    D = DCGANDiscriminator((1, 16, 16), width=4, norm="layer")
    real, fake = torch.randn(4, 1, 16, 16), torch.randn(4, 1, 16, 16)
    WassersteinGP(r1_weight=1.0).penalty(D, real, fake, d_step=0).backward()
    # Weights only: a bias followed by nothing but piecewise-linear layers shifts D(x) without
    # changing ∇_x D(x), so the penalty does not depend on it.
    for name, p in D.named_parameters():
        if name.endswith("weight"):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_r1_reuses_the_real_logits_when_it_can():
    torch.manual_seed(0)
    D = Linear(torch.randn(3))
    real = torch.randn(6, 3).requires_grad_(True)
    logits = D(real)
    calls = D.calls
    value = NonSaturating(r1_weight=1.0).penalty(D, real, real, real_logits=logits, d_step=0)
    assert D.calls == calls  # no second forward pass
    assert value.item() == pytest.approx(0.5 * D.w.detach().square().sum().item())
    # logits of a detached real batch cannot give input gradients: D runs again
    logits = D(real.detach())
    again = NonSaturating(r1_weight=1.0).penalty(
        D, real.detach(), real, real_logits=logits, d_step=0
    )
    assert D.calls == calls + 2 and again.item() == pytest.approx(value.item())


@pytest.mark.parametrize("cls", [NonSaturating, Minimax, Hinge, LeastSquares])
def test_penalty_is_zero_without_a_regulariser(cls):
    def never(x):
        raise AssertionError("the discriminator must not be called")

    real = torch.randn(3, 2)
    out = cls().penalty(never, real, real, d_step=0)
    assert out.ndim == 0 and out.item() == 0.0
    assert WassersteinGP(gp_weight=0.0).penalty(never, real, real, d_step=0).item() == 0.0


def test_gradient_penalty_warns_about_batch_norm():
    D = DCGANDiscriminator((1, 16, 16), width=4, norm="batch")
    x = torch.randn(4, 1, 16, 16)
    with pytest.warns(UserWarning, match="batch norm"):
        WassersteinGP().penalty(D, x, x, d_step=0)


def test_gradient_penalty_needs_matching_batches():
    D = MLPDiscriminator((2,), hidden=4)
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(D, torch.randn(4, 2), torch.randn(5, 2))


# ------------------------------------------------------------------------- classes, errors


def test_registry_and_defaults():
    assert {
        "nonsaturating": NonSaturating,
        "minimax": Minimax,
        "hinge": Hinge,
        "wgan_gp": WassersteinGP,
        "lsgan": LeastSquares,
    } == LOSSES
    for name, cls in LOSSES.items():
        loss = cls()
        assert isinstance(loss, GANLoss) and loss.name == name
        assert loss.r1_weight == 0.0
        assert loss.n_critic == (5 if cls is WassersteinGP else 1)
    assert WassersteinGP().gp_weight == 10.0
    assert repr(WassersteinGP()) == "WassersteinGP(gp_weight=10.0, n_critic=5, r1_weight=0.0)"
    assert Hinge(n_critic=2, r1_weight=1).n_critic == 2
    assert WassersteinGP(n_critic=np.int64(3), gp_weight=np.float32(5)).n_critic == 3


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "5"])
@pytest.mark.parametrize("cls", ALL)
def test_n_critic_must_be_a_positive_int(cls, bad):
    with pytest.raises(ValueError, match=r"n_critic .* must be a positive integer"):
        cls(n_critic=bad)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "1", None])
def test_weights_must_be_nonnegative_numbers(bad):
    with pytest.raises(ValueError, match="r1_weight must be"):
        NonSaturating(r1_weight=bad)
    with pytest.raises(ValueError, match="gp_weight must be"):
        WassersteinGP(gp_weight=bad)


def test_entropy_weight_is_constant_or_annealed_linearly_to_zero():
    assert NonSaturating(entropy_weight=0.5).entropy_weight_at(10_000) == 0.5
    loss = Hinge(entropy_weight=2.0, entropy_anneal_steps=100)
    assert [loss.entropy_weight_at(t) for t in (0, 25, 100, 500)] == [2.0, 1.5, 0.0, 0.0]
    # still on one step before the end, exactly 0 at the end and at every step after it
    assert loss.entropy_weight_at(99) == pytest.approx(0.02)
    for steps in (1, 3, 7, 100):
        annealed = NonSaturating(entropy_weight=0.3, entropy_anneal_steps=steps)
        assert annealed.entropy_weight_at(steps - 1) > 0
        after = [annealed.entropy_weight_at(t) for t in (steps, steps + 1, 2 * steps, 10**6)]
        assert after == [0.0, 0.0, 0.0, 0.0]
    assert "entropy_anneal_steps=100" in repr(loss)
    assert WassersteinGP(entropy_weight=1.0, entropy_anneal_steps=4).entropy_weight_at(1) == 0.75
    with pytest.raises(ValueError, match="entropy_anneal_steps must be a positive integer"):
        NonSaturating(entropy_anneal_steps=0)
    with pytest.raises(ValueError, match="g_step must be an integer >= 0"):
        loss.entropy_weight_at(-1)


# ------------------------------------------------------------------------------- lazy R1


@pytest.mark.parametrize("every", [1, 2, 4])
@pytest.mark.parametrize("first", [0, 3])
def test_lazy_r1_averages_to_the_dense_penalty_in_value_and_gradient(every, first):
    """Over any ``every`` consecutive discriminator steps, the lazy penalty (applied once,
    times ``every``) has the dense penalty's mean value and mean gradient w.r.t. D."""
    torch.manual_seed(0)
    D = MLPDiscriminator((3,), hidden=8).double()  # nonlinear: ∇_x D depends on x
    real = torch.randn(16, 3, dtype=torch.float64)
    dense = NonSaturating(r1_weight=2.0).penalty(D, real, real, d_step=0)
    (dense_grad,) = torch.autograd.grad(dense, D.net[0].weight)
    lazy_loss = NonSaturating(r1_weight=2.0, r1_every=every)
    steps = [lazy_loss.penalty(D, real, real, d_step=d) for d in range(first, first + every)]
    assert sum(value.item() != 0 for value in steps) == 1  # once per ``every`` steps
    mean = torch.stack(steps).mean()
    (mean_grad,) = torch.autograd.grad(mean, D.net[0].weight)
    assert dense.item() > 0
    torch.testing.assert_close(mean, dense, rtol=1e-12, atol=0)
    torch.testing.assert_close(mean_grad, dense_grad, rtol=1e-12, atol=0)


def test_lazy_r1_applies_on_the_multiples_of_r1_every_and_leaves_wgan_gp_dense():
    D = Linear(torch.randn(4, dtype=torch.float64))
    real, fake = torch.randn(8, 4, dtype=torch.float64), torch.randn(8, 4, dtype=torch.float64)
    sq = D.w.detach().square().sum().item()
    lazy = Hinge(r1_weight=2.0, r1_every=3)
    values = [lazy.penalty(D, real, real, d_step=d).item() for d in range(7)]
    assert values == pytest.approx([3 * sq, 0, 0, 3 * sq, 0, 0, 3 * sq])
    gp = 10.0 * (math.sqrt(sq) - 1.0) ** 2  # the gradient penalty on every step
    both = WassersteinGP(r1_weight=2.0, r1_every=2)
    assert both.penalty(D, real, fake, d_step=4).item() == pytest.approx(gp + 2 * sq)
    assert both.penalty(D, real, fake, d_step=5).item() == pytest.approx(gp)
    assert "r1_every=2" in repr(both) and "r1_every" not in repr(Hinge())


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "2", None])
@pytest.mark.parametrize("cls", ALL)
def test_r1_every_must_be_a_positive_int(cls, bad):
    with pytest.raises(ValueError, match=r"r1_every .* must be a positive integer"):
        cls(r1_every=bad)


@pytest.mark.parametrize("bad", [-1, 1.0, None])
def test_the_discriminator_step_must_be_a_count(bad):
    real = torch.randn(3, 2)
    with pytest.raises(ValueError, match="d_step must be an integer >= 0"):
        NonSaturating(r1_weight=1.0).penalty(Linear(torch.randn(2)), real, real, d_step=bad)


def test_the_module_counts_discriminator_steps_across_generator_steps(train_config):
    cfg = train_config(*SMALL_RING, "loss=wgan_gp", "loss.n_critic=3", "loss.r1_every=4")
    datamodule, module = build(cfg)
    assert module.loss.r1_every == 4  # from conf/shared/loss.yaml
    seen, penalty = [], module.loss.penalty

    def spy(*args, d_step, **kwargs):
        seen.append(d_step)
        return penalty(*args, d_step=d_step, **kwargs)

    module.loss.penalty = spy
    _fit(module, datamodule, max_epochs=1, limit_train_batches=3, limit_val_batches=0)
    assert seen == list(range(9))  # g_step · n_critic + i
