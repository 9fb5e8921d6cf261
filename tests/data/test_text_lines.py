"""Lines of characters: cut and padded, split by seed, a vocabulary of the training lines with
one unknown symbol, fortunes as the default corpus, and one sentence when text is missing."""

import importlib.util

import pytest
import torch
from hydra.utils import instantiate
from torch.nn.functional import one_hot

from gan_je.data import TextLines
from gan_je.data.kinds import kind_of
from gan_je.data.text_lines import PAD, UNKNOWN, encode, read_lines, vocabulary
from gan_je.errors import DataError


def text_file(tmp_path, lines, name="lines.txt"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def decode(dm, ids):
    """The text of ids ``(n, L)``, as the data's kind of sample decodes them."""
    return kind_of(dm.data_spec).decode(ids)


def loaded(path, **kwargs):
    dm = TextLines(path=path, **kwargs)
    dm.prepare_data()
    dm.setup()
    return dm


def test_lines_are_cut_or_padded_and_decode_back(tmp_path):
    # whitespace runs become one space; every character is in two lines, so in training
    lines = ["abcdefgh", "dcba", "abc", "ba", "cab", "a  b\tc d", "d c"]
    dm = loaded(text_file(tmp_path, lines), length=4, min_count=1, val_size=1)
    assert dm.symbols == [PAD, UNKNOWN, " ", "a", "b", "c", "d"]
    every = torch.cat([dm.train_ids, dm.val_ids])
    assert sorted(decode(dm, every)) == sorted(["abcd", "dcba", "abc", "ba", "cab", "a b ", "d c"])
    assert every[:, 3].tolist().count(0) == 4 and bool((every[:, 3][every[:, 2] == 0] == 0).all())


def test_encode_cuts_pads_and_maps_unknown_characters():
    symbols = [PAD, UNKNOWN, "a", "b"]
    ids = encode(["abba", "ab", "axbbbb", ""], symbols, 4)
    assert ids.tolist() == [[2, 3, 3, 2], [2, 3, 0, 0], [2, 1, 3, 3], [0, 0, 0, 0]]
    assert encode([], symbols, 4).shape == (0, 4)


def test_the_vocabulary_keeps_characters_seen_min_count_times_in_the_cut_lines():
    lines = ["aab", "ab" + "z" * 10, "ac"]
    assert vocabulary(lines, 3, min_count=2) == [PAD, UNKNOWN, "a", "b"]
    assert vocabulary(lines, 3, min_count=1) == [PAD, UNKNOWN, "a", "b", "c", "z"]
    assert vocabulary(lines, 12, min_count=9) == [PAD, UNKNOWN, "z"]
    assert vocabulary([UNKNOWN * 5], 5, 1) == [PAD, UNKNOWN]  # the unknown symbol once


def test_the_vocabulary_comes_from_the_training_lines_only(tmp_path):
    lines = ["ab a", "b ab"] * 5 + ["QQQQ"]
    path = text_file(tmp_path, lines)
    for seed in range(20):
        dm = loaded(path, length=6, min_count=1, val_size=3, data_seed=seed)
        val_text = decode(dm, dm.val_ids)
        if "QQQQ" in [decode(dm, row[None])[0] for row in dm.train_ids]:
            assert "Q" in dm.symbols
            continue
        # the line of Q's is held out: Q is no symbol, and that line decodes as unknowns
        assert "Q" not in dm.symbols and UNKNOWN * 4 in val_text
        assert dm.symbols == [PAD, UNKNOWN, " ", "a", "b"] and dm.vocab_size == 5
        return
    pytest.fail("no seed of 20 held the line of Q's out")


def test_rare_characters_map_to_one_unknown_id(tmp_path):
    lines = ["aaaa", "abab", "baba", "bbbb", "xyzw", "aabb"]
    dm = loaded(text_file(tmp_path, lines), length=4, min_count=3, val_size=1, data_seed=0)
    assert "x" not in dm.symbols and UNKNOWN in dm.symbols
    every = torch.cat([dm.train_ids, dm.val_ids])
    text = decode(dm, every)
    assert UNKNOWN * 4 in text
    assert dm.symbols.index(UNKNOWN) == 1 and dm.symbols.index(PAD) == 0


def test_the_split_is_by_line_and_seeded(tmp_path):
    path = text_file(tmp_path, [f"{i:03d}" for i in range(50)])

    def split(seed):
        dm = loaded(path, length=3, min_count=1, val_size=0.2, data_seed=seed)
        return decode(dm, dm.train_ids), decode(dm, dm.val_ids)

    train, val = split(7)
    assert len(val) == 10 and sorted(train + val) == [f"{i:03d}" for i in range(50)]
    assert split(7) == (train, val)
    assert set(split(8)[1]) != set(val)


def test_loaders_hand_out_one_hot_lines_and_the_spec_has_plain_symbols(tmp_path):
    dm = loaded(text_file(tmp_path, ["ab", "ba", "aa", "bb"] * 4), length=3, min_count=1,
                val_size=4, batch_size=4)  # fmt: skip
    spec = dm.data_spec
    assert spec["kind"] == "tokens" and spec["sample_shape"] == [3, 4] and spec["vocab_size"] == 4
    assert spec["symbols"] == ["", "\ufffd", "a", "b"]
    assert all(type(s) is str for s in spec["symbols"])
    val = torch.cat([x for x, _ in dm.val_dataloader()])
    assert torch.equal(val, one_hot(dm.val_ids, 4).float())
    assert bool((dm.val_ids[:, 2] == 0).all())  # two characters and a pad


def test_a_folder_is_read_recursively_in_order_without_hidden_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    text_file(tmp_path / "sub", ["second"], "b.txt")
    text_file(tmp_path, ["first", "", "   "], "a.txt")  # blank lines skipped
    text_file(tmp_path / ".git", ["hidden"], "c.txt")
    text_file(tmp_path, ["hidden too"], ".d.txt")
    dm = TextLines(path=tmp_path)
    assert [p.name for p in dm._files()] == ["a.txt", "b.txt"]
    assert read_lines(dm._files()) == ["first", "second"]


def test_fortunes_are_the_records_between_percent_lines(tmp_path):
    path = tmp_path / "fortunes"
    path.write_text("One fortune\n  wrapped here.\n%\nTwo\x08\x08 \x07\n%\n%\nThree\r\n%\r\n")
    assert read_lines([path], fortunes=True) == ["One fortune wrapped here.", "Two", "Three"]
    assert read_lines([path]) == ["One fortune", "wrapped here.", "%", "Two", "%", "%", "Three",
                                  "%"]  # fmt: skip


@pytest.mark.skipif(importlib.util.find_spec("fortune") is None, reason="pip install fortune")
def test_the_default_corpus_is_the_fortunes_one_a_line():
    dm = loaded(None)
    n = len(dm.train_ids) + len(dm.val_ids)
    assert 14_000 < n < 17_000 and len(dm.val_ids) == round(0.1 * n)
    assert dm.sample_shape[0] == 32 and 60 < dm.vocab_size < 120
    text = decode(dm, dm.train_ids)
    assert not any(line.strip() == "%" or "\n" in line for line in text)
    assert float((dm.train_ids == 1).float().mean()) < 1e-3  # unknown characters are rare


def test_a_missing_corpus_says_how_to_get_one(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "fortune" else real_find_spec(name, *a),
    )
    with pytest.raises(DataError) as info:
        TextLines().prepare_data()
    message = str(info.value)
    assert "pip install 'gan_je[text]'" in message and "data.path=" in message
    assert "\n" not in message
    with pytest.raises(DataError, match=r"does not exist: give data\.path="):
        TextLines(path=tmp_path / "nothing").prepare_data()
    with pytest.raises(DataError, match="holds no files"):
        TextLines(path=tmp_path).prepare_data()


def test_unreadable_or_too_little_text_is_one_sentence(tmp_path):
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(DataError, match="is not UTF-8 text"):
        TextLines(path=binary).setup()
    with pytest.raises(DataError, match="too few to split"):
        TextLines(path=text_file(tmp_path, ["only one", " "])).setup()


def test_the_vocabulary_needs_the_data_first(tmp_path):
    dm = TextLines(path=text_file(tmp_path, ["ab", "cd"]))
    with pytest.raises(RuntimeError, match="setup"):
        dm.vocab_size  # noqa: B018
    with pytest.raises(ValueError, match="min_count"):
        TextLines(min_count=0)


def test_data_text_composes_with_gulrajanis_length_and_reads_data_path(train_config, tmp_path):
    path = text_file(tmp_path, ["hello", "world"] * 20)  # each character over min_count
    dm = instantiate(train_config("data=text", f"data.path={path}").data)
    assert isinstance(dm, TextLines) and dm.length == 32 and dm.path == path
    dm.setup()
    assert dm.data_spec["sample_shape"] == [32, len(set("helowrd")) + 2]
    assert instantiate(train_config("data=text").data).path is None  # the fortunes
