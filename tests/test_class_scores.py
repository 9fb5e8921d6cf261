"""The class scores: Inception score, class histogram and its KL from uniform, coverage."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from gan_je.class_scores import (
    ClassScorer,
    class_histogram,
    class_kl,
    classes_covered,
    fit_class_scorer,
    inception_score,
)
from gan_je.errors import ConfigError
from gan_je.evaluate import evaluate
from gan_je.features import Classifier
from gan_je.train import train

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.parametrize("k", [2, 5, 10])
def test_one_hot_predictions_spread_evenly_over_k_classes_score_k(k):
    probabilities = torch.eye(k).repeat(3, 1)  # each class 3 times, each with certainty
    assert inception_score(probabilities) == pytest.approx(k, rel=1e-12)


def test_identical_predictions_score_one():
    probabilities = torch.tensor([[0.2, 0.5, 0.3]]).repeat(7, 1)
    assert inception_score(probabilities) == pytest.approx(1.0, rel=1e-12)


def test_inception_score_against_the_formula_computed_by_hand():
    """Two samples over two classes: p(y) = (0.5, 0.5); KL of (0.9, 0.1) and of (0.1, 0.9)
    from it are both 0.9 log 1.8 + 0.1 log 0.2."""
    probabilities = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64)
    expected = math.exp(0.9 * math.log(1.8) + 0.1 * math.log(0.2))
    assert inception_score(probabilities) == pytest.approx(expected, rel=1e-12)


def test_inception_score_refuses_what_is_not_probabilities():
    with pytest.raises(ValueError, match=r"\(N, k\)"):
        inception_score(torch.ones(4))
    with pytest.raises(ValueError, match="non-empty"):
        inception_score(torch.ones(0, 3))
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(torch.ones(2, 3))
    with pytest.raises(ValueError, match="non-negative"):
        inception_score(torch.tensor([[1.5, -0.5]]))
    with pytest.raises(ValueError, match="finite"):
        inception_score(torch.tensor([[float("nan"), 1.0]]))


def test_class_histogram_counts_shares():
    histogram = class_histogram(torch.tensor([0, 2, 2, 3]), 5)
    assert torch.equal(histogram, torch.tensor([0.25, 0.0, 0.5, 0.25, 0.0], dtype=torch.float64))


def test_class_kl_is_zero_for_uniform_and_log_k_for_one_class():
    assert class_kl(torch.arange(10).repeat(4), 10) == pytest.approx(0.0, abs=1e-12)
    assert class_kl(torch.full((9,), 3), 10) == pytest.approx(math.log(10), rel=1e-12)
    # half in each of two of four classes: log 2
    assert class_kl(torch.tensor([1, 1, 3, 3]), 4) == pytest.approx(math.log(2), rel=1e-12)


def test_classes_covered_counts_distinct_classes():
    assert classes_covered(torch.tensor([4, 4, 1, 9]), 10) == 3


def test_class_functions_refuse_bad_labels():
    with pytest.raises(ValueError, match="range\\(3\\)"):
        class_kl(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="range\\(3\\)"):
        class_histogram(torch.tensor([-1, 0]), 3)
    with pytest.raises(ValueError, match="integer class ids"):
        classes_covered(torch.tensor([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="non-empty"):
        class_kl(torch.tensor([], dtype=torch.long), 3)
    with pytest.raises(ValueError, match="n_classes"):
        class_kl(torch.tensor([0]), 0)


def _points(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well separated clusters in 2-D, labelled by cluster."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    centres = torch.tensor([[-6.0, 0.0], [0.0, 6.0], [6.0, 0.0]])
    return centres[labels] + torch.randn(n, 2, generator=generator), labels


def test_class_scorer_scores_a_classifier_s_predictions():
    x, labels = _points()
    scorer = ClassScorer(Classifier(dim=2, embedding=16, epochs=20)).fit(x, labels, "points")
    assert scorer.accuracy(*_points(seed=1)) > 0.95
    balanced = scorer.scores(_points(seed=2)[0])
    assert balanced["classes_covered"] == 3
    assert balanced["inception_score"] > 2.7  # at most 3, for certain and balanced classes
    assert balanced["class_kl"] < 0.01
    one_cluster = x[labels == 1]
    collapsed = scorer.scores(one_cluster)
    assert collapsed["classes_covered"] == 1
    assert collapsed["class_kl"] == pytest.approx(math.log(3), rel=1e-9)
    assert collapsed["inception_score"] < 1.1


def test_class_scorer_needs_a_classifier_and_fitting():
    with pytest.raises(ValueError, match="Classifier"):
        ClassScorer(object())
    with pytest.raises(RuntimeError, match="not fitted"):
        ClassScorer(Classifier()).scores(torch.randn(3, 2))


class _Data:
    """The parts of a gan_je data module that :func:`fit_class_scorer` reads."""

    def __init__(self, labels: torch.Tensor | None) -> None:
        x, y = _points()
        tensors = (x, y if labels is None else labels)
        self.train_set = torch.utils.data.TensorDataset(*tensors)
        self.val_set = torch.utils.data.TensorDataset(*_points(seed=1))
        self.data_spec = {"kind": "points", "sample_shape": [2]}

    def as_samples(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def val_tensor(self, max_n: int | None = None) -> torch.Tensor:
        return self.val_set.tensors[0][:max_n]


def test_fit_class_scorer_gives_the_held_out_ceiling_and_accuracy():
    scorer = ClassScorer(Classifier(dim=2, embedding=16, epochs=20))
    real, accuracy = fit_class_scorer(scorer, _Data(None), 90)
    assert accuracy > 0.95
    assert real["classes_covered"] == 3 and real["inception_score"] > 2.7


def test_fit_class_scorer_refuses_unlabelled_data():
    with pytest.raises(ConfigError, match="class scores need labelled data"):
        fit_class_scorer(ClassScorer(Classifier()), _Data(torch.zeros(300, dtype=torch.long)), 9)


@pytest.mark.slow
def test_the_callback_logs_the_class_scores_and_evaluate_reports_them(train_config, tmp_path):
    """On labelled images (data=digits, 10 classes): the callback's keys after training, the
    same in evaluate's record beside the real held-out ones."""
    callback = "+callbacks.class_scores."
    cfg = train_config(
        "data=digits", "model=dcgan", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
        "logger=none", "~callbacks.progress",
        f"{callback}_target_=gan_je.callbacks.ClassScores", f"{callback}n_samples=200",
        f"{callback}epochs=30", "trainer.accelerator=cpu",
    )  # fmt: skip
    logged = train(cfg)["final"]
    assert 1 <= logged["val/inception_score"] <= 10 and logged["val/class_kl"] >= 0
    assert 1 <= logged["val/classes_covered"] <= 10
    assert logged["val/classifier_accuracy"] > 0.8
    assert logged["val/inception_score_real"] > logged["val/inception_score"]  # untrained G
    checkpoint = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        app = compose(
            config_name="evaluate", overrides=[f"ckpt_path={checkpoint}", "n_samples=200"]
        )
    app.paths.root_dir = str(tmp_path)  # the classifier's cache
    metrics = evaluate(app)["metrics"]
    assert metrics["classifier_accuracy"] == pytest.approx(logged["val/classifier_accuracy"])
    assert metrics["inception_score_real"] == pytest.approx(logged["val/inception_score_real"])
    assert {"inception_score", "class_kl", "classes_covered", "class_kl_real"} <= set(metrics)
