"""Differentiable augmentation of everything the discriminator sees (real and generated alike).

A discriminator trained on few images memorises them; augmenting its inputs, real and fake
with the same transforms, keeps it from doing so without teaching the generator the
transforms, provided each is differentiable so that the generator's gradient passes through
(DiffAugment: Zhao et al. 2020, "Differentiable augmentation for data-efficient GAN
training"). Each policy is applied to each sample independently with probability ``p``, as
in ADA (Karras et al. 2020, "Training generative adversarial networks with limited data");
``p = 1`` is DiffAugment. :class:`AdaptiveProbability` is ADA's controller of ``p``.

Policies, on image batches ``(B, C, H, W)`` with samples in [-1, 1]:

- ``translation``: shift by whole pixels, up to 1/8 of the height and of the width in each
  direction (uniform integers, drawn per axis); the pixels shifted in take the value 0.
- ``cutout``: a square of half the height and width, its centre uniform over the image (it
  may reach over the border), set to 0.
- ``color``: DiffAugment's brightness (add b ~ U[-0.5, 0.5]), saturation (scale each pixel's
  distance from its channel mean by s ~ U[0, 2]; nothing for 1 channel) and contrast (scale
  the distance from the sample's mean by c ~ U[0.5, 1.5]), in that order.

"0" is the middle of the data range [-1, 1] (mid-grey), the value DiffAugment's padding and
cutout give to its own [-1, 1] images; not the data's black (-1).

Every function draws from torch's global random stream on the batch's device, which
checkpoints save and restore, so a resumed run repeats the same transforms. Each always
draws the same numbers for a batch of a given size whatever ``p`` (``0 < p``), so one random
state gives one transform.

The penalties see what D is trained on. R1 is taken w.r.t. the augmented, packed real batch
(StyleGAN2-ADA takes it w.r.t. the non-augmented reals), and WGAN-GP interpolates between a
real and a fake batch each augmented independently. Both are defensible: a penalty
regularises D where D is trained and judged, and with augmentation that is on augmented
inputs; the non-augmented reals are, at p = 1, inputs D never sees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from gan_je import checks
from gan_je.checks import is_real, non_negative_int, positive_float, positive_int
from gan_je.errors import ConfigError

#: the value of the pixels translation shifts in and cutout removes (mid-grey in [-1, 1])
FILL = 0.0
#: translation's largest shift, as a fraction of the image's height and width
SHIFT_RATIO = 1 / 8
#: cutout's square, as a fraction of the image's height and width
CUTOUT_RATIO = 1 / 2


def _check(x: Tensor, p: float) -> float:
    if not isinstance(x, Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"augmentation needs a float image batch (B, C, H, W), got {shape}")
    return checks.probability("the augmentation probability p", p)


def _chosen(x: Tensor, p: float) -> Tensor:
    """``(B, 1, 1, 1)`` booleans: which samples a policy transforms (each with probability p)."""
    return (torch.rand(x.shape[0], device=x.device) < p).view(-1, 1, 1, 1)


def _pixels(size: int, ratio: float) -> int:
    """``ratio`` of ``size`` pixels, rounded half up (28 x 1/8 = 3.5 -> 4)."""
    return int(size * ratio + 0.5)


def translation(x: Tensor, p: float = 1.0) -> Tensor:
    """Each sample, with probability ``p``, shifted by (dy, dx) whole pixels, dy and dx
    uniform in {-s, ..., s} with s = ``SHIFT_RATIO`` of the height (of the width for dx),
    the vacated pixels set to ``FILL``: out[i, j] = x[i - dy, j - dx]. Differentiable
    w.r.t. ``x`` (a gather)."""
    p = _check(x, p)
    if p == 0:
        return x
    b, c, h, w = x.shape
    chosen = _chosen(x, p)
    sy, sx = _pixels(h, SHIFT_RATIO), _pixels(w, SHIFT_RATIO)
    dy = torch.randint(-sy, sy + 1, (b, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (b, 1), device=x.device)
    padded = torch.nn.functional.pad(x, (sx, sx, sy, sy), value=FILL)
    rows = torch.arange(h, device=x.device) - dy + sy  # (B, H) rows of the padded image
    cols = torch.arange(w, device=x.device) - dx + sx  # (B, W)
    shifted = padded.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2 * sx))
    shifted = shifted.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))
    return torch.where(chosen, shifted, x)


def cutout(x: Tensor, p: float = 1.0) -> Tensor:
    """Each sample, with probability ``p``, with a ``CUTOUT_RATIO`` x ``CUTOUT_RATIO``
    rectangle of the image (a square for a square image) set to ``FILL``. As DiffAugment's, it
    may reach over the border: its place is uniform among those that keep at least half its
    height and half its width (rounded up) inside, the same margin at every border.
    Differentiable w.r.t. ``x`` (zero gradient inside the rectangle)."""
    p = _check(x, p)
    if p == 0:
        return x
    b, _, h, w = x.shape
    chosen = _chosen(x, p)
    ch, cw = _pixels(h, CUTOUT_RATIO), _pixels(w, CUTOUT_RATIO)
    # at most ch // 2 rows above the image and as many below it (h + 1 - ch % 2 places)
    top = torch.randint(0, h + 1 - ch % 2, (b, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + 1 - cw % 2, (b, 1), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device) - top  # (B, H): inside when 0 <= row < ch
    cols = torch.arange(w, device=x.device) - left
    in_rows = ((rows >= 0) & (rows < ch)).view(b, 1, h, 1)
    in_cols = ((cols >= 0) & (cols < cw)).view(b, 1, 1, w)
    return torch.where(chosen & in_rows & in_cols, torch.full_like(x, FILL), x)


def color(x: Tensor, p: float = 1.0) -> Tensor:
    """Each sample, with probability ``p``, with DiffAugment's colour transforms in turn:
    brightness x + b, b ~ U[-0.5, 0.5]; saturation m + s(x - m), m the mean over channels,
    s ~ U[0, 2]; contrast m' + c(x - m'), m' the sample's mean, c ~ U[0.5, 1.5].
    The result may leave [-1, 1], as DiffAugment's does. Differentiable w.r.t. ``x``."""
    p = _check(x, p)
    if p == 0:
        return x
    chosen = _chosen(x, p)
    draw = lambda: torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)  # noqa: E731
    y = x + (draw() - 0.5)
    mean = y.mean(dim=1, keepdim=True)
    y = mean + (y - mean) * (2 * draw())
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    y = mean + (y - mean) * (draw() + 0.5)
    return torch.where(chosen, y, x)


