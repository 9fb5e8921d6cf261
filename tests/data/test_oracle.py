"""The synthetic oracle: SeqGAN's sizes, an exact log-likelihood checked by enumerating a tiny
oracle, its own samples as the data, seeded, cached and handed out one-hot."""

import itertools

import pytest
import torch
from hydra.utils import instantiate
from scipy.stats import chisquare
from torch.nn.functional import one_hot

from gan_je.data import Oracle
from gan_je.errors import DataError
from gan_je.seeding import generator


def tiny(**kwargs):
    """Vocabulary 3, length 4: all 81 sequences can be enumerated."""
    settings = {"vocab_size": 3, "length": 4, "embed_dim": 4, "hidden_dim": 5}
    return Oracle(**{**settings, "n_train": 200, "n_val": 100, **kwargs})


ALL_81 = torch.tensor(list(itertools.product(range(3), repeat=4)))


def test_the_defaults_are_seqgans_oracle_with_normal_parameters():
    dm = Oracle()
    oracle = dm.oracle
    assert (oracle.vocab_size, oracle.length) == (5000, 20)
    assert (oracle.embed_dim, oracle.hidden_dim) == (32, 32)
    assert (dm.n_train, dm.n_val) == (10_000, 10_000)
    assert dm.data_spec == {"kind": "tokens", "sample_shape": [20, 5000], "vocab_size": 5000}
    weights = oracle.embedding.detach()
    assert abs(float(weights.mean())) < 0.01 and abs(float(weights.std()) - 1) < 0.01
    assert not oracle.training
    assert not any(p.requires_grad for p in oracle.parameters())
    assert torch.equal(Oracle(oracle_seed=0).oracle.output.bias, oracle.output.bias)
    assert not torch.equal(Oracle(oracle_seed=1).oracle.output.bias, oracle.output.bias)


def test_the_tiny_oracles_probabilities_sum_to_one_over_all_81_sequences():
    p = tiny().log_prob(ALL_81).double().exp()
    assert p.shape == (81,) and bool((p > 0).all())
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)


def test_the_data_is_the_oracles_own_samples_at_their_log_prob_frequencies():
    dm = tiny(n_train=20_000, n_val=10, data_seed=5)
    dm.setup()
    expected = dm.oracle.sample(20_000, generator(5, "oracle", 0))
    assert torch.equal(dm.train_ids, expected)
    codes = (dm.train_ids * torch.tensor([27, 9, 3, 1])).sum(dim=1)
    counts = torch.bincount(codes, minlength=81).double()
    p = dm.log_prob(ALL_81).double().exp()
    test = chisquare(counts.numpy(), (p / p.sum() * 20_000).numpy())
    assert test.pvalue > 1e-3  # and a wrong log_prob (e.g. at another oracle) fails:
    other = tiny(oracle_seed=1).log_prob(ALL_81).double().exp()
    assert chisquare(counts.numpy(), (other / other.sum() * 20_000).numpy()).pvalue < 1e-10


def test_log_prob_takes_ids_or_one_hot_on_any_device_and_refuses_the_rest():
    dm = tiny()
    ids = ALL_81[::7]
    by_ids = dm.log_prob(ids)
    assert by_ids.dtype == torch.float32 and by_ids.device == ids.device
    assert torch.equal(dm.log_prob(one_hot(ids, 3).float()), by_ids)
    assert torch.equal(by_ids, dm.oracle.log_prob(ids))
    soft = one_hot(ids, 3).float() * 0.8 + 0.2 / 3
    with pytest.raises(ValueError, match="one-hot at every position"):
        dm.log_prob(soft)
    with pytest.raises(ValueError, match=r"shape \(n, 4, 3\)"):
        dm.log_prob(torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match=r"range\(3\)"):
        dm.log_prob(torch.full((2, 4), 3))
    with pytest.raises(ValueError, match=r"shape \(n >= 1, 4\)"):
        dm.log_prob(torch.zeros(2, 5, dtype=torch.int64))


def test_log_prob_in_batches_equals_one_pass(monkeypatch):
    dm = tiny()
    whole = dm.log_prob(ALL_81)
    monkeypatch.setattr("gan_je.data.oracle.BATCH_VALUES", 2 * 4 * 3)  # 2 rows a batch
    assert torch.allclose(dm.log_prob(ALL_81), whole, atol=1e-6)


def test_the_same_seeds_give_the_same_sequences_and_the_splits_their_own_streams():
    def ids(**kwargs):
        dm = tiny(**kwargs)
        dm.setup()
        return dm.train_ids, dm.val_ids

    train, val = ids(data_seed=3)
    assert train.shape == (200, 4) and val.shape == (100, 4)
    again = ids(data_seed=3)
    assert torch.equal(again[0], train) and torch.equal(again[1], val)
    assert not torch.equal(ids(data_seed=4)[0], train)
    assert torch.equal(ids(data_seed=3, n_train=50)[1], val)  # held-out set kept
    assert not torch.equal(ids(data_seed=3, oracle_seed=9)[0], train)


def test_loaders_hand_out_one_hot_sequences_of_the_stored_ids():
    dm = tiny(batch_size=8)
    dm.setup()
    val = torch.cat([x for x, _ in dm.val_dataloader()])
    assert torch.equal(val, one_hot(dm.val_ids, 3).float())
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 4, 3) and y.tolist() == [0] * 8 and dm.n_classes == 1
    assert torch.equal(dm.log_prob(x), dm.log_prob(x.argmax(-1)))


def test_the_sequences_are_cached_once_and_read_back(tmp_path, monkeypatch):
    dm = tiny(cache_dir=tmp_path, data_seed=2)
    dm.prepare_data()
    (cached,) = tmp_path.iterdir()
    assert cached == dm.cache_path and "seed0-data2-train200-val100" in cached.name
    dm.setup()

    def no_sampling(self, n, stream):
        raise AssertionError("sampled again")

    monkeypatch.setattr(Oracle, "sample_sequences", no_sampling)
    again = tiny(cache_dir=tmp_path, data_seed=2)
    again.setup()
    assert torch.equal(again.train_ids, dm.train_ids) and torch.equal(again.val_ids, dm.val_ids)
    with pytest.raises(AssertionError, match="sampled again"):
        tiny(cache_dir=tmp_path, data_seed=3).setup()  # another setting: another file
    cached.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="delete the file"):
        tiny(cache_dir=tmp_path, data_seed=2).setup()


def test_an_unwritable_cache_only_warns(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    dm = tiny(cache_dir=blocker / "oracle")
    dm.setup()
    assert dm.train_ids.shape == (200, 4) and "not cached" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"vocab_size": 1}, "vocab_size"), ({"n_train": 0}, "n_train"),
     ({"oracle_seed": -1}, "oracle_seed"), ({"length": 0}, "length")],
)  # fmt: skip
def test_bad_settings_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_data_oracle_composes_with_seqgans_sizes_and_a_cache_in_the_data_dir(
    train_config, tmp_path
):
    cfg = train_config("data=oracle", "data.n_train=64", "data.n_val=16")
    dm = instantiate(cfg.data)
    assert isinstance(dm, Oracle) and dm.vocab_size == 5000 and dm.length == 20
    assert dm.cache_dir == tmp_path / "data" / "oracle"
