"""Differentiable augmentation: each policy's transform, its gradient, its randomness, ADA's
controller, and GANModule augmenting everything its discriminator sees."""

from __future__ import annotations

from pathlib import Path

import lightning
import pytest
import torch

from gan_je.augment import (
    FILL,
    POLICIES,
    AdaptiveProbability,
    Augmentation,
    augment,
    color,
    cutout,
    translation,
)
from gan_je.errors import ConfigError
from gan_je.models.packing import pack_samples
from gan_je.module import GANModule
from gan_je.train import build, train
from tests.test_module import SMALL_RING, _fit


def images(b: int = 6, c: int = 3, h: int = 8, w: int = 8, seed: int = 0) -> torch.Tensor:
    """Distinct values in (-1, 1), none equal to FILL: every pixel identifies itself."""
    x = torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return 0.98 * (2 * x - 1) + 0.01


# ----------------------------------------------------------------------------- the policies


@pytest.mark.parametrize("name", list(POLICIES))
def test_each_policy_is_differentiable_and_its_gradient_is_exact(name):
    """gradcheck: the analytical gradient w.r.t. the batch equals finite differences, for
    one draw of the transform (the same random state on every call)."""
    x = images(b=2, c=3, h=6, w=6).requires_grad_(True)

    def transformed(x: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(3)
        return POLICIES[name](x, 0.7)

    assert torch.autograd.gradcheck(transformed, (x,))
    transformed(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the gradient reaches the input


def test_translation_shifts_each_sample_within_an_eighth_and_fills_with_zero():
    x = images(b=400, c=2, h=16, w=8)  # shifts up to 2 rows and 1 column
    torch.manual_seed(0)
    out = translation(x)
    shifts = []
    for sample, result in zip(x, out, strict=True):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-1, 2):
                expected = torch.full_like(sample, FILL)
                rows, cols = slice(max(dy, 0), 16 + min(dy, 0)), slice(max(dx, 0), 8 + min(dx, 0))
                src = slice(max(-dy, 0), 16 + min(-dy, 0)), slice(max(-dx, 0), 8 + min(-dx, 0))
                expected[:, rows, cols] = sample[:, src[0], src[1]]
                if torch.equal(result, expected):
                    matches.append((dy, dx))
        assert len(matches) == 1
        shifts += matches
    counts = torch.tensor([shifts.count((dy, dx)) for dy in range(-2, 3) for dx in range(-1, 2)])
    assert counts.min() > 0  # every shift of the range occurs, roughly uniformly (400 / 15)
    assert counts.max() < 3 * 400 / 15


def test_cutout_zeroes_a_half_size_rectangle_that_may_cross_the_border():
    x = images(b=300, c=2, h=8, w=12)  # a 4 x 6 rectangle
    torch.manual_seed(0)
    out = cutout(x)
    cut = out != x
    assert torch.equal(cut[:, 0], cut[:, 1])  # the same pixels in every channel
    assert (out[cut] == FILL).all()
    sizes = set()
    for mask in cut[:, 0]:
        rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        assert mask[top:bottom, left:right].all()  # a rectangle
        assert mask.sum() == (bottom - top) * (right - left)
        assert bottom - top <= 4 and right - left <= 6
        if top > 0 and bottom < 8 and left > 0 and right < 12:
            assert (bottom - top, right - left) == (4, 6)  # whole when inside
        sizes.add((int(bottom - top), int(right - left)))
    assert (4, 6) in sizes and len(sizes) > 1  # some cross the border


@pytest.mark.parametrize(
    ("size", "margin", "places"), [(8, 2, 9), (7, 2, 8), (12, 3, 13), (9, 3, 9)]
)
def test_cutout_keeps_the_same_margin_inside_at_every_border(size, margin, places):
    """DiffAugment's placement: at least half the square (rounded up) stays inside, at the
    top as at the bottom, and every place allowed occurs. Sides 4, 4, 6 and 5 (half the
    size, rounded half up) give margins 2, 2, 3, 3, and 9, 8, 13, 9 places along an axis:
    those whose first line inside lies within the square's side less the margin of the
    border."""
    x = images(b=2000, c=1, h=size, w=size)
    torch.manual_seed(0)
    cut = (cutout(x) != x)[:, 0]
    rows, cols = cut.any(dim=2), cut.any(dim=1)  # (B, size): the rows, the columns cut
    for lines in (rows, cols):
        first = lines.float().argmax(1)
        last = size - 1 - lines.flip(1).float().argmax(1)
        height = last - first + 1
        assert height.min() == margin and height[first == 0].min() == margin
        assert height[last == size - 1].min() == margin
        assert len(set(zip(first.tolist(), last.tolist(), strict=True))) == places


def test_color_is_the_diffaugment_brightness_saturation_and_contrast():
    """Three channels, each sample's factors recovered from the output. With g the grey image
    (the mean over channels) and m the mean of a whole image, brightness b, saturation s and
    contrast c give out - g_out = c·s·(x - g_x), g_out - m_out = c·(g_x - m_x) and
    m_out = m_x + b: each must hold exactly, and each factor span DiffAugment's range,
    b ~ U[-0.5, 0.5], s ~ U[0, 2], c ~ U[0.5, 1.5]."""
    x = images(b=300, c=3)
    torch.manual_seed(0)
    out = color(x)

    def fitted_slope(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per sample, the k of target = k·source, checked to fit exactly."""
        source, target = source.flatten(1), target.flatten(1)
        k = (source * target).sum(1) / source.square().sum(1)
        torch.testing.assert_close(target, k[:, None] * source)
        return k

    grey_x, grey_out = x.mean(1, keepdim=True), out.mean(1, keepdim=True)
    mean_x, mean_out = x.mean((1, 2, 3), keepdim=True), out.mean((1, 2, 3), keepdim=True)
    contrast = fitted_slope(grey_x - mean_x, grey_out - mean_out)
    saturation = fitted_slope(x - grey_x, out - grey_out) / contrast
    brightness = (mean_out - mean_x).flatten()
    for factor, low, high in ((brightness, -0.5, 0.5), (saturation, 0, 2), (contrast, 0.5, 1.5)):
        assert low <= factor.min() < low + 0.05 and high - 0.05 < factor.max() <= high
        assert factor.mean() == pytest.approx((low + high) / 2, abs=0.1)


def test_color_on_one_channel_is_contrast_and_brightness_and_keeps_grey_pixels_grey():
    """One channel: saturation does nothing, so each sample becomes c·x + d with the
    contrast c in [0.5, 1.5]; three channels: a grey pixel stays grey (saturation scales
    each pixel's distance from its own grey), and the mean moves by the brightness only."""
    x = images(b=200, c=1)
    torch.manual_seed(0)
    out = color(x)
    flat_x, flat_out = x.flatten(1), out.flatten(1)
    for xs, ys in zip(flat_x, flat_out, strict=True):
        slope = ((xs - xs.mean()) * (ys - ys.mean())).sum() / (xs - xs.mean()).square().sum()
        torch.testing.assert_close(ys, ys.mean() + slope * (xs - xs.mean()))
        assert 0.5 <= slope <= 1.5
    shift = (flat_out.mean(1) - flat_x.mean(1)).abs()  # contrast keeps the mean
    assert shift.max() <= 0.5 and shift.max() > 0.45  # brightness in [-0.5, 0.5]
    grey = images(b=50, c=1).expand(50, 3, 8, 8)
    out = color(grey)
    torch.testing.assert_close(out[:, 0], out[:, 1])
    torch.testing.assert_close(out[:, 0], out[:, 2])


@pytest.mark.parametrize("policy", [*([name] for name in POLICIES), list(POLICIES)])
def test_the_same_random_state_gives_the_same_transform(policy):
    x = images(b=16)
    torch.manual_seed(5)
    first = augment(x, policy, 0.5)
    torch.manual_seed(5)
    assert torch.equal(augment(x, policy, 0.5), first)
    assert not torch.equal(augment(x, policy, 0.5), first)  # the stream moved on


@pytest.mark.parametrize("policy", [*([name] for name in POLICIES), list(POLICIES)])
def test_probability_zero_is_the_identity(policy):
    x = images(b=16)
    state = torch.get_rng_state()
    assert torch.equal(augment(x, policy, 0.0), x)
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn


def test_probability_one_transforms_every_sample_and_p_the_share_p():
    x = images(b=3000, c=3, h=8, w=8)
    for policy in (cutout, color):  # each transform changes a sample
        changed = (policy(x, 1.0) != x).flatten(1).any(1)
        assert changed.all()
        share = (policy(x, 0.3) != x).flatten(1).any(1).float().mean()
        assert share == pytest.approx(0.3, abs=0.04)
    # translation leaves a sample as it was only by the zero shift, 1 draw in 9 at 8 pixels
    unchanged = (translation(x, 1.0) == x).flatten(1).all(1).float().mean()
    assert unchanged == pytest.approx(1 / 9, abs=0.025)
    unchanged = (translation(x, 0.3) == x).flatten(1).all(1).float().mean()
    assert unchanged == pytest.approx(0.7 + 0.3 / 9, abs=0.04)


def test_real_and_fake_batches_get_the_same_distribution_of_transforms():
    """Two different batches through the same policy and p: the transforms' statistics
    (which samples were cut, the cut area, the mean brightness shift) agree."""
    real, fake = images(b=4000, c=1, seed=1), images(b=4000, c=1, seed=2)
    torch.manual_seed(0)
    cut_real, cut_fake = cutout(real, 0.5) != real, cutout(fake, 0.5) != fake
    for stat in (lambda m: m.flatten(1).any(1).float().mean(), lambda m: m.float().mean()):
        assert stat(cut_real) == pytest.approx(stat(cut_fake).item(), abs=0.03)
    bright_real = (color(real) - real).mean(dim=(1, 2, 3))
    bright_fake = (color(fake) - fake).mean(dim=(1, 2, 3))
    assert bright_real.mean() == pytest.approx(bright_fake.mean().item(), abs=0.02)
    assert bright_real.std() == pytest.approx(bright_fake.std().item(), abs=0.02)


def test_every_policy_keeps_the_batch_shape_dtype_and_device():
    for dtype in (torch.float32, torch.float64):
        x = images(b=3, c=2, h=7, w=5).to(dtype)
        out = augment(x, list(POLICIES), 1.0)
        assert out.shape == x.shape and out.dtype == dtype and out.device == x.device


@pytest.mark.parametrize(
    ("x", "p", "message"),
    [
        (torch.zeros(4, 8, 8), 1.0, r"float image batch \(B, C, H, W\), got \(4, 8, 8\)"),
        (torch.zeros(2, 1, 4, 4, dtype=torch.int64), 1.0, "float image batch"),
        ([[0.0]], 1.0, "got list"),
        (torch.zeros(2, 1, 4, 4), 1.5, r"p must be in \[0, 1\], got 1.5"),
        (torch.zeros(2, 1, 4, 4), float("nan"), r"p must be in \[0, 1\]"),
        (torch.zeros(2, 1, 4, 4), True, r"p must be in \[0, 1\]"),
    ],
)
@pytest.mark.parametrize("name", list(POLICIES))
def test_policies_refuse_bad_input(name, x, p, message):
    with pytest.raises(ValueError, match=message):
        POLICIES[name](x, p)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ([], "non-empty list"),
        ("color", "non-empty list"),
        (["color", "blur"], "unknown augmentation policy 'blur'"),
        ([["color"]], r"unknown augmentation policy \['color'\]"),
    ],
)
def test_augment_refuses_unknown_policies(policy, message):
    with pytest.raises(ValueError, match=message):
        augment(torch.zeros(2, 1, 4, 4), policy)


# --------------------------------------------------------------------------- ADA's controller


def _logits(positive: int, total: int = 8) -> torch.Tensor:
    return torch.tensor([1.0] * positive + [-1.0] * (total - positive))


def test_the_probability_rises_while_the_discriminator_overfits_and_is_clamped_at_one():
    ada = AdaptiveProbability(p=0.0, target=0.6, interval=3, speed_images=1000)
    ps = []
    for _ in range(3 * 60):
        ada.update(_logits(8), 64)  # r_t = 1 > 0.6
        ps.append(ada.p)
    assert ps[:6] == pytest.approx([0, 0, 0.192, 0.192, 0.192, 0.384])  # 3 · 64 / 1000
    assert max(ps) == 1.0 and ps[-1] == 1.0


def test_the_probability_falls_otherwise_and_is_clamped_at_zero():
    ada = AdaptiveProbability(p=0.5, target=0.6, interval=2, speed_images=1000)
    ada.update(_logits(4), 100)  # signs summing to 0
    ada.update(_logits(7), 100)  # and to 6: r_t = 6 / 16 < 0.6
    assert ada.p == pytest.approx(0.3)  # 0.5 - 200 / 1000
    assert ada.state_dict() | {"p": 0} == {"p": 0, "signs": 0, "logits": 0, "images": 0, "steps": 0}
    for _ in range(20):
        ada.update(_logits(2), 100)
    assert ada.p == 0.0


def test_the_probability_stays_at_the_target_and_counts_images_not_packs():
    ada = AdaptiveProbability(p=0.5, target=0.5, interval=1, speed_images=1000)
    ada.update(_logits(6), 16)  # r_t = 0.5 = target
    assert ada.p == 0.5
    ada.update(_logits(4, total=4), 16)  # 4 packs of 4 images: moves by 16 / 1000
    assert ada.p == pytest.approx(0.516)


def test_the_controller_state_resumes_mid_interval():
    steps = [_logits(k) for k in (8, 2, 7, 8, 1, 8, 8)]
    whole = AdaptiveProbability(p=0.2, interval=3, speed_images=500)
    for logits in steps:
        whole.update(logits, 32)
    first = AdaptiveProbability(p=0.2, interval=3, speed_images=500)
    for logits in steps[:4]:
        first.update(logits, 32)
    resumed = AdaptiveProbability(p=0.9, interval=3, speed_images=500)
    resumed.load_state_dict(first.state_dict())
    for logits in steps[4:]:
        resumed.update(logits, 32)
    assert resumed.state_dict() == whole.state_dict()
    assert all(type(v) in (int, float) for v in whole.state_dict().values())  # plain data


def test_the_controller_synchronises_once_per_interval_over_every_process():
    """Between moves the sums stay on D's device: logits on the meta device, which hold no
    values, are recorded without error. At the move ``reduce`` is called once with the
    (signs, logits) sums, and p moves by what it returns: here another process's sums."""
    ada = AdaptiveProbability(p=0.5, target=0.6, interval=3, speed_images=1000)
    ada.update(torch.ones(8, device="meta"), 64)
    ada.update(torch.ones(8, device="meta"), 64)
    assert ada.p == 0.5
    calls = []

    def with_another_process(sums: torch.Tensor) -> torch.Tensor:
        calls.append(sums.tolist())
        return sums + torch.tensor([-24, 24])  # its 3 x 8 logits all negative

    ada = AdaptiveProbability(p=0.5, target=0.6, interval=3, speed_images=1000)
    ada.reduce = with_another_process
    for _ in range(3):
        ada.update(_logits(8), 64)  # alone r_t = 1 > 0.6 would raise p
    assert calls == [[24, 24]]  # once, at the move
    assert ada.p == pytest.approx(0.5 - 3 * 64 / 1000)  # both: r_t = 0 / 48 < 0.6


def test_the_saved_partial_sums_are_over_every_process_and_restored_on_one():
    """Mid-interval, a checkpoint holds the signs and logits of every process (``reduce``);
    one process takes them back, the others start from 0, so the next reduction counts
    each once."""
    ada = AdaptiveProbability(p=0.2, interval=3, speed_images=500)
    ada.update(_logits(7), 32)  # signs 6, logits 8
    ada.reduce = lambda sums: 2 * sums  # two processes that saw the same
    state = ada.state_dict()
    assert state == {"p": 0.2, "signs": 12, "logits": 16, "images": 32, "steps": 1}
    first, other = AdaptiveProbability(interval=3), AdaptiveProbability(interval=3)
    first.load_state_dict(state)
    other.load_state_dict(state, sums=False)
    assert first.state_dict() == state
    assert other.state_dict() == state | {"signs": 0, "logits": 0}


def test_the_signs_are_counted_exactly_in_half_precision():
    """5,001 is not a half-precision number: summed in float16 the count would round."""
    ada = AdaptiveProbability(interval=2)
    ada.update(torch.ones(5001, dtype=torch.float16), 64)
    assert ada.state_dict()["signs"] == ada.state_dict()["logits"] == 5001


def test_a_refused_update_or_state_changes_nothing():
    ada = AdaptiveProbability(p=0.3, interval=3)
    ada.update(_logits(7), 32)
    before = ada.state_dict()
    with pytest.raises(ValueError, match="n_images must be a positive integer"):
        ada.update(_logits(8), 0)
    assert ada.state_dict() == before
    for broken, message in (
        ({k: v for k, v in before.items() if k != "steps"}, "state lacks steps: it must be what"),
        (before | {"signs": 9}, "signs must be an integer between -logits and logits"),
        (before | {"signs": 1.5}, "signs must be an integer"),
    ):
        with pytest.raises(ValueError, match=message):
            AdaptiveProbability().load_state_dict(broken)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"p": 1.1}, r"starting probability must be in \[0, 1\]"),
        ({"target": 1.0}, r"target must be in \(0, 1\)"),
        ({"interval": 0}, "interval .* must be a positive integer"),
        ({"speed_images": 0}, "speed_images must be a finite number > 0"),
    ],
)
def test_the_controller_checks_its_settings(arguments, message):
    with pytest.raises(ValueError, match=message):
        AdaptiveProbability(**arguments)