#: the policies by name, each ``(batch, p) -> augmented batch``
POLICIES: dict[str, Callable[[Tensor, float], Tensor]] = {
    "translation": translation,
    "cutout": cutout,
    "color": color,
}


def check_policy(policy: Sequence[str]) -> tuple[str, ...]:
    """``policy`` as a tuple of known policy names (at least one), else a ``ValueError``."""
    if isinstance(policy, str) or not isinstance(policy, Sequence) or not policy:
        raise ValueError(
            f"an augmentation policy is a non-empty list of {', '.join(POLICIES)}; got {policy!r}"
        )
    unknown = [name for name in policy if not isinstance(name, str) or name not in POLICIES]
    if unknown:
        raise ValueError(
            f"unknown augmentation policy {', '.join(map(repr, unknown))}: choose among "
            f"{', '.join(POLICIES)}"
        )
    return tuple(policy)


def augment(x: Tensor, policy: Sequence[str], p: float = 1.0) -> Tensor:
    """``x`` ``(B, C, H, W)`` through each policy of ``policy`` in turn, each applied per
    sample with probability ``p`` (DiffAugment's order is color, translation, cutout)."""
    for name in check_policy(policy):
        x = POLICIES[name](x, p)
    return x


class AdaptiveProbability:
    """ADA's controller of the augmentation probability p (Karras et al. 2020, section 3).

    The overfitting heuristic r_t = E[sign(D(x))] over the real batches of ``interval``
    discriminator steps (the fraction of real samples D calls real, less the fraction it
    calls fake) grows towards 1 as D memorises the training set. The sum of the signs and
    the count of logits stay on D's device between moves (no synchronisation per step);
    after every ``interval`` steps they are summed over the processes by ``reduce`` (the
    identity in one process) and p moves by sign(r_t - target) · (images seen in them) /
    ``speed_images``, clamped to [0, 1]: augment more while D overfits, less otherwise. It
    reads the sign of a logit, so it suits losses whose decision boundary is at 0
    (non-saturating, minimax, hinge); not least squares (boundary at 0.5) nor WGAN (no
    boundary): see ``GANLoss.logit_zero_separates``.

    ``speed_images``: p can move from 0 to 1 in this many real images. ADA's 500,000 suits
    runs of tens of millions of images; gan_je's default run shows D about 2,450 x 64 =
    157,000 images, in which 500,000 would let p reach 0.31 at most. 20,000 (about 310 steps
    of 64, 13 % of that run, 4.5 epochs of 4,500 images) lets p reach the level the data need
    within the first epochs while each move, 4 x 64 / 20,000 = 0.013, stays small against
    the noise of r_t over 256 samples.
    """

    def __init__(
        self,
        p: float = 0.0,
        target: float = 0.6,
        interval: int = 4,
        speed_images: float = 20_000,
    ) -> None:
        self.p = checks.probability("the starting probability", p)
        if not is_real(target) or not 0 < target < 1:
            raise ValueError(f"target must be in (0, 1), got {target!r}")
        self.target = float(target)
        self.interval = positive_int("interval (discriminator steps)", interval)
        self.speed_images = positive_float("speed_images", speed_images)
        #: sums a tensor over the processes (GANModule sets it; the identity in one process)
        self.reduce: Callable[[Tensor], Tensor] = lambda totals: totals
        self._reset()

    def _reset(self) -> None:
        # signs and logits: (2,) int64 sums this process saw since p last moved, on D's
        # device once a step is recorded; images (over all processes) and steps: ints
        self._sums: Tensor = torch.zeros(2, dtype=torch.int64)
        self._images, self._steps = 0, 0

    def update(self, real_logits: Tensor, n_images: int) -> None:
        """Record one discriminator step: D's logits on this process's (augmented) real
        batch, and ``n_images`` the images behind the logits of every process (more than the
        logits when D judges packs); every ``interval`` steps, move p."""
        if not isinstance(real_logits, Tensor) or real_logits.numel() == 0:
            raise ValueError(f"real_logits must be a non-empty tensor, got {real_logits!r}")
        n_images = positive_int("n_images", n_images)
        logits = real_logits.detach()
        count = logits.new_full((), logits.numel(), dtype=torch.int64)  # on device
        signs = (logits > 0).sum() - (logits < 0).sum()  # counted in int64, exact in fp16 too
        self._sums = self._sums.to(logits.device) + torch.stack([signs, count])
        self._images += n_images
        self._steps += 1
        if self._steps < self.interval:
            return
        signs, logits = self.reduce(self._sums.clone()).tolist()  # the only synchronisation
        overfitting = signs / logits
        direction = (overfitting > self.target) - (overfitting < self.target)
        self.p = min(1.0, max(0.0, self.p + direction * self._images / self.speed_images))
        self._reset()

    def state_dict(self) -> dict[str, float | int]:
        """p and the accumulators since p last moved, as plain numbers (for a checkpoint):
        the signs and logits summed over the processes (``reduce``, which every process
        must call alike, as Lightning does when it saves a checkpoint)."""
        signs, logits = self.reduce(self._sums.clone()).tolist()
        return {
            "p": self.p,
            "signs": signs,
            "logits": logits,
            "images": self._images,
            "steps": self._steps,
        }

    def load_state_dict(self, state: Mapping[str, Any], sums: bool = True) -> None:
        """Put back a :meth:`state_dict`. In a run of several processes only one takes the
        sums of signs and logits (``sums``; the others start from 0), so that their next
        ``reduce`` counts them once."""
        missing = [key for key in ("p", "signs", "logits", "images", "steps") if key not in state]
        if missing:
            raise ValueError(
                f"the saved augmentation state lacks {', '.join(missing)}: it must be what "
                f"AdaptiveProbability.state_dict returned, got the keys {list(state)}"
            )
        self.p = checks.probability("a saved augmentation probability", state["p"])
        logits = non_negative_int("logits", state["logits"]) if sums else 0
        signs = state["signs"] if sums else 0
        if not checks.is_int(signs) or abs(signs) > logits:
            raise ValueError(
                f"the saved sum of signs must be an integer between -logits and logits "
                f"({logits}), got {signs!r}"
            )
        self._sums = torch.tensor([int(signs), logits], dtype=torch.int64)
        self._images = non_negative_int("images", state["images"])
        self._steps = non_negative_int("steps", state["steps"])


