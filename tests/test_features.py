"""Feature maps: PCA against scikit-learn and the exact eigendecomposition on every route,
projections orthonormal, random streams left alone, fitted state loaded without refitting,
the classifier cache, errors."""

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import decomposition
from torch import nn

from gan_je import features as feature_maps
from gan_je.features import PCA, Classifier, Identity, RandomProjection


def _correlated(n: int = 400, d: int = 12, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(d, d, generator=generator) * torch.linspace(3, 0.1, d)
    return torch.randn(n, d, generator=generator) @ mixing.T + 5.0


def test_pca_matches_scikit_learn_up_to_sign():
    x = _correlated()
    ours = PCA(dim=3).fit(x)(x)
    reference = torch.from_numpy(
        decomposition.PCA(n_components=3).fit_transform(x.double().numpy())
    )
    signs = torch.sign((ours.double() * reference).sum(dim=0))
    torch.testing.assert_close(ours.double() * signs, reference, atol=1e-3, rtol=1e-3)


def test_pca_components_come_in_decreasing_variance_and_images_flatten():
    images = _correlated(300, 16).reshape(300, 1, 4, 4)
    features = PCA(dim=4).fit(images)(images)
    assert features.shape == (300, 4)
    variances = features.var(dim=0)
    assert torch.all(variances[:-1] >= variances[1:])


def test_pca_of_low_dimensional_data_only_centres():
    x = _correlated(100, 2)
    features = PCA(dim=8).fit(x)(x)
    torch.testing.assert_close(features, x - x.mean(dim=0))


def _gapped(n: int, d: int, top: int = 3, seed: int = 0) -> torch.Tensor:
    """Samples whose covariance has ``top`` eigenvalues 16, 9, 4, ... and the rest 1/4 or
    less, in a random rotation: a clear spectral gap after the ``top``-th component."""
    generator = torch.Generator().manual_seed(seed)
    scales = torch.cat([torch.arange(top + 1, 1, -1.0), torch.linspace(0.5, 0.1, d - top)])
    rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    z = torch.randn(n, d, generator=generator, dtype=torch.float64) * scales
    return (z @ rotation.T + 3.0).float()


def _exact_directions(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The earlier versions' fit: the top eigenvectors of the d x d covariance."""
    centred = x.double() - x.double().mean(dim=0)
    _, vectors = torch.linalg.eigh(centred.T @ centred / (x.shape[0] - 1))
    return vectors[:, -dim:].flip(1)


# (route, data's (n, d), largest side fitted exactly): each route of PCA.fit on gapped data
ROUTES = [
    ("exact-covariance", (300, 40), 1024),
    ("exact-gram", (40, 300), 1024),
    ("randomised", (300, 200), 30),
]


@pytest.mark.parametrize(("route", "shape", "exact_max_side"), ROUTES, ids=[r[0] for r in ROUTES])
def test_every_pca_route_finds_the_exact_subspace_with_the_same_signs(
    route, shape, exact_max_side, monkeypatch, caplog
):
    monkeypatch.setattr(feature_maps, "EXACT_MAX_SIDE", exact_max_side)
    x = _gapped(*shape)
    with caplog.at_level(logging.INFO, logger="gan_je.features"):
        basis = PCA(dim=3).fit(x).basis.double()
    assert ("randomised" if route == "randomised" else "exact") in caplog.messages[0]
    exact = _exact_directions(x, 3)
    # sine of the largest principal angle: the spectral norm of (I - P_exact) V
    outside = basis - exact @ (exact.T @ basis)
    assert float(torch.linalg.matrix_norm(outside, ord=2)) < 1e-5
    # the same columns, not only the same subspace: ordered by variance, signs by convention
    largest = basis.gather(0, basis.abs().argmax(dim=0, keepdim=True))
    assert torch.all(largest > 0)
    signs = torch.sign(exact.gather(0, basis.abs().argmax(dim=0, keepdim=True)))
    torch.testing.assert_close(basis, exact * signs, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        basis.T @ basis, torch.eye(3, dtype=torch.float64), atol=1e-6, rtol=0
    )


def test_randomised_pca_without_a_spectral_gap_captures_the_exact_variance(monkeypatch):
    """With the 8th and 9th eigenvalues 1.3 % apart the 8-dimensional subspace is barely
    determined (a randomised basis may lie far from the exact one), but the variance it
    captures is: at least 99 % of the exact basis's (7 power iterations give 99.6 %, 4 give
    98.3 %)."""
    monkeypatch.setattr(feature_maps, "EXACT_MAX_SIDE", 30)
    x = _correlated(600, 400)
    centred = x.double() - x.double().mean(dim=0)
    variance = centred.T @ centred
    eigenvalues = torch.linalg.eigvalsh(variance).flip(0)
    assert eigenvalues[7] / eigenvalues[8] < 1.02
    exact, basis = _exact_directions(x, 8), PCA(dim=8).fit(x).basis.double()
    captured = torch.trace(basis.T @ variance @ basis) / torch.trace(exact.T @ variance @ exact)
    assert 0.99 < captured <= 1 + 1e-9


def test_pca_on_small_data_is_the_earlier_exact_fit_up_to_column_signs():
    """Where the d x d eigendecomposition was feasible the basis is that one, bit for bit,
    each column possibly negated (which changes no distance, hence no k-NN estimate)."""
    x = _correlated()
    basis, earlier = PCA(dim=3).fit(x).basis, _exact_directions(x, 3).float()
    signs = torch.where((basis * earlier).sum(dim=0) < 0, -1.0, 1.0)
    assert torch.equal(basis, earlier * signs)


def test_randomised_pca_is_seeded_and_leaves_the_global_streams_alone(monkeypatch):
    monkeypatch.setattr(feature_maps, "EXACT_MAX_SIDE", 30)
    x = _correlated(300, 200)  # no clear gap: the seed shows in the last bits
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = PCA(dim=3, seed=1).fit(x)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(7)
    assert torch.equal(PCA(dim=3, seed=1).fit(x).basis, first.basis)
    assert not torch.equal(PCA(dim=3, seed=2).fit(x).basis, first.basis)


def test_a_long_randomised_fit_logs_its_progress(monkeypatch, caplog):
    monkeypatch.setattr(feature_maps, "EXACT_MAX_SIDE", 30)
    monkeypatch.setattr(feature_maps, "PROGRESS_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger="gan_je.features"):
        PCA(dim=3, power_iterations=2).fit(_gapped(300, 200))
    assert caplog.messages[0] == (
        "PCA: fitting 3 components to 300 samples x 200 features (randomised)"
    )
    assert caplog.messages[1:3] == ["PCA: power iteration 1 of 2", "PCA: power iteration 2 of 2"]
    assert caplog.messages[3].startswith("PCA: fitted in ")


def test_a_pca_state_fitted_by_an_earlier_version_loads_unchanged():
    """Earlier versions saved the same two buffers, with eigh's column signs: loading keeps
    them as they are (no refit, no sign convention applied)."""
    x = _correlated()
    mean, basis = x.double().mean(dim=0).float(), -_exact_directions(x, 3).float()
    fresh = PCA(dim=3)
    fresh.load_state_dict({"mean": mean, "basis": basis})
    torch.testing.assert_close(fresh(x), (x - mean) @ basis)


def test_pca_settings_and_too_few_samples_fail_clearly():
    for name, settings in [
        ("seed", {"seed": -1}),
        ("oversamples", {"oversamples": 2.5}),
        ("power_iterations", {"power_iterations": -1}),
    ]:
        with pytest.raises(ValueError, match=f"PCA {name} must be an integer >= 0"):
            PCA(**settings)
    with pytest.raises(ValueError, match=r"PCA\(dim=3\) needs more than 3 training samples"):
        PCA(dim=3).fit(torch.randn(3, 10))


def test_random_projection_is_orthonormal_and_seeded():
    x = _correlated(50, 20)
    first, again = RandomProjection(5, seed=1).fit(x), RandomProjection(5, seed=1).fit(x)
    torch.testing.assert_close(first.basis.T @ first.basis, torch.eye(5), atol=1e-6, rtol=0)
    torch.testing.assert_close(first(x), again(x))
    assert not torch.allclose(first(x), RandomProjection(5, seed=2).fit(x)(x))


def test_identity_flattens():
    x = torch.randn(7, 2, 3)
    torch.testing.assert_close(Identity().fit(x)(x), x.reshape(7, 6))


def test_features_travel_in_the_state_dict():
    x = _correlated()
    fitted = PCA(dim=3).fit(x)
    fresh = PCA(dim=3).fit(x[:50])  # same shapes, other values
    fresh.load_state_dict(fitted.state_dict())
    torch.testing.assert_close(fresh(x), fitted(x))


def test_feature_errors_are_actionable():
    with pytest.raises(RuntimeError, match="not fitted"):
        PCA(dim=2)(torch.randn(3, 4))
    with pytest.raises(ValueError, match="fitted on 4 features"):
        PCA(dim=2).fit(torch.randn(10, 4))(torch.randn(3, 5))
    with pytest.raises(ValueError, match="dim"):
        PCA(dim=0)
    with pytest.raises(ValueError, match="dim"):
        RandomProjection(dim=2.5)
    with pytest.raises(ValueError, match="NaN"):
        PCA(dim=2).fit(torch.full((5, 4), float("nan")))


def test_classifier_features_learn_the_labels_and_are_cached(tmp_path, monkeypatch):
    from gan_je.data import Digits

    data = Digits(val_size=297)
    data.setup()
    (x, y), (x_val, y_val) = data.train_set.tensors, data.val_set.tensors
    features = Classifier(dim=8, cache_dir=str(tmp_path)).fit(x, y, kind=data.kind)
    assert features.accuracy(x_val, y_val) > 0.9
    assert features(x_val).shape == (297, 8)
    (cache,) = tmp_path.glob("classifier-*.pt")

    def no_training(*args: object) -> None:
        raise AssertionError("the second fit trained instead of reading the cache")

    read, load = [], torch.load

    def recording_load(f, *args, **kwargs):
        read.append(Path(f))
        return load(f, *args, **kwargs)

    monkeypatch.setattr(Classifier, "_train", no_training)
    monkeypatch.setattr(torch, "load", recording_load)
    again = Classifier(dim=8, cache_dir=str(tmp_path)).fit(x, y, kind=data.kind)
    assert read == [cache]
    assert torch.equal(again(x_val), features(x_val))  # untrained weights would differ


def test_a_classifier_cached_by_another_network_is_not_loaded(tmp_path, monkeypatch):
    x = torch.randn(40, 3)
    y = (x[:, 0] > 0).long()
    Classifier(dim=2, embedding=4, epochs=1, cache_dir=str(tmp_path)).fit(x, y, kind="points")
    network = Classifier._network

    def wider(self: Classifier, *args: object) -> torch.nn.Sequential:
        return torch.nn.Sequential(torch.nn.Linear(3, 3), *network(self, *args))

    monkeypatch.setattr(Classifier, "_network", wider)  # a later version's layers
    changed = Classifier(dim=2, embedding=4, epochs=1, cache_dir=str(tmp_path))
    changed.fit(x, y, kind="points")  # trains its own: the old weights would not load
    assert len(list(tmp_path.glob("classifier-*.pt"))) == 2


def test_classifier_features_need_labels_and_fitting():
    with pytest.raises(ValueError, match="label"):
        Classifier().fit(torch.randn(10, 2), None, kind="points")
    with pytest.raises(RuntimeError, match="not fitted"):
        Classifier()(torch.randn(3, 2))


# ------------------------------------------------- random streams, loading a fitted state


def _small_classifier(seed: int = 0) -> Classifier:
    return Classifier(dim=4, embedding=8, epochs=1, seed=seed)


def _labelled(shape: tuple[int, ...], n: int = 96, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=generator)
    return x, (x.flatten(1).mean(dim=1) > 0).long() + (x.flatten(1)[:, 0] > 1).long()


# (name, new unfitted map, training samples, labels or None, kind of sample or None)
MAPS = [
    ("pca", lambda: PCA(dim=3), _correlated(), None, None),
    ("pca-low-d", lambda: PCA(dim=8), _correlated(100, 2), None, None),
    ("random-projection", lambda: RandomProjection(5, seed=1), _correlated(50, 20), None, None),
    ("identity", Identity, torch.randn(7, 2, 3), None, None),
    ("classifier-images", _small_classifier, *_labelled((1, 8, 8)), "image"),
    ("classifier-flat", _small_classifier, *_labelled((5,)), "points"),
]


def _fit(new_map, x, labels, kind="image"):
    features = new_map()
    if getattr(features, "needs_labels", False):
        return features.fit(x, labels, kind=kind)
    return features.fit(x)


def _global_streams():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


@pytest.mark.parametrize(("name", "new_map", "x", "labels", "kind"), MAPS, ids=[m[0] for m in MAPS])
def test_fit_leaves_the_global_random_streams_alone(name, new_map, x, labels, kind):
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    torch_state, numpy_state, python_state = _global_streams()
    _fit(new_map, x, labels, kind)
    after = _global_streams()
    assert torch.equal(after[0], torch_state)
    assert after[1][0] == numpy_state[0] and np.array_equal(after[1][1], numpy_state[1])
    assert after[1][2:] == numpy_state[2:]
    assert after[2] == python_state


@pytest.mark.parametrize(("name", "new_map", "x", "labels", "kind"), MAPS, ids=[m[0] for m in MAPS])
def test_fits_with_the_same_seed_give_the_same_features(name, new_map, x, labels, kind):
    torch.manual_seed(1)
    first = _fit(new_map, x, labels, kind)
    torch.manual_seed(2)  # another global stream must not matter
    again = _fit(new_map, x, labels, kind)
    assert torch.equal(first(x), again(x))


def test_classifier_seed_sets_its_initial_weights():
    x, labels = _labelled((5,))
    first = _small_classifier(0).fit(x, labels, kind="points")
    other = _small_classifier(1).fit(x, labels, kind="points")
    assert not torch.equal(first.net[1].weight, other.net[1].weight)


@pytest.mark.parametrize(("name", "new_map", "x", "labels", "kind"), MAPS, ids=[m[0] for m in MAPS])
def test_a_fresh_map_loads_a_fitted_state_without_fitting(
    name, new_map, x, labels, kind, tmp_path, monkeypatch
):
    fitted = _fit(new_map, x, labels, kind)
    torch.save(fitted.state_dict(), tmp_path / "features.pt")
    state = torch.load(tmp_path / "features.pt", weights_only=True)

    fresh = new_map()
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh(x)

    def no_fit(*args: object) -> None:
        raise AssertionError("loading a state must not fit")

    monkeypatch.setattr(type(fresh), "fit", no_fit)
    fresh.load_state_dict(state)
    assert torch.equal(fresh(x), fitted(x))
    assert fresh.state_dict().keys() == fitted.state_dict().keys()


@pytest.mark.parametrize("new_map", [lambda: PCA(dim=3), _small_classifier])
def test_a_fitted_state_loads_inside_a_parent_module(new_map):
    """As in a checkpoint, where the map is the metric's ``features``."""
    x, labels = _labelled((1, 8, 8))
    fitted = nn.ModuleDict({"features": _fit(new_map, x, labels)})
    fresh = nn.ModuleDict({"features": new_map()})
    fresh.load_state_dict(fitted.state_dict())
    assert torch.equal(fresh["features"](x), fitted["features"](x))


@pytest.mark.parametrize("new_map", [lambda: PCA(dim=3), _small_classifier])
def test_an_unfitted_state_unfits_a_fitted_map(new_map):
    x, labels = _labelled((1, 8, 8))
    fitted = _fit(new_map, x, labels)
    fitted.load_state_dict(new_map().state_dict())
    with pytest.raises(RuntimeError, match="not fitted"):
        fitted(x)
    assert fitted.state_dict().keys() == new_map().state_dict().keys()


def test_a_state_fitted_with_other_settings_fails_to_load_with_a_clear_message():
    x = _correlated()  # 12 features per sample
    message = (
        r"PCA\(dim=4\) cannot load the state at '': its basis has shape \(12, 8\) and its "
        r"mean \(12,\), but this map's basis would be \(12, 4\) with a mean of \(12,\); "
        r"build the feature map with the settings it was fitted with"
    )
    with pytest.raises(RuntimeError, match=message):
        PCA(dim=4).load_state_dict(PCA(dim=8).fit(x).state_dict())
    with pytest.raises(RuntimeError, match=r"RandomProjection\(dim=3, seed=0\) cannot load"):
        RandomProjection(dim=3).load_state_dict(RandomProjection(dim=5).fit(x).state_dict())
    with pytest.raises(RuntimeError, match=r"PCA\(dim=2\) cannot load"):
        PCA(dim=2).load_state_dict(Identity().fit(x).state_dict())
    images, labels = _labelled((1, 8, 8))
    state = _small_classifier().fit(images, labels, kind="image").state_dict()
    with pytest.raises(RuntimeError, match=r"PCA\(dim=3\) cannot load the state at 'pca\.'"):
        Classifier(dim=3, embedding=8).load_state_dict(state)
    with pytest.raises(RuntimeError, match="size mismatch for net"):
        Classifier(dim=4, embedding=16).load_state_dict(state)


def test_a_classifier_state_without_its_network_shape_fails_clearly():
    images, labels = _labelled((1, 8, 8))
    state = _small_classifier().fit(images, labels, kind="image").state_dict()
    state["_extra_state"] = {"n_classes": 3}
    with pytest.raises(ValueError, match="cannot rebuild its network from the extra state"):
        _small_classifier().load_state_dict(state)


def test_the_kind_of_sample_chooses_the_classifier_network():
    """The same (1, 16, 16) samples get convolutions as images, a flat network as any kind
    without its own (points of 256 values, say)."""
    x, labels = _labelled((1, 16, 16))
    image = _small_classifier().fit(x, labels, kind="image")
    other = _small_classifier().fit(x, labels, kind="points")
    assert isinstance(image.net[0], nn.Conv2d) and not any(
        isinstance(layer, nn.Conv2d) for layer in other.net
    )
    assert other.net[1].in_features == 256
    with pytest.raises(ValueError, match="kind of sample"):
        _small_classifier().fit(x, labels, kind=None)


@pytest.mark.parametrize(("shape", "kind"), [((1, 8, 8), "image"), ((5,), "points")])
def test_a_classifier_state_from_before_kinds_loads(shape, kind):
    """A checkpoint written before kinds holds no kind: 3-D samples had the convolutions."""
    x, labels = _labelled(shape)
    fitted = _small_classifier().fit(x, labels, kind=kind)
    state = fitted.state_dict()
    del state["_extra_state"]["kind"]
    fresh = _small_classifier()
    fresh.load_state_dict(state)
    assert fresh.kind == kind and torch.equal(fresh(x), fitted(x))
