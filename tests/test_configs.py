"""The estimator configs compose with Hydra and build what they name."""

from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from gan_je.metrics import JointEntropy

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_knn_estimator_config_builds_the_metric():
    with initialize_config_dir(config_dir=str(CONF / "estimator"), version_base="1.3"):
        cfg = compose(config_name="knn", overrides=["k=5", "max_samples=500"])
    metric = instantiate(cfg)
    assert isinstance(metric, JointEntropy)
    assert (metric.k, metric.max_samples, metric.backend) == (5, 500, "auto")
    metric.update(torch.randn(100, 3), torch.randn(100, 3))
    assert set(metric.compute()) >= {"entropy_real", "jsd", "jsd_sliced"}
