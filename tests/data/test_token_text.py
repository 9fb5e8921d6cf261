"""Token sequences as text: the spec's ``symbols``, the one decoding, the picture, the ``txt``
file, the W&B table and TensorBoard text, the run directory's ``.txt`` and ``generate
format=txt``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import wandb
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import OmegaConf
from PIL import Image

from gan_je.callbacks import SamplePictures
from gan_je.data.kinds import kind_of
from gan_je.errors import ConfigError
from gan_je.generate import run as generate
from gan_je.loggers import STEP_METRIC, wandb_logger
from gan_je.pictures import show_tokens
from gan_je.sampling import build_generator
from gan_je.text import one_line
from tests.test_wandb_charts import offline_runs, read_run

CONF = Path(__file__).resolve().parents[2] / "conf"
#: Symbols that a careless writer would get wrong: the pad "", line breaks, a backslash, the
#: unknown symbol, non-ASCII letters, a CJK character (no glyph in matplotlib's font) and "$".
SYMBOLS = ["", "a", "\n", "\\", "\ufffd", "é", "字", "$", "\u2028", "\r"]
SPEC = {"kind": "tokens", "sample_shape": [6, len(SYMBOLS)], "vocab_size": len(SYMBOLS)}
TEXT = {**SPEC, "symbols": SYMBOLS}
IDS = torch.tensor([[1, 2, 3, 0, 5, 6], [7, 1, 8, 9, 4, 0], [0, 0, 0, 0, 0, 0]])


def _read_line(line: str) -> str:
    """A line of a ``txt`` file read back: the escapes of a Python string literal undone."""
    return line.encode("latin-1", "backslashreplace").decode("unicode_escape")


def _read_txt(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8")
    assert text.endswith("\n") and len(text.splitlines()) == text.count("\n")  # no stray breaks
    return [_read_line(line) for line in text.split("\n")[:-1]]


def _samples(ids: torch.Tensor, vocab: int, seed: int = 0) -> torch.Tensor:
    """Softmax-like samples whose most likely token at each position is ``ids``."""
    noise = torch.rand(*ids.shape, vocab, generator=torch.Generator().manual_seed(seed))
    return torch.softmax(noise + 5 * torch.nn.functional.one_hot(ids, vocab), dim=-1)


def test_decode_joins_the_symbols_or_spaces_the_ids():
    assert kind_of(TEXT).decode(IDS) == ["a\n\\é字", "$a\u2028\r\ufffd", ""]
    assert kind_of(SPEC).decode(IDS) == ["1 2 3 0 5 6", "7 1 8 9 4 0", "0 0 0 0 0 0"]
    assert kind_of(TEXT).decode(IDS.numpy().astype(np.int32)) == kind_of(TEXT).decode(IDS)
    assert kind_of(TEXT).decode_samples(_samples(IDS, len(SYMBOLS))) == kind_of(TEXT).decode(IDS)
    symbols = OmegaConf.create(["x", "y"])  # as a Hydra config would give them
    assert kind_of({"kind": "tokens", "sample_shape": [2, 2], "vocab_size": 2, "symbols": symbols})


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        (IDS.float(), "ids must be token ids, an integer tensor"),
        (IDS[0], r"ids must have shape \(n >= 1, 6\), got \(6,\)"),
        (IDS[:, :5], r"ids must have shape \(n >= 1, 6\), got \(3, 5\)"),
        (IDS + 1, r"ids must lie in range\(10\), got values from 1 to 10"),
        (IDS - 1, r"got values from -1 to 8"),
    ],
)
def test_decode_refuses_what_are_not_token_ids(ids, match):
    with pytest.raises(ValueError, match=match):
        kind_of(TEXT).decode(ids)


def test_decode_samples_refuses_another_shape():
    with pytest.raises(ValueError, match=r"shape \(n, 6, 10\), got \(3, 6, 9\)"):
        kind_of(TEXT).decode_samples(torch.rand(3, 6, 9))


@pytest.mark.parametrize(
    ("symbols", "match"),
    [
        (SYMBOLS[:-1], "list of 10 strings, one per token id; got 9"),
        ([*SYMBOLS, "z"], "one per token id; got 11"),
        ("abcdefghij", r"list of 10 strings, symbols\[i\] spelling token i; got 'abcdefghij'"),
        ([*SYMBOLS[:3], 3, *SYMBOLS[4:]], r"symbols\[3\] is 3, not a string"),
        ([*SYMBOLS[:3], None, *SYMBOLS[4:]], r"symbols\[3\] is None, not a string"),
        ([*SYMBOLS[:9], "\udc80"], r"symbols\[9\] is '\\udc80', not writable as UTF-8"),
    ],
)
def test_symbols_that_do_not_spell_every_token_are_refused(symbols, match):
    with pytest.raises(ConfigError, match=match):
        kind_of({**SPEC, "symbols": symbols})


def test_one_line_escapes_every_line_break_and_reads_back():
    every = "".join(map(chr, range(0xD800)))  # every code point below the surrogates
    assert len(one_line(every).splitlines()) == 1
    assert _read_line(one_line(every)) == every
    assert one_line("a\\n\nb\u2028") == "a\\\\n\\nb\\u2028"
    assert one_line("é字 $\t") == "é字 $\t"  # everything else as it is


def test_txt_is_offered_for_tokens_only_and_reads_back_as_decode(tmp_path):
    kind = kind_of(TEXT)
    assert kind.formats == ("png", "npz", "txt") and kind.companion_formats == ("txt",)
    samples = _samples(IDS, len(SYMBOLS))
    kind.write(samples, tmp_path / "out" / "s.txt", "txt", "t", strip=False)
    assert _read_txt(tmp_path / "out" / "s.txt") == kind.decode(IDS)
    assert list(tmp_path.joinpath("out").iterdir()) == [tmp_path / "out" / "s.txt"]  # atomic
    kind_of(SPEC).write(samples, tmp_path / "ids.txt", "txt", "t", strip=False)
    assert (tmp_path / "ids.txt").read_text() == "1 2 3 0 5 6\n7 1 8 9 4 0\n0 0 0 0 0 0\n"
    image = kind_of({"kind": "image", "sample_shape": [1, 2, 2]})
    assert image.companion_formats == ()
    with pytest.raises(ConfigError, match="format=txt is not offered for samples of kind 'image'"):
        image.write(torch.zeros(1, 1, 2, 2), tmp_path / "i.txt", "txt", "t", strip=False)


def _pixels(tmp_path: Path, lines: list[str]) -> np.ndarray:
    path = tmp_path / "lines.png"
    show_tokens(lines, path, "title")
    return np.asarray(Image.open(path).convert("L"))


def test_the_picture_draws_decoded_text_and_a_missing_glyph_visibly(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of a glyph its font lacks
        kind_of(TEXT).picture(_samples(IDS, len(SYMBOLS)), tmp_path / "text.png", "t")
        cjk = _pixels(tmp_path, ["a字"])
        tab = _pixels(tmp_path, ["a\t"])
        dollars = _pixels(tmp_path, [r"$\frac{$ $$"])  # mathtext would fail on it
    assert np.array_equal(cjk, _pixels(tmp_path, ["a\ufffd"]))  # the replacement character
    assert np.array_equal(tab, _pixels(tmp_path, ["a\ufffd"]))
    assert not np.array_equal(cjk, _pixels(tmp_path, ["a"]))
    assert not np.array_equal(_pixels(tmp_path, ["aé"]), _pixels(tmp_path, ["a\ufffd"]))
    assert (dollars < 128).any()
    for bad in (["one\ntwo"], [], "ab", [3]):
        with pytest.raises(ValueError, match=r"one sequence a line|list of strings"):
            show_tokens(bad, tmp_path / "bad.png", "t")


def test_the_loggers_receive_the_decoded_samples(wandb_offline, tmp_path):
    """W&B: a table (index, text) under ``samples_text`` at the generator step, beside the
    picture; TensorBoard: the same lines, escaped, as a text summary."""
    kind, samples = kind_of(TEXT), _samples(IDS, len(SYMBOLS))
    picture = tmp_path / "samples.png"
    kind.picture(samples, picture, "t")
    run_dir = tmp_path / "run"
    board = TensorBoardLogger(save_dir=str(tmp_path / "tb"), name="", version="")
    trainer = SimpleNamespace(loggers=[wandb_logger(save_dir=str(run_dir)), board])
    kind.send(trainer, "samples", picture, samples, g_step=7)
    wandb.finish()
    board.experiment.flush()

    (run_file,) = offline_runs(run_dir)
    picture_row, row = read_run(run_file)["rows"]
    assert picture_row[STEP_METRIC] == row[STEP_METRIC] == 7
    assert picture_row["samples/_type"] == "image-file"
    assert row["samples_text/_type"] == "table-file"
    table = json.loads((run_file.parent / "files" / row["samples_text/path"]).read_text())
    assert table["columns"] == ["index", "text"]
    assert table["data"] == [[i, text] for i, text in enumerate(kind.decode(IDS))]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
    (event,) = events.Reload().Tensors("samples_text/text_summary")
    text = event.tensor_proto.string_val[0].decode("utf-8")
    assert event.step == 7 and text.split("\n") == [
        "    a\\n\\\\é字",
        "    $a\\u2028\\r\ufffd",
        "    ",
    ]


def test_the_sample_callback_writes_the_decoded_samples_beside_the_picture(tmp_path):
    samples = _samples(IDS, len(SYMBOLS))
    trainer = SimpleNamespace(is_global_zero=True, sanity_checking=False, current_epoch=2)
    trainer.loggers = []
    module = SimpleNamespace(hparams=SimpleNamespace(data_spec=TEXT), g_step=40)
    module.preview = lambda: samples
    SamplePictures(str(tmp_path)).on_validation_end(trainer, module)
    folder = tmp_path / "samples"
    assert sorted(p.name for p in folder.iterdir()) == [
        "epoch002-g000040.png",
        "epoch002-g000040.txt",
    ]
    assert _read_txt(folder / "epoch002-g000040.txt") == kind_of(TEXT).decode(IDS)


def _generate(*overrides: str) -> Path:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return generate(compose(config_name="generate", overrides=list(overrides)))


def test_generate_writes_the_decoded_samples_of_a_token_checkpoint(tmp_path):
    """A checkpoint of an MLP generator on text (no training: what ``load_sampler`` reads);
    ``format=txt`` writes what ``format=npz``'s samples decode to, seed for seed."""
    description = {"_target_": "gan_je.models.MLPGenerator", "_partial_": True, "hidden": 16}
    network = build_generator(description, TEXT)
    state = {f"generator.{name}": tensor for name, tensor in network.state_dict().items()}
    checkpoint = tmp_path / "last.ckpt"
    hparams = {"generator": description, "data_spec": TEXT}
    torch.save({"hyper_parameters": hparams, "state_dict": state, "g_step": 3}, checkpoint)

    txt = _generate(f"ckpt_path={checkpoint}", "format=txt", "n=20", "seed=4")
    assert txt == tmp_path / "last-samples.txt"
    npz = _generate(f"ckpt_path={checkpoint}", "format=npz", "n=20", "seed=4")
    samples = torch.from_numpy(np.load(npz)["samples"])
    lines = _read_txt(txt)
    assert lines == kind_of(TEXT).decode(samples.argmax(-1)) and len(set(lines)) > 1
    out = _generate(f"ckpt_path={checkpoint}", "format=txt", "n=2", f"out={tmp_path}/two.txt")
    assert len(_read_txt(out)) == 2


