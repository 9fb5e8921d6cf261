"""Feature maps: PCA against scikit-learn, projections orthonormal, errors."""

import pytest
import torch
from sklearn import decomposition

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


def test_classifier_features_learn_the_labels_and_are_cached(tmp_path):
    from gan_je.data import Digits

    data = Digits(val_size=297)
    data.setup()
    (x, y), (x_val, y_val) = data.train_set.tensors, data.val_set.tensors
    features = Classifier(dim=8, cache_dir=str(tmp_path)).fit(x, y)
    assert features.accuracy(x_val, y_val) > 0.9
    assert features(x_val).shape == (297, 8)
    assert len(list(tmp_path.glob("classifier-*.pt"))) == 1
    again = Classifier(dim=8, cache_dir=str(tmp_path)).fit(x, y)  # loads the cached weights
    torch.testing.assert_close(again(x_val), features(x_val))


def test_classifier_features_need_labels_and_fitting():
    with pytest.raises(ValueError, match="label"):
        Classifier().fit(torch.randn(10, 2), None)
    with pytest.raises(RuntimeError, match="not fitted"):
        Classifier()(torch.randn(3, 2))
