"""gan_je.checkpoints without training: the random state a checkpoint keeps, where the last
checkpoint is, and the writer Lightning is given."""

import io
import random

import numpy as np
import pytest
import torch

from gan_je import checkpoints
from gan_je.errors import CheckpointError


def _draws() -> tuple:
    return torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)]


def test_the_random_state_survives_a_weights_only_checkpoint_and_replays_the_streams():
    torch.manual_seed(5)
    np.random.seed(6)
    random.seed(7)
    file = io.BytesIO()
    torch.save({"rng": checkpoints.random_state()}, file)
    expected = _draws()
    _draws()  # the streams move on
    file.seek(0)
    checkpoints.restore_random_state(torch.load(file, weights_only=True)["rng"])
    replayed = _draws()
    assert torch.equal(replayed[0], expected[0])
    np.testing.assert_array_equal(replayed[1], expected[1])
    assert replayed[2] == expected[2]


def test_a_random_state_missing_a_stream_is_refused():
    state = checkpoints.random_state()
    del state["numpy"]
    with pytest.raises(CheckpointError, match="random state lacks numpy"):
        checkpoints.restore_random_state(state)


def test_the_last_checkpoint_and_the_atomic_writer(tmp_path):
    assert checkpoints.last_checkpoint(tmp_path) == tmp_path / "checkpoints" / "last.ckpt"
    writer = checkpoints.AtomicCheckpointIO()
    assert type(writer).__qualname__ == "AtomicCheckpointIO"
    assert checkpoints.AtomicCheckpointIO is type(writer)  # defined once
    writer.save_checkpoint({"g_step": 3}, tmp_path / "a.ckpt")
    assert torch.load(tmp_path / "a.ckpt", weights_only=True) == {"g_step": 3}
    with pytest.raises(AttributeError, match="no attribute 'Missing'"):
        checkpoints.Missing  # noqa: B018


def test_load_module_needs_a_class(tmp_path):
    with pytest.raises(TypeError, match="module_class must be a class"):
        checkpoints.load_module("GANModule", tmp_path / "x.ckpt")


def test_data_rebuilt_with_another_vocabulary_than_the_checkpoints_is_refused(tmp_path):
    from types import SimpleNamespace

    from gan_je.data import TextLines

    corpus = tmp_path / "lines.txt"
    corpus.write_text("abab\nbaba\n" * 5, encoding="utf-8")
    config = {
        "_target_": "gan_je.data.TextLines",
        "path": str(corpus),
        "length": 4,
        "min_count": 1,
        "val_size": 2,
    }
    trained = TextLines(path=corpus, length=4, min_count=1, val_size=2)
    trained.setup("fit")
    module = SimpleNamespace(
        hparams={"run_config": {"data": config}, "data_spec": trained.data_spec}
    )
    assert checkpoints.load_data(module).symbols == trained.symbols  # the same corpus loads
    corpus.write_text("abab\nbaba\n" * 5 + "cccc\n" * 3, encoding="utf-8")  # a new character
    with pytest.raises(CheckpointError, match=r"the vocabulary \(symbols\)") as refused:
        checkpoints.load_data(module)
    assert "'c'" not in str(refused.value)  # not the whole list
