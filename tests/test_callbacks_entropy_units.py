"""The entropy callbacks' settings are in nats whatever the metric's logarithm base: entropies
logged in bits (``estimator.base=2``) lead to exactly the decisions the same entropies in nats
do."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate

from gan_je.callbacks import EntropyMatching, ModeCollapseMonitor, entropy_gap_nats


class Module:
    """What the entropy callbacks read and write on a GANModule."""

    def __init__(self, base: float) -> None:
        self.metric = SimpleNamespace(base=base)
        self.g_step, self.weight = 10, 0.0

    def entropy_weight(self) -> float:
        return self.weight

    def hold_entropy_weight(self, weight: float) -> None:
        self.weight = weight


def _logged(real_nats: float, fake_nats: float, base: float, **more: float) -> dict:
    """Metrics as the metric logs them: entropies in logarithm ``base``."""
    in_base = {"val/entropy_real": real_nats, "val/entropy_fake": fake_nats}
    logged = {key: torch.tensor(value / math.log(base)) for key, value in in_base.items()}
    return logged | {key: torch.tensor(value) for key, value in more.items()}


def _trainer(metrics: dict) -> SimpleNamespace:
    return SimpleNamespace(
        callback_metrics=metrics, sanity_checking=False, is_global_zero=True, loggers=[],
        should_stop=False,
    )  # fmt: skip


def test_the_gap_is_converted_to_nats():
    assert entropy_gap_nats(_logged(5.0, 4.1, 2.0), 2.0) == pytest.approx(0.9)
    metrics = {"val/entropy_real": torch.tensor(3.0), "val/entropy_fake": torch.tensor(1.0)}
    assert entropy_gap_nats(metrics, 2.0) == pytest.approx(2 * math.log(2))  # 2 bits
    for base in (1, 0, -2.0, "2", math.nan, math.inf):
        with pytest.raises(ValueError, match="base must be a finite number > 0 other than 1"):
            entropy_gap_nats(metrics, base)


# (real, fake) in nats around the 1-nat margin: 0.9 nats below is 1.3 bits below, which a
# margin read in bits would call collapsed; 1.1 nats below is collapsed in either unit
GAPS = [(5.0, 4.1), (5.0, 3.9), (-4.0, -3.1), (-4.0, -2.9), (0.0, -0.7), (0.0, -1.5)]


@pytest.mark.parametrize("modes", [None, 6.0, 8.0])
@pytest.mark.parametrize(("real", "fake"), GAPS)
def test_the_monitor_decides_alike_in_bits_and_nats(real, fake, modes):
    monitor = ModeCollapseMonitor(margin=1.0, min_modes=8)
    more = {} if modes is None else {"val/modes_covered": modes}
    in_nats = monitor.collapsed(_logged(real, fake, math.e, **more))
    in_bits = monitor.collapsed(_logged(real, fake, 2.0, **more), base=2.0)
    assert in_bits == in_nats
    expected = real - fake > 1.0 or (modes == 6.0 and real - fake >= -1.0)
    assert in_nats == expected


@pytest.mark.parametrize(("real", "fake"), GAPS)
def test_the_monitor_stops_alike_in_bits_and_nats(real, fake):
    stopped = {}
    for base in (math.e, 2.0, 10.0):
        monitor = ModeCollapseMonitor(margin=1.0, patience=1, warmup=0, action="stop")
        trainer = _trainer(_logged(real, fake, base))
        monitor.on_validation_end(trainer, Module(base))
        stopped[base] = trainer.should_stop
    assert stopped[2.0] == stopped[10.0] == stopped[math.e] == (real - fake > 1.0)


def test_the_controller_moves_the_weight_alike_in_bits_and_nats():
    history = [(-4.0, -6.0), (-4.0, -6.0), (-4.0, -5.0), (-4.0, -1.0), (-4.0, 20.0)]
    weights = {}
    for base in (math.e, 2.0):
        controller, module = EntropyMatching(gain=0.1, max_weight=0.5, warmup=1), Module(base)
        weights[base] = []
        for real, fake in history:
            controller.on_validation_end(_trainer(_logged(real, fake, base)), module)
            weights[base].append(module.weight)
    assert weights[2.0] == pytest.approx(weights[math.e], abs=1e-6)  # float32 logs
    assert weights[math.e] == pytest.approx(
        [0.0, 0.2, 0.3, 0.0, -0.5], abs=1e-6
    )  # gain 0.1 per nat


def test_a_module_built_with_base_2_gives_the_callbacks_its_base(train_config):
    module = instantiate(train_config("model=mlp", "estimator.base=2").model)
    assert module.metric.base == 2
    controller = EntropyMatching(gain=0.1, warmup=0)
    controller.on_validation_end(_trainer(_logged(-4.0, -6.0, 2.0)), module)
    assert module.entropy_weight() == pytest.approx(0.2)  # 2 nats below, not 2.885 bits
