"""TokenFeatures: the sequence feature space (a seeded token embedding, then PCA)."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from gan_je import parts
from gan_je.features import TokenFeatures, fit_feature_map
from gan_je.models.lstm import LSTMLanguageModel

V, L = 7, 5


def ids(n: int, seed: int = 0, vocab: int = V, length: int = L) -> torch.Tensor:
    return torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(seed))


def one_hot(x: torch.Tensor, vocab: int = V) -> torch.Tensor:
    return torch.nn.functional.one_hot(x, vocab).float()


@pytest.fixture(scope="module")
def fitted() -> TokenFeatures:
    return TokenFeatures(dim=3, embed_dim=4).fit_ids(ids(200), V)


def test_ids_and_one_hot_fit_the_same_map(fitted):
    from_one_hot = TokenFeatures(dim=3, embed_dim=4).fit(one_hot(ids(200)))
    x = one_hot(ids(20, seed=1))
    assert fitted(x).shape == (20, 3)
    torch.testing.assert_close(from_one_hot(x), fitted(x))


def test_distances_follow_the_hamming_distance():
    """With PCA keeping every direction, squared distances are about 2 x Hamming."""
    features = TokenFeatures(dim=L * 256, embed_dim=256).fit_ids(ids(50), V)
    a, b = ids(200, seed=2), ids(200, seed=3)
    squared = (features(one_hot(a)) - features(one_hot(b))).square().sum(dim=1)
    hamming = (a != b).sum(dim=1).double()
    assert float(torch.corrcoef(torch.stack([squared.double(), hamming]))[0, 1]) > 0.9
    assert float(squared.sum() / hamming.sum()) == pytest.approx(2.0, rel=0.2)


def test_linear_in_the_input_and_differentiable(fitted):
    """A softmax maps to the same mixture of its one-hot sequences' features."""
    a, b = one_hot(ids(10, seed=4)), one_hot(ids(10, seed=5))
    torch.testing.assert_close(fitted(0.3 * a + 0.7 * b), 0.3 * fitted(a) + 0.7 * fitted(b))
    logits = torch.randn(10, L, V, requires_grad=True)
    fitted(logits.softmax(dim=-1)).square().sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_fit_leaves_the_global_random_streams_alone_and_depends_on_the_seed():
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    first = TokenFeatures(dim=3, seed=5).fit_ids(ids(100), V)
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]
    again = TokenFeatures(dim=3, seed=5).fit_ids(ids(100), V)
    other = TokenFeatures(dim=3, seed=6).fit_ids(ids(100), V)
    assert torch.equal(first.embedding, again.embedding)
    assert not torch.equal(first.embedding, other.embedding)


def test_a_fresh_map_loads_a_fitted_state(fitted, tmp_path):
    torch.save(fitted.state_dict(), tmp_path / "features.pt")
    state = torch.load(tmp_path / "features.pt", weights_only=True)
    fresh = TokenFeatures(dim=3, embed_dim=4)
    x = one_hot(ids(8, seed=6))
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh(x)
    fresh.load_state_dict(state)
    assert torch.equal(fresh(x), fitted(x))
    with pytest.raises(RuntimeError, match="settings it was fitted with"):
        TokenFeatures(dim=3, embed_dim=5).load_state_dict(state)


def test_large_vocabularies_fit_from_ids_in_bounded_memory():
    """V = 5,000, L = 20 (the oracle's): the state is the embedding and a thin basis."""
    features = TokenFeatures(dim=8, embed_dim=16)
    data = SimpleNamespace(
        train_ids=ids(3000, vocab=5000, length=20),
        data_spec={"kind": "tokens", "sample_shape": [20, 5000], "vocab_size": 5000},
        stored=lambda split, max_n: ids(3000, vocab=5000, length=20)[:max_n],
        train_tensor=lambda max_n: pytest.fail("one-hot training samples were asked for"),
    )
    fit_feature_map(features, data, 2000, "tokens")
    sizes = {key: tuple(value.shape) for key, value in features.state_dict().items()}
    assert sizes == {"embedding": (5000, 16), "pca.mean": (320,), "pca.basis": (320, 8)}
    assert features(one_hot(ids(4, vocab=5000, length=20), 5000)).shape == (4, 8)


def test_bad_input(fitted):
    with pytest.raises(ValueError, match="range"):
        TokenFeatures().fit_ids(ids(20), V - 1)
    with pytest.raises(ValueError, match="fit_ids"):
        TokenFeatures().fit(ids(20))
    with pytest.raises(ValueError, match="vocabulary of 7"):
        fitted(one_hot(ids(3), V + 1))


def test_the_config_builds_the_map_as_a_registered_part():
    cfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "features" / "tokens.yaml")
    features = parts.build(parts.plain(cfg), "features")
    assert isinstance(features, TokenFeatures)
    assert (features.dim, features.embed_dim, features.seed) == (8, 64, 0)


def test_samples_of_a_language_model_fit():
    """The measured use: an oracle's samples (ids), then its one-hot samples."""
    oracle = LSTMLanguageModel(V, L).init_normal_(torch.Generator().manual_seed(0))
    samples = oracle.sample(300, torch.Generator().manual_seed(1))
    features = TokenFeatures(dim=4).fit_ids(samples, V)
    mapped = features(one_hot(samples)).double()
    # the same map another way: the seeded embedding drawn here, then an exact SVD's top 4
    embedding = torch.randn(V, 64, generator=torch.Generator().manual_seed(0)) / 8
    x = embedding[samples].flatten(1).double()
    x = x - x.mean(dim=0)
    top = torch.linalg.svd(x, full_matrices=False).Vh[:4].T
    projected = x @ top  # the same subspace, so the same Gram matrix whatever its basis
    torch.testing.assert_close(mapped @ mapped.T, projected @ projected.T, rtol=0, atol=1e-3)
