"""Token data modules: ids stored, one-hot samples in every loader batch and tensor accessor,
and the exact resume and DDP sharding of the base loaders unchanged."""

import numpy as np
import pytest
import torch
from torch.nn.functional import one_hot

from gan_je.data import ArrayDataModule, TokenDataModule
from gan_je.data.kinds import kind_of
from gan_je.errors import ConfigError
from gan_je.seeding import stream_seed


class Counting(TokenDataModule):
    """Sequence i of the training split is (i, i+1, ..., i+L-1) mod V: its first id names it."""

    def __init__(self, n=40, length=3, vocab=50, symbols=None, **kwargs):
        super().__init__(length, **kwargs)
        self.n, self.vocab, self._symbol_list = n, vocab, symbols

    @property
    def vocab_size(self):
        return self.vocab

    @property
    def symbols(self):
        return self._symbol_list

    def _load(self):
        ids = (torch.arange(self.n)[:, None] + torch.arange(self.length)) % self.vocab
        return ids, torch.zeros(self.n), ids[:7].flip(0), torch.zeros(7)


def loaded(**kwargs):
    dm = Counting(**kwargs)
    dm.setup()
    return dm


def test_ids_are_stored_as_int64_and_handed_out_one_hot():
    dm = loaded(batch_size=4, seed=3)
    assert dm.train_ids.dtype == torch.int64 and dm.train_ids.shape == (40, 3)
    assert dm.train_set.tensors[0] is dm.train_ids  # no float copy kept
    assert dm.val_ids.tolist() == [[i, i + 1, i + 2] for i in range(6, -1, -1)]
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)
    batches = list(loader)
    order = np.random.default_rng(stream_seed(3, "shuffle", 1)).permutation(40).tolist()
    assert len(batches) == 10
    for b, (x, y) in enumerate(batches):
        assert x.dtype == torch.float32 and x.shape == (4, 3, 50)
        assert torch.equal(x, one_hot(dm.train_ids[order[4 * b : 4 * b + 4]], 50).float())
        assert y.tolist() == [0, 0, 0, 0]
    val = torch.cat([x for x, _ in dm.val_dataloader()])
    assert torch.equal(val, one_hot(dm.val_ids, 50).float())


def test_tensor_accessors_give_one_hot_samples_of_the_seeded_subsets():
    dm = loaded(data_seed=11)
    assert torch.equal(dm.train_tensor(), one_hot(dm.train_ids, 50).float())
    keep = torch.randperm(40, generator=torch.Generator().manual_seed(11))[:5].sort().values
    assert torch.equal(dm.train_tensor(5), one_hot(dm.train_ids[keep], 50).float())
    keep = torch.randperm(7, generator=torch.Generator().manual_seed(11))[:3].sort().values
    assert torch.equal(dm.val_tensor(3), one_hot(dm.val_ids[keep], 50).float())
    assert torch.equal(dm.val_tensor(), one_hot(dm.val_ids, 50).float())


def test_one_hot_samples_that_cannot_fit_in_memory_are_refused(monkeypatch):
    dm = loaded()
    monkeypatch.setattr("gan_je.checks.available_memory", lambda: 10 * 3 * 50 * 4)
    assert dm.train_tensor(10).shape == (10, 3, 50)
    with pytest.raises(
        ConfigError, match=r"one-hot samples=11 needs .* at most one-hot samples=10"
    ):
        dm.train_tensor(11)


def test_a_resumed_epoch_continues_with_the_same_one_hot_batches():
    dm = loaded(batch_size=4, seed=2)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(3)
    batches = iter(loader)
    first = [next(batches)[0] for _ in range(3)]
    state = loader.state_dict()
    rest = [x for x, _ in batches]
    again = loaded(batch_size=4, seed=2).train_dataloader()
    again.load_state_dict(state)
    again.sampler.set_epoch(3)
    resumed = [x for x, _ in again]
    assert len(resumed) == len(rest) == 7
    assert all(torch.equal(a, b) for a, b in zip(resumed, rest, strict=True))
    assert not any(torch.equal(first[0], b) for b in resumed)


def test_under_ddp_each_process_gets_one_hot_batches_of_its_shard(monkeypatch):
    dm = loaded(batch_size=2, seed=4)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(torch.distributed, "get_rank", lambda rank=rank: rank)
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(0)
        seen += [x.argmax(-1)[:, 0] for x, _ in loader]
        val = torch.cat([x for x, _ in dm.val_dataloader()])
        assert torch.equal(val, one_hot(dm.val_ids[rank::2], 50).float())
    assert sorted(torch.cat(seen).tolist()) == list(range(40))  # each sequence once


def test_the_spec_is_the_token_kinds_with_symbols_where_given():
    dm = Counting(vocab=3, symbols=["", "a", "b"])
    assert dm.sample_shape == (3, 3) and dm.n_classes == 1  # known before setup
    spec = dm.data_spec
    assert spec == {"kind": "tokens", "sample_shape": [3, 3], "vocab_size": 3,
                    "symbols": ["", "a", "b"]}  # fmt: skip
    assert kind_of(spec).name == "tokens"
    assert "symbols" not in Counting(vocab=3).data_spec
    with pytest.raises(ValueError, match="3 strings, one per token id; got 2"):
        Counting(vocab=3, symbols=["", "a"]).data_spec  # noqa: B018


def test_setup_refuses_ids_outside_the_vocabulary_or_of_another_length():
    class Stored(Counting):
        def __init__(self, ids):
            super().__init__(length=3, vocab=50)
            self.ids = ids

        def _load(self):
            return self.ids, torch.zeros(len(self.ids)), self.ids, torch.zeros(len(self.ids))

    with pytest.raises(ValueError, match=r"train ids must lie in range\(50\), got .* to 50"):
        Stored(torch.full((4, 3), 50)).setup()
    with pytest.raises(ValueError, match=r"train ids must have shape \(n >= 1, 3\), got \(4, 2\)"):
        Stored(torch.zeros(4, 2)).setup()
    Stored(torch.full((4, 3), 49)).setup()


def test_other_modules_still_hand_out_what_they_store():
    class Points(ArrayDataModule):
        def _load(self):
            x = torch.arange(16.0).reshape(8, 2)
            return x, torch.arange(8), x[:3], torch.arange(3)

    dm = Points(batch_size=4)
    dm.setup()
    assert dm.train_set.tensors[0].dtype == torch.float32
    assert dm.train_tensor() is dm.train_set.tensors[0]  # no copy
    assert torch.equal(next(iter(dm.val_dataloader()))[0], dm.val_set.tensors[0])
