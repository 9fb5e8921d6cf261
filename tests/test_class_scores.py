"""The class scores: Inception score, class histogram and its KL from uniform, coverage, and
the Fréchet distance in the classifier's features."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from lightning.fabric.utilities.data import AttributeDict

from gan_je.callbacks import ClassScores
from gan_je.class_scores import (
    ClassScorer,
    class_histogram,
    class_kl,
    classes_covered,
    fit_class_scorer,
    inception_score,
)
from gan_je.errors import ConfigError
from gan_je.evaluate import class_scorer, evaluate
from gan_je.features import Classifier
from gan_je.modes import DigitClassifier
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
    assert (collapsed["smallest_class"], collapsed["largest_class"]) == (0.0, 1.0)
    # two of clusters 0 and 2 for every one of cluster 1: shares 2/5, 1/5, 2/5
    lopsided = torch.cat([x[labels != 1], x[labels == 1][: (labels != 1).sum() // 4]])
    shares = scorer.scores(lopsided)
    assert shares["smallest_class"] == pytest.approx(1 / 5, abs=0.01)
    assert shares["largest_class"] == pytest.approx(2 / 5, abs=0.01)


def test_class_scorer_needs_a_classifier_and_fitting():
    with pytest.raises(ValueError, match="Classifier"):
        ClassScorer(object())
    with pytest.raises(RuntimeError, match="not fitted"):
        ClassScorer(Classifier()).scores(torch.randn(3, 2))


class _Data:
    """The parts of a gan_je data module that :func:`fit_class_scorer` reads: by default
    :func:`_points`, else ``make(n, seed)`` samples of ``kind``."""

    def __init__(
        self, labels: torch.Tensor | None, make=_points, kind: str = "points", n_val: int = 300
    ) -> None:
        x, y = make(300, 0)
        tensors = (x, y if labels is None else labels)
        self.train_set = torch.utils.data.TensorDataset(*tensors)
        self.val_set = torch.utils.data.TensorDataset(*make(n_val, 1))
        self.data_spec = {"kind": kind, "sample_shape": list(x.shape[1:])}

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


class _SampleFeatures(Classifier):
    """A classifier whose penultimate features are the samples themselves (a linear head on
    the flattened sample), so the Fréchet distance in its features is that of the samples."""

    def _network(self, sample_shape: tuple[int, ...], n_classes: int) -> torch.nn.Sequential:
        width = math.prod(sample_shape)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(width, n_classes))


def _gaussian(n: int, seed: int, shift: torch.Tensor | float = 0.0, scale: float = 1.0):
    generator = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(n, 3, generator=generator, dtype=torch.float64) + shift
    return x, (x[:, 0] > 0).long()


def test_the_frechet_distance_is_that_of_gaussians_fitted_to_the_features():
    """In features that are the samples: about 0 for another draw of the training Gaussian,
    |shift|^2 for a shifted one, d (1 + 4 - 2 * 2) = 3 for N(0, 4 I) against N(0, I)."""
    scorer = ClassScorer(_SampleFeatures(epochs=1)).fit(*_gaussian(20_000, 0), "points")
    same = scorer.scores(_gaussian(20_000, 1)[0])["frechet_distance"]
    assert 0 <= same < 0.005
    shift = torch.tensor([1.0, -2.0, 0.5])
    shifted = scorer.scores(_gaussian(20_000, 2, shift)[0])["frechet_distance"]
    assert shifted == pytest.approx(float(shift.square().sum()), rel=0.02)
    wider = scorer.scores(_gaussian(20_000, 3, scale=2.0)[0])["frechet_distance"]
    assert wider == pytest.approx(3.0, rel=0.03)


def _images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 images in [-1, 1] of three classes: a bright bar across rows 2c and 2c + 1 of a
    dark, noisy background."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    x = -0.8 + 0.2 * torch.rand(n, 1, 8, 8, generator=generator)
    for c in range(3):
        x[labels == c, :, 2 * c : 2 * c + 2] += 1.6
    return x, labels


def test_classifier_embed_gives_the_features_the_class_head_reads():
    classifier = Classifier(embedding=16, epochs=2).fit(*_images(90, 0), kind="image")
    x = _images(30, 1)[0]
    features = classifier.embed(x)
    assert features.shape == (30, 16)
    head = classifier.net[-1]
    assert torch.allclose(head(features).softmax(dim=1), classifier.probabilities(x), atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        classifier.embed(torch.zeros(3, 1, 4, 4))
    with pytest.raises(RuntimeError, match="not fitted"):
        Classifier().embed(x)


def test_held_out_images_lie_far_nearer_the_training_features_than_noise():
    """The floor (held-out real images) against uniform noise in [-1, 1], both sets of 90,
    in the features of a small fitted classifier; the training set itself is at 0."""
    scorer = ClassScorer(Classifier(embedding=16, epochs=10))
    data = _Data(None, _images, "image", n_val=90)
    real, accuracy = fit_class_scorer(scorer, data, 90)
    assert accuracy == 1.0
    noise = 2 * torch.rand(90, 1, 8, 8, generator=torch.Generator().manual_seed(5)) - 1
    assert real["frechet_distance"] * 10 < scorer.scores(noise)["frechet_distance"]
    train = data.train_set.tensors[0]
    assert scorer.scores(train)["frechet_distance"] < 1e-6  # 0 up to the square roots' error


def test_the_frechet_distance_needs_more_samples_than_features():
    scorer = ClassScorer(Classifier(embedding=16, epochs=1)).fit(*_images(90, 0), "image")
    x = _images(17, 1)[0]
    assert "frechet_distance" in scorer.scores(x)
    assert "frechet_distance" not in scorer.scores(x[:16])
    assert "inception_score" in scorer.scores(x[:16])
    assert scorer.has_distance(17) and not scorer.has_distance(16)
    small_reference = ClassScorer(Classifier(embedding=16, epochs=1)).fit(*_images(15, 0), "image")
    assert not small_reference.has_distance(1000)  # the reference must outnumber them too
    assert "frechet_distance" not in small_reference.scores(_images(100, 1)[0])


def test_the_frechet_distance_of_the_first_n_distance_samples():
    """``n_distance``: the distance of as many samples as the set compared with, the other
    scores of all of them."""
    scorer = ClassScorer(Classifier(embedding=8, epochs=1)).fit(*_images(90, 0), "image")
    x = _images(60, 1)[0]
    first = scorer.scores(x, n_distance=20)
    assert first["frechet_distance"] == pytest.approx(scorer.scores(x[:20])["frechet_distance"])
    assert first["frechet_distance"] != pytest.approx(scorer.scores(x)["frechet_distance"])
    assert first["inception_score"] == pytest.approx(scorer.scores(x)["inception_score"])
    assert scorer.scores(x, n_distance=600) == scorer.scores(x)  # at most all of them
    assert "frechet_distance" not in scorer.scores(x, n_distance=8)
    with pytest.raises(ValueError, match="n_distance must be a positive integer"):
        scorer.scores(x, n_distance=0)


def test_the_two_networks_are_cached_apart(tmp_path):
    x, labels = _images(60, 0)
    for network in (Classifier, DigitClassifier):
        network(embedding=8, epochs=1, cache_dir=str(tmp_path)).fit(x, labels, kind="image")
    assert len(list(tmp_path.glob("classifier-*.pt"))) == 2


def test_the_callback_logs_the_frechet_distance_beside_its_floor_at_equal_sizes():
    """The held-out split holds 150 samples, fewer than n_samples: 150 of each are scored."""
    callback = ClassScores(n_samples=400, epochs=20, embedding=16)
    trainer = SimpleNamespace(datamodule=_Data(None, n_val=150), sanity_checking=False)
    logged, drawn = {}, []

    def sample(n: int, seed: int) -> torch.Tensor:
        drawn.append(n)
        x, labels = _points(3 * n, seed=7)
        return x[labels == 1]  # n samples of one cluster

    module = SimpleNamespace(seed=0, sample=sample, log_dict=logged.update)
    callback.setup(trainer, module, "fit")
    callback.on_validation_epoch_end(trainer, module)
    assert drawn == [150]
    assert logged["val/frechet_distance_real"] < 1
    assert logged["val/frechet_distance"] > 10 * logged["val/frechet_distance_real"]
    assert logged["val/classes_covered"] == 1 and logged["val/classes_covered_real"] == 3


def test_the_callback_refuses_an_unknown_network_and_digits_of_other_kinds():
    with pytest.raises(ConfigError, match="network must be one of kind, digit"):
        ClassScores(network="inception")
    callback = ClassScores(network="digit")
    assert isinstance(callback.scorer.classifier, DigitClassifier)
    trainer = SimpleNamespace(datamodule=_Data(None), sanity_checking=False)
    with pytest.raises(ConfigError, match="network=digit classifies images"):
        callback.setup(trainer, None, "fit")


def _run(run_config: dict, data_spec: dict) -> SimpleNamespace:
    """The parts of a loaded GANModule that :func:`class_scorer` reads."""
    return SimpleNamespace(hparams=AttributeDict(run_config=run_config, data_spec=data_spec))


def test_evaluate_scores_in_the_network_chosen():
    """``class_scorer``: the run's callback settings, its network replaced by the one
    chosen; the chosen network alone for a run without the callback; none otherwise."""
    images = {"kind": "image", "sample_shape": [1, 8, 8]}
    assert class_scorer(_run({}, images), "cache") is None
    assert type(class_scorer(_run({}, images), "cache", "digit").classifier) is DigitClassifier
    settings = {"_target_": "gan_je.callbacks.ClassScores", "epochs": 3, "network": "kind"}
    run = _run({"callbacks": {"class_scores": settings}}, images)
    assert type(class_scorer(run, "cache").classifier) is Classifier
    digits = class_scorer(run, "cache", "digit").classifier
    assert type(digits) is DigitClassifier and digits.epochs == 3
    points = _run({}, {"kind": "points", "sample_shape": [2]})
    with pytest.raises(ConfigError, match="network=digit classifies images"):
        class_scorer(points, "cache", "digit")


def test_evaluate_refuses_an_unknown_class_scores_network(tmp_path):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        app = compose(
            config_name="evaluate",
            overrides=[f"ckpt_path={tmp_path / 'last.ckpt'}", "class_scores_network=inception"],
        )
    with pytest.raises(ConfigError, match="class_scores_network must be null"):
        evaluate(app)


@pytest.mark.slow
@pytest.mark.parametrize("network", ["kind", "digit"])
def test_the_callback_logs_the_class_scores_and_evaluate_reports_them(
    train_config, tmp_path, network
):
    """On labelled images (data=digits, 10 classes): the callback's keys after training, the
    same in evaluate's record beside the real held-out ones; evaluate in the other network
    writes a record of its own."""
    callback = "+callbacks.class_scores."
    cfg = train_config(
        "data=digits", "model=dcgan", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
        "logger=none", "~callbacks.progress",
        f"{callback}_target_=gan_je.callbacks.ClassScores", f"{callback}n_samples=200",
        f"{callback}epochs=30", f"{callback}network={network}", "trainer.accelerator=cpu",
    )  # fmt: skip
    logged = train(cfg)["final"]
    assert 1 <= logged["val/inception_score"] <= 10 and logged["val/class_kl"] >= 0
    assert 1 <= logged["val/classes_covered"] <= 10
    assert logged["val/classifier_accuracy"] > 0.8
    assert logged["val/inception_score_real"] > logged["val/inception_score"]  # untrained G
    assert 0 < logged["val/frechet_distance_real"] < logged["val/frechet_distance"] / 5
    checkpoint = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        app = compose(
            config_name="evaluate", overrides=[f"ckpt_path={checkpoint}", "n_samples=200"]
        )
    app.paths.root_dir = str(tmp_path)  # the classifier's cache
    metrics = evaluate(app)["metrics"]
    assert metrics["classifier_accuracy"] == pytest.approx(logged["val/classifier_accuracy"])
    assert metrics["inception_score_real"] == pytest.approx(logged["val/inception_score_real"])
    real_distance = logged["val/frechet_distance_real"]
    assert metrics["frechet_distance_real"] == pytest.approx(real_distance, rel=1e-5)
    assert metrics["frechet_distance"] > metrics["frechet_distance_real"]
    assert {"inception_score", "class_kl", "classes_covered", "class_kl_real"} <= set(metrics)
    if network == "digit":  # more generated than held-out digits: the distance of as many
        app.n_samples, app.equal_sizes = 297, True  # every held-out digit (data.val_size)
        whole = evaluate(app)["metrics"]
        app.n_samples, app.equal_sizes = 600, False
        unequal = evaluate(app)["metrics"]
        assert unequal["frechet_distance"] == pytest.approx(whole["frechet_distance"], rel=1e-4)
        assert unequal["frechet_distance_real"] == pytest.approx(whole["frechet_distance_real"])
        app.n_samples, app.equal_sizes = 200, True
    app.class_scores_network = {"kind": "digit", "digit": "kind"}[network]
    other = evaluate(app)["metrics"]
    assert other["frechet_distance_real"] != pytest.approx(real_distance, rel=1e-3)
    assert len(list((checkpoint.parent / "evaluations").glob("*.json"))) == 2 + 2 * (
        network == "digit"
    )
