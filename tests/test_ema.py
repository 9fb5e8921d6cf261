"""gan_je.ema: the EMA's weight on each step, its ramp-up, and the average it keeps."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_je.ema import averaged_generator, ema_decay_at


def test_the_decay_is_constant_without_a_ramp_up():
    assert ema_decay_at(1, 0.999, None) == 0.999
    assert ema_decay_at(10**6, 0.999, None) == 0.999


def test_the_ramp_up_caps_the_half_life_at_a_fraction_of_the_steps():
    # 0.999's half-life is ln 0.5 / ln 0.999 = 692.8 steps; 5 % of 100 steps is 5
    assert ema_decay_at(100, 0.999, 0.05) == pytest.approx(0.5 ** (1 / 5))
    assert ema_decay_at(10_000, 0.999, 0.05) == pytest.approx(0.5 ** (1 / 500))
    assert ema_decay_at(13_856, 0.999, 0.05) == pytest.approx(0.5 ** (1 / 692.8), abs=1e-7)
    assert ema_decay_at(13_870, 0.999, 0.05) == pytest.approx(0.999)  # past h / rampup
    assert math.log(0.5) / math.log(0.999) == pytest.approx(692.8, abs=0.05)  # the comment's h


@pytest.mark.parametrize(
    ("step", "decay", "rampup", "match"),
    [(0, 0.9, None, "EMA step"), (1, 1.0, None, "ema_decay"), (1, 0.0, 0.05, "ema_decay"),
     (1, 0.9, 0.0, "ema_rampup"), (1, 0.9, float("nan"), "ema_rampup"),
     (1, "0.999", None, "ema_decay must be null"), (1, None, 0.05, "needs model.ema_decay")],
)  # fmt: skip
def test_bad_settings_are_refused(step, decay, rampup, match):
    with pytest.raises(ValueError, match=match):
        ema_decay_at(step, decay, rampup)
    if step > 0:
        with pytest.raises(ValueError, match=match):
            averaged_generator(nn.Linear(2, 2), decay, rampup)


def _average_of(weights: list[float], decay: float, rampup: float | None) -> nn.Module:
    """The EMA of a network whose every parameter and buffer takes each of ``weights`` in turn."""
    network = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = None
    for step, weight in enumerate(weights, start=1):
        with torch.no_grad():
            for tensor in [*network.parameters(), *network[1].buffers()]:
                tensor.fill_(weight if tensor.is_floating_point() else step)
        if average is None:
            average = averaged_generator(network, decay, rampup)
        average.update_parameters(network)
    return average.module


@pytest.mark.parametrize("rampup", [None, 0.05, 0.5])
def test_the_average_follows_the_recurrence(rampup):
    weights = [float(w) for w in torch.linspace(-1, 2, 40)]
    expected = weights[0]
    for step, weight in enumerate(weights[1:], start=2):
        keep = ema_decay_at(step, 0.9, rampup)
        expected = keep * expected + (1 - keep) * weight
    average = _average_of(weights, 0.9, rampup)
    for tensor in [*average.parameters(), average[1].running_mean, average[1].running_var]:
        torch.testing.assert_close(tensor, torch.full_like(tensor, expected))
    assert average[1].num_batches_tracked.item() == len(weights)  # a count: copied, not averaged


def test_the_ramp_up_forgets_the_first_step():
    # the first step's weight after 840 steps (12 epochs of the mnist5k presets): 0.999 ** 839
    # without a ramp-up, a product of ramped decays with one
    first_only = [1.0] + [0.0] * 839
    plain = _average_of(first_only, 0.999, None)[0].weight
    torch.testing.assert_close(plain, torch.full_like(plain, 0.999**839))
    assert 0.999**839 > 0.43  # the docs' 43 %
    ramped = _average_of(first_only, 0.999, 0.05)[0].weight
    assert ramped.abs().max() < 1e-6