def test_model_augment_settings_are_checked():
    assert Augmentation.from_setting(None) is None
    assert Augmentation.from_setting({}).p == 1.0  # DiffAugment
    adaptive = Augmentation.from_setting({"adaptive": True})
    assert adaptive.p == 0.0 and adaptive.controller.speed_images == 20_000
    bad = [
        ({"policy": ["blur"]}, "model.augment: unknown augmentation policy 'blur'"),
        ({"probabilty": 0.5}, "model.augment has no setting probabilty"),
        ({"probability": 2}, r"model.augment: probability must be in \[0, 1\]"),
        ({"adaptive": "yes"}, "model.augment: adaptive must be true or false"),
        (["color"], "model.augment must be null or a mapping"),
        ({"target": 0.7}, "model.augment: target set the adaptive .* but adaptive is false"),
        (
            {"probability": 0.5, "interval": 2, "speed_images": 10},
            "model.augment: interval, speed_images set the adaptive probability's controller",
        ),
    ]
    for setting, message in bad:
        with pytest.raises(ConfigError, match=message):
            Augmentation.from_setting(setting)


# --------------------------------------------------------------------------- in GANModule

DIGITS = ["data=digits", "model=dcgan", "model.generator.width=8"]
DIGITS += ["model.discriminator.width=8", "model.discriminator.norm=layer"]
DIGITS += ["features=random", "estimator.features.dim=4", "data.batch_size=16"]


