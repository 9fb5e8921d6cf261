"""Every estimator config validates a trained module through the metric protocol alone.

Inception-v3 cannot be downloaded here, so ``estimator=inception`` runs with a stand-in
feature extractor (``estimator.feature_extractor``): the path through gan_je is the same, with
copying on, which once raised a ``TypeError`` at the first validation."""

from __future__ import annotations

import math

import lightning
import pytest
import torch
from torch import nn

from gan_je import parts
from gan_je.estimators import entropy, gaussian
from gan_je.metrics import ValidationMetric
from gan_je.train import build
from tests.conftest import CONF

SMALL_DIGITS = [
    "data=digits",
    "model.generator.width=8",
    "model.discriminator.width=8",
    "estimator.max_samples=null",
    "estimator.n_fake=200",
    "estimator.features_fit_samples=500",
]


@parts.register
class MeanColourFeatures(nn.Module):
    """A stand-in for Inception-v3: mean R, G, B and the spread of each image in [0, 1]."""

    num_features = 4

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        colours = images.float().mean(dim=(2, 3))
        return torch.cat([colours, images.float().std(dim=(1, 2, 3))[:, None]], dim=1)


STAND_IN = {
    "inception": [
        f"estimator.feature_extractor={{_target_:{__name__}.MeanColourFeatures}}",
        "estimator.kid_subset_size=100",  # fewer than the 200 generated samples
    ]
}
#: keys beyond those every estimator reports (DESIGN.md) that a config must produce
COPYING_KEYS = {"copying", "copying_cells", "copying_share"}
EXTRA_KEYS = {"knn": {*COPYING_KEYS, "jsd_classifier"}, "inception": {*COPYING_KEYS, "fid", "kid"}}
COMMON_KEYS = {"entropy_real", "entropy_fake", "entropy_mixture", "joint_entropy", "jsd"}


@pytest.mark.parametrize(
    "estimator", sorted(path.stem for path in (CONF / "estimator").glob("*.yaml"))
)
def test_every_estimator_config_validates_through_the_protocol(train_config, estimator):
    overrides = [*SMALL_DIGITS, f"estimator={estimator}", *STAND_IN.get(estimator, [])]
    datamodule, module = build(train_config(*overrides))
    assert isinstance(module.metric, ValidationMetric)
    trainer = lightning.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)
    values = {k.removeprefix("val/"): float(v) for k, v in trainer.callback_metrics.items()}
    expected = COMMON_KEYS | EXTRA_KEYS.get(estimator, set())
    assert expected <= values.keys(), expected - values.keys()
    assert all(math.isfinite(values[key]) for key in expected)
    # the real side's entropy, computed again from the validation set in the same features
    real = module.metric.features(datamodule.val_tensor()).flatten(1)
    by_estimator = gaussian.entropy if estimator == "gaussian" else entropy
    assert values["entropy_real"] == pytest.approx(float(by_estimator(real)), rel=1e-5)
