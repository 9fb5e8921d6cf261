"""The exponential moving average (EMA) of the generator's weights, with a ramp-up.

After generator step ``t`` the average moves towards the network's weights ``w_t``:

    w̄_1 = w_1,    w̄_t = β_t w̄_{t-1} + (1 - β_t) w_t.

A constant ``β_t = decay`` keeps ``decay ** (t - 1)`` of the first step's (random) weights: with
0.999, 43 % after 840 steps, so a short run samples from a blur of its untrained start. The
ramp-up of StyleGAN2-ADA (Karras et al. 2020, "Training generative adversarial networks with
limited data", its ``ema_rampup``) caps the average's half-life at a fraction ``rampup`` of the
steps taken so far:

    h = ln 0.5 / ln decay   (the half-life of ``decay``, in steps),
    h_t = min(h, rampup · t),    β_t = 0.5 ** (1 / h_t),

so the average forgets its start at any length of run and becomes the plain ``decay`` once
``t ≥ h / rampup`` (about 13,860 steps for 0.999 and 0.05). Steps stand for images here: every step
sees one batch of a fixed size. StyleGAN2-ADA counts only the images seen before the step
(rampup · (t - 1) here): the cap here is one step later, a difference gone after a few steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from gan_je.checks import is_real, positive_float, positive_int


def check_ema_settings(decay: float | None, rampup: float | None) -> None:
    """Raise a ``ValueError`` unless ``decay`` is ``None`` (no EMA) or a number in (0, 1), and
    ``rampup`` ``None`` (no ramp-up) or a finite number > 0."""
    if decay is not None and (not is_real(decay) or not 0 < decay < 1):
        raise ValueError(f"model.ema_decay must be null (no EMA) or in (0, 1), got {decay!r}")
    if rampup is not None:
        positive_float("model.ema_rampup", rampup)


def ema_decay_at(step: int, decay: float, rampup: float | None) -> float:
    """``β_t`` of the module docstring: the weight the average keeps at generator step ``step``
    (1 for the first step, which the average copies), ``decay`` itself when ``rampup`` is
    ``None``."""
    positive_int("EMA step", step)
    if decay is None:
        raise ValueError("an EMA needs model.ema_decay, a number in (0, 1); got null")
    check_ema_settings(decay, rampup)
    if rampup is None:
        return decay
    half_life = min(math.log(0.5) / math.log(decay), rampup * step)
    return 0.5 ** (1 / half_life)


def ema_update(
    decay: float, rampup: float | None
) -> Callable[[Sequence[Tensor], Sequence[Tensor], Tensor], None]:
    """The ``multi_avg_fn`` of :class:`torch.optim.swa_utils.AveragedModel` for
    :func:`ema_decay_at`: moves the floating-point tensors by ``1 - β_t`` and copies the others
    (batch norm's ``num_batches_tracked``, a count). ``AveragedModel`` copies the first step
    itself and calls this from the second on, with the number of steps averaged before it."""
    ema_decay_at(1, decay, rampup)  # checks the settings now, not at the second step

    @torch.no_grad()
    def update(average: Sequence[Tensor], current: Sequence[Tensor], n_averaged: Tensor) -> None:
        keep = ema_decay_at(int(n_averaged) + 1, decay, rampup)
        floats = [(a, c) for a, c in zip(average, current, strict=True) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], 1 - keep)
        for a, c in zip(average, current, strict=True):
            if not a.is_floating_point():
                a.copy_(c)

    return update


def averaged_generator(generator: nn.Module, decay: float, rampup: float | None) -> AveragedModel:
    """A copy of ``generator`` (buffers included: batch norm's statistics are averaged too) that
    ``update_parameters(generator)`` moves as in the module docstring."""
    return AveragedModel(generator, multi_avg_fn=ema_update(decay, rampup), use_buffers=True)