class Recorder:
    """Stands in for ``module.augmentation``: records each batch it augments, the
    probability used and whether the result carries a gradient (``calls``), and the result
    (``outputs``)."""

    def __init__(self, augmentation: Augmentation) -> None:
        self.augmentation, self.calls, self.outputs = augmentation, [], []

    def __getattr__(self, name: str):
        return getattr(self.augmentation, name)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.augmentation(x)
        self.calls.append((x.clone(), self.augmentation.p, out.requires_grad))
        self.outputs.append(out.detach().clone())
        return out


def test_the_module_augments_real_and_fake_alike_in_every_step(train_config):
    augment = "model.augment={policy:[color,translation,cutout],probability:0.5}"
    datamodule, module = build(train_config(*DIGITS, "loss=hinge", "loss.n_critic=2", augment))
    module.augmentation = recorder = Recorder(module.augmentation)
    batches = []

    class RealBatches(lightning.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            batches.append(batch[0].clone())

    limits = {"limit_train_batches": 2, "limit_val_batches": 0}
    trainer = _fit(module, datamodule, [RealBatches()], max_epochs=1, **limits)
    # per generator step: (real, fake) in each of the 2 discriminator steps, then fake
    assert len(recorder.calls) == 2 * 5
    for g in range(2):
        calls = recorder.calls[5 * g : 5 * g + 5]
        for i in (0, 2):
            assert torch.equal(calls[i][0], batches[g])  # the real batch, each D step afresh
            assert not torch.equal(calls[i + 1][0], batches[g])
        assert [requires_grad for *_, requires_grad in calls] == [False] * 4 + [True]
        assert {p for _, p, _ in calls} == {0.5}  # one probability for every batch
    assert trainer.callback_metrics["train/augment_p"] == 0.5


def test_the_discriminator_judges_the_augmented_packed_batches(train_config):
    """Every input of D, in its steps and in G's, is pack_samples of what the augmentation
    returned for that batch, never of the batch itself."""
    augment = "model.augment={policy:[color,translation,cutout],probability:1.0}"
    cfg = train_config(*DIGITS, "loss=hinge", "loss.n_critic=2", "model.pack=2", augment)
    datamodule, module = build(cfg)
    module.augmentation = recorder = Recorder(module.augmentation)
    inputs = []
    module.discriminator.register_forward_pre_hook(
        lambda _, args: inputs.append(args[0].detach().clone())
    )
    _fit(module, datamodule, max_epochs=1, limit_train_batches=2, limit_val_batches=0)
    # per generator step: real and fake in each of the 2 discriminator steps, then fake
    assert len(inputs) == len(recorder.calls) == len(recorder.outputs) == 2 * 5
    for seen, (batch, *_), augmented in zip(inputs, recorder.calls, recorder.outputs, strict=True):
        assert torch.equal(seen, pack_samples(augmented, 2))
        assert not torch.equal(seen, pack_samples(batch, 2))


@pytest.mark.parametrize("loss", ["lsgan", "wgan_gp"])
def test_adaptive_augmentation_is_refused_for_losses_without_a_boundary_at_zero(train_config, loss):
    adaptive = "model.augment={adaptive:true}"
    message = (
        rf"model.augment.adaptive=true .* loss={loss} does not separate real from fake at "
        r"logit 0: set model.augment.adaptive=false with a fixed model.augment.probability"
    )
    with pytest.raises(ConfigError, match=message):
        build(train_config(*DIGITS, f"loss={loss}", adaptive))
    _, module = build(train_config(*DIGITS, f"loss={loss}", "model.augment={probability:0.5}"))
    assert module.augmentation.p == 0.5  # a fixed probability suits every loss


@pytest.mark.parametrize(
    ("overrides", "augment"),
    [
        (
            ["model.pack=2", "loss.r1_weight=1.0", "loss.r1_every=2"],
            "model.augment={adaptive:true,probability:0.5,interval:1,speed_images:100}",
        ),
        (
            ["loss=wgan_gp", "loss.n_critic=2", "loss.r1_weight=0.5"],
            "model.augment={probability:0.5}",
        ),
    ],
    ids=["pack-r1-ada", "wgan_gp"],
)
def test_a_short_run_with_augmentation_packing_and_penalties(train_config, overrides, augment):
    """The penalties take gradients w.r.t. the augmented (packed) batches; ADA moves p."""
    datamodule, module = build(train_config(*DIGITS, augment, *overrides))
    trainer = _fit(module, datamodule, max_epochs=1, limit_train_batches=3, limit_val_batches=0)
    assert module.g_step == 3
    assert (module.augmentation.p != 0.5) == module.augmentation.adaptive
    assert trainer.callback_metrics["train/augment_p"] == module.augmentation.p
    for name in ("train/d_loss", "train/g_loss"):
        assert torch.isfinite(trainer.callback_metrics[name])


def test_augmentation_is_refused_for_data_that_are_not_images(train_config, monkeypatch):
    """Before any network is built."""

    def no_networks(*_):
        raise AssertionError("the networks were built before model.augment was checked")

    monkeypatch.setattr(GANModule, "_networks", no_networks)
    cfg = train_config(*SMALL_RING, "model.augment={policy:[translation]}")
    with pytest.raises(ConfigError, match=r"model.augment transforms images.*kind .points."):
        build(cfg)


def _state(module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_a_resumed_run_with_adaptive_augmentation_equals_the_uninterrupted_one(
    train_config, tmp_path
):
    """2 epochs of 3 steps in one go, or 1, a checkpoint and 1 more: the same weights bit
    for bit, and the same controller state (p moved by every step)."""
    augment = "model.augment={adaptive:true,probability:0.5,interval:2,speed_images:200}"
    cfg = train_config(*DIGITS, augment, "loss.r1_weight=1.0", "loss.r1_every=2")
    limits = {"limit_train_batches": 3, "limit_val_batches": 0}

    def fresh():
        torch.manual_seed(cfg.seed)  # as gan_je.train seeds every stream before building
        return build(cfg)

    datamodule, full = fresh()
    _fit(full, datamodule, max_epochs=2, **limits)
    datamodule, cut = fresh()
    trainer = _fit(cut, datamodule, max_epochs=1, **limits)
    trainer.save_checkpoint(tmp_path / "cut.ckpt")
    saved = torch.load(tmp_path / "cut.ckpt", weights_only=True)["augment"]
    assert saved == cut.augmentation.state_dict() and saved["steps"] == 1  # mid-interval
    datamodule, resumed = fresh()
    _fit(resumed, datamodule, max_epochs=2, ckpt_path=tmp_path / "cut.ckpt", **limits)
    assert (full.g_step, resumed.g_step) == (6, 6)
    assert resumed.augmentation.state_dict() == full.augmentation.state_dict()
    loaded = GANModule.load_from_checkpoint(tmp_path / "cut.ckpt")  # no trainer to reduce
    assert loaded.augmentation.state_dict() == saved
    assert full.augmentation.p != 0.5
    expected, got = _state(full), _state(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


class DumpAugmentState(lightning.Callback):
    """Each rank saves its augmentation state and discriminator weights at the end."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_end(self, trainer, pl_module) -> None:
        weights = {k: v for k, v in pl_module.state_dict().items() if k.startswith("disc")}
        state = {"augment": pl_module.augmentation.state_dict(), "weights": weights}
        torch.save(state, self.folder / f"rank{trainer.global_rank}.pt")


@pytest.mark.slow
def test_adaptive_augmentation_keeps_one_probability_on_every_process(train_config, tmp_path):
    """DDP (two gloo processes): r_t is measured over both ranks' real batches, so p moves
    alike on both and their discriminators stay identical."""
    augment = "model.augment={adaptive:true,probability:0.5,interval:2,speed_images:100}"
    cfg = train_config(
        *DIGITS,
        augment,
        "trainer=ddp_sim",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=5",
        "trainer.limit_val_batches=0",
        "logger=none",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        f"+callbacks.dump={{_target_:{__name__}.DumpAugmentState,folder:'{tmp_path}'}}",
    )
    assert train(cfg)["g_steps"] == 5
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert rank0["augment"] == rank1["augment"] and rank0["augment"]["p"] != 0.5
    # 2 intervals of 2 steps, each of 2 ranks x 16 images: p moved by 0.64 each time
    assert rank0["augment"]["images"] == 32 and rank0["augment"]["steps"] == 1
    for key in rank0["weights"]:
        torch.testing.assert_close(rank0["weights"][key], rank1["weights"][key], rtol=0, atol=0)