class Augmentation:
    """``model.augment``: the policies GANModule applies to the discriminator's inputs, at a
    fixed probability or ADA's adaptive one.

    Args:
        policy: names from :data:`POLICIES`, applied in this order.
        probability: the per-sample probability of each policy: fixed (default 1.0,
            DiffAugment), or where the adaptive one starts (default 0.0).
        adaptive: move the probability with :class:`AdaptiveProbability`.
        target, interval, speed_images: the controller's (adaptive only: refused with a
            fixed probability, which would ignore them).
    """

    KEYS = ("policy", "probability", "adaptive", "target", "interval", "speed_images")

    def __init__(
        self,
        policy: Sequence[str] = ("color", "translation", "cutout"),
        probability: float | None = None,
        adaptive: bool = False,
        target: float | None = None,
        interval: int | None = None,
        speed_images: float | None = None,
    ) -> None:
        self.policy = check_policy(policy)
        if not isinstance(adaptive, bool):
            raise ValueError(f"adaptive must be true or false, got {adaptive!r}")
        if probability is None:
            probability = 0.0 if adaptive else 1.0
        self._fixed = checks.probability("probability", probability)
        settings = {"target": target, "interval": interval, "speed_images": speed_images}
        settings = {name: value for name, value in settings.items() if value is not None}
        if settings and not adaptive:
            raise ValueError(
                f"{', '.join(settings)} set the adaptive probability's controller, but "
                f"adaptive is false: drop them, or set adaptive: true"
            )
        self.controller = AdaptiveProbability(self._fixed, **settings) if adaptive else None

    @classmethod
    def from_setting(cls, setting: Mapping[str, Any] | None) -> Augmentation | None:
        """The augmentation a ``model.augment`` mapping describes (``None``: off); a
        ``ConfigError`` naming ``model.augment`` when it cannot be built."""
        if setting is None:
            return None
        if not isinstance(setting, Mapping):
            raise ConfigError(
                f"model.augment must be null or a mapping such as {{policy: [color, "
                f"translation, cutout], probability: 1.0}}, got {setting!r}"
            )
        unknown = sorted(set(setting) - set(cls.KEYS))
        if unknown:
            raise ConfigError(
                f"model.augment has no setting {', '.join(unknown)}; its settings are "
                f"{', '.join(cls.KEYS)}"
            )
        try:
            return cls(**setting)
        except ValueError as err:
            raise ConfigError(f"model.augment: {err}") from err

    @property
    def adaptive(self) -> bool:
        """Whether ADA's controller moves the probability."""
        return self.controller is not None

    @property
    def p(self) -> float:
        """The probability in use now."""
        return self.controller.p if self.controller is not None else self._fixed

    def __call__(self, x: Tensor) -> Tensor:
        """``x`` augmented at the probability in use now (fresh draws on every call)."""
        return augment(x, self.policy, self.p)

    def observe(self, real_logits: Tensor, n_images: int) -> None:
        """Feed the controller one discriminator step: D's logits on this process's real
        batch, ``n_images`` the images of every process's (nothing at a fixed probability)."""
        if self.controller is not None:
            self.controller.update(real_logits, n_images)

    def state_dict(self) -> dict[str, float | int]:
        """The controller's state (empty at a fixed probability)."""
        return self.controller.state_dict() if self.controller is not None else {}

    def load_state_dict(self, state: Mapping[str, Any], sums: bool = True) -> None:
        """Restore a :meth:`state_dict` (an empty one, or any at a fixed probability, is
        ignored); ``sums``: see :meth:`AdaptiveProbability.load_state_dict`."""
        if self.controller is not None and state:
            self.controller.load_state_dict(state, sums)