def test_generate_txt_keeps_only_ids_and_makes_one_hot_samples_a_chunk_at_a_time(
    tmp_path, monkeypatch
):
    """One-hot samples take L * V floats each (8 GB for 10,000 at V = 5,000): ``format=txt``
    makes them a chunk at a time and keeps ids, so it fits where ``format=npz`` does not."""
    from gan_je import checks, sampling
    from gan_je.errors import ConfigError

    description = {"_target_": "gan_je.models.MLPGenerator", "_partial_": True, "hidden": 16}
    network = build_generator(description, TEXT)
    state = {f"generator.{name}": tensor for name, tensor in network.state_dict().items()}
    checkpoint = tmp_path / "last.ckpt"
    hparams = {"generator": description, "data_spec": TEXT}
    torch.save({"hyper_parameters": hparams, "state_dict": state, "g_step": 3}, checkpoint)
    n, (length, vocab) = 3000, SPEC["sample_shape"]
    monkeypatch.setattr(checks, "available_memory", lambda: n * 2 * 4 * length * vocab // 2)
    monkeypatch.setattr(sampling, "CHUNK_BYTES", 100 * 4 * length * vocab)
    made, apply = [], sampling.apply
    monkeypatch.setattr(sampling, "apply", lambda net, z: made.append(len(z)) or apply(net, z))
    with pytest.raises(ConfigError, match="n=3000 needs"):
        _generate(f"ckpt_path={checkpoint}", "format=npz", f"n={n}")
    assert len(_read_txt(_generate(f"ckpt_path={checkpoint}", "format=txt", f"n={n}"))) == n
    assert sum(made) == n and max(made) == 100


def test_generate_samples_an_autoregressive_generator_at_the_temperature_asked(tmp_path):
    from gan_je import sampling
    from gan_je.errors import ConfigError

    def saved(description, name):
        network = build_generator(description, TEXT)
        state = {f"generator.{key}": value for key, value in network.state_dict().items()}
        hparams = {"generator": description, "data_spec": TEXT}
        torch.save({"hyper_parameters": hparams, "state_dict": state}, tmp_path / name)
        return network.eval(), tmp_path / name

    lstm, checkpoint = saved(
        {"_target_": "gan_je.models.LSTMGenerator", "_partial_": True}, "l.ckpt"
    )
    npz = _generate(f"ckpt_path={checkpoint}", "format=npz", "n=50", "temperature=0.2")
    lstm.temperature = 0.2
    expected = sampling.draw(lstm, 50, sampling.seeded(0))
    assert torch.equal(torch.from_numpy(np.load(npz)["samples"]), expected)
    npz = _generate(f"ckpt_path={checkpoint}", "format=npz", "n=50", "temperature=null")
    assert not torch.equal(torch.from_numpy(np.load(npz)["samples"]), expected)
    mlp = {"_target_": "gan_je.models.MLPGenerator", "_partial_": True, "hidden": 16}
    _, checkpoint = saved(mlp, "m.ckpt")
    with pytest.raises(ConfigError, match="MLPGenerator has no sampling temperature"):
        _generate(f"ckpt_path={checkpoint}", "temperature=0.5")
