"""SpokenDigits: clips of the ten digit words synthesised by eSpeak NG, voices held out for
validation, the set cached on disk (tiny sets: a few voices, built in about a second)."""

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gan_je.audio import to_pcm16
from gan_je.data import SpokenDigits, speech
from gan_je.data import spoken_digits as module
from gan_je.data.spoken_digits import (
    DIGITS,
    ClipChoice,
    held_out,
    make_clip,
    plan_clips,
)
from gan_je.errors import ConfigError
from gan_je.extras import MissingExtraError

pytest.importorskip("espeakng_loader")

#: two accents x three variants x ten digits: 60 clips
TINY = {"accents": ["en-us", "en"], "variants": ["f1", "m1", "m3"], "clips_per_word": 1}


def _tiny(**settings) -> SpokenDigits:
    return SpokenDigits(**{**TINY, "val_variants": 1, **settings})


@pytest.mark.parametrize(("rate", "length"), [(8000, 8192), (16000, 16384)])
def test_clips_have_the_rate_and_length_and_stay_within_the_peak(tmp_path, rate, length):
    dm = _tiny(sample_rate=rate, cache_dir=tmp_path)
    assert dm.data_spec == {"kind": "waveform", "sample_shape": [1, length], "sample_rate": rate}
    dm.setup()
    assert dm.sample_shape == (1, length) and dm.n_classes == 10
    for x in (dm.train_set.tensors[0], dm.val_set.tensors[0]):
        assert x.dtype == torch.float32 and x.shape[1:] == (1, length)
        peaks = x.abs().amax(dim=(1, 2))  # every clip scaled to the peak, 0.9 by default
        assert torch.allclose(peaks, torch.full_like(peaks, 0.9), atol=1 / 32767)
    assert len(dm.train_set) + len(dm.val_set) == 60


def test_a_word_is_cut_of_its_silence_scaled_and_placed_whole(monkeypatch):
    """With a known "word" (silence, a burst, silence) at eSpeak's own rate (no resampling):
    the burst alone, scaled to the peak, lands at position x (free samples + 1)."""
    burst = np.array([300, -1200, 2000, -500, 700], dtype=np.int16)
    said = np.concatenate([np.zeros(40, np.int16), burst, np.zeros(30, np.int16)])
    monkeypatch.setattr(module, "synthesise", lambda *args: said)
    rate, length = speech.ESPEAK_RATE, 20
    for position, offset in [(0.0, 0), (0.5, 8), (0.999, 15)]:
        choice = ClipChoice("en-us+m3", 4, 175, 50, position)
        clip = make_clip(choice, rate, length, peak=0.5)
        expected = np.zeros(length, np.float32)
        expected[offset : offset + 5] = burst / 2000 * 0.5
        np.testing.assert_allclose(clip, expected, atol=1e-7)
        pcm = to_pcm16(clip)  # as the cache keeps it
        assert pcm.dtype == np.int16 and np.array_equal(pcm, np.round(expected * 32767))
    with pytest.raises(ConfigError, match=r"longer than a clip of 4 samples.*words_per_minute"):
        make_clip(ClipChoice("en-us+m3", 4, 175, 50, 0.0), rate, 4)


def test_held_out_voices_are_in_validation_only_and_every_digit_in_both(tmp_path):
    dm = _tiny(variants=["f1", "m1", "m3", "Alex"], val_variants=0.5, cache_dir=tmp_path)
    dm.setup()
    assert len(dm.val_variant_names) == 2 and set(dm.val_variant_names) < set(dm.variants)
    saved = torch.load(dm.cache_path, weights_only=True)  # every clip and its choice
    voice_of = {
        clip.numpy().tobytes(): choice[0]
        for clip, choice in zip(saved["pcm"], saved["choices"], strict=True)
    }
    voices = {}
    for split, dataset in (("train", dm.train_set), ("val", dm.val_set)):
        x, y = dataset.tensors
        pcm = torch.round(x[:, 0] * 32767).to(torch.int16)
        voices[split] = {voice_of[clip.numpy().tobytes()] for clip in pcm}
        assert sorted(y.tolist()) == sorted(list(range(10)) * (len(x) // 10))  # every digit
    assert not voices["train"] & voices["val"]
    assert {voice.split("+")[1] for voice in voices["val"]} == set(dm.val_variant_names)
    assert len(voices["val"]) == 2 * 2 and len(voices["train"]) == 2 * 2


def test_the_choices_are_fixed_by_the_data_seed():
    settings = (["en-us", "en"], ["f1", "m3"], 3, [120, 240], [30, 70])
    first, again = plan_clips(*settings, seed=0), plan_clips(*settings, seed=0)
    other = plan_clips(*settings, seed=1)
    assert first == again and first != other and len(first) == 2 * 2 * 10 * 3
    assert {c.voice for c in first} == {"en-us+f1", "en-us+m3", "en+f1", "en+m3"}
    assert [c.digit for c in first[:6]] == [0, 0, 0, 1, 1, 1]
    assert all(120 <= c.words_per_minute <= 240 and 30 <= c.pitch <= 70 for c in first)
    assert len({c.words_per_minute for c in first}) > 10  # drawn, not one value
    variants = [f"v{i}" for i in range(20)]
    assert held_out(variants, 5, seed=0) == held_out(variants, 0.25, seed=0)
    assert held_out(variants, 5, seed=0) != held_out(variants, 5, seed=1)


def test_modules_of_one_data_seed_make_the_same_choices():
    first, again, other = _tiny(), _tiny(), _tiny(data_seed=1)
    for dm in (first, again, other):
        dm.setup()
    assert first.choices == again.choices != other.choices
    assert first.val_variant_names == again.val_variant_names


def test_the_cache_is_read_back_equal_without_synthesising(tmp_path, monkeypatch):
    built = _tiny(cache_dir=tmp_path)
    built.prepare_data()
    built.setup()
    assert built.cache_path.is_file() and built.cache_path.parent == tmp_path

    def refuse(*args):
        raise AssertionError("synthesised again instead of reading the cache")

    monkeypatch.setattr(module, "synthesise", refuse)
    read = _tiny(cache_dir=tmp_path)
    read.setup()
    for built_split, read_split in (
        (built.train_set, read.train_set),
        (built.val_set, read.val_set),
    ):
        for saved, loaded in zip(built_split.tensors, read_split.tensors, strict=True):
            assert torch.equal(saved, loaded)
    assert read.choices == built.choices
    # the held-out variants do not change the file; what changes the clips does
    assert _tiny(cache_dir=tmp_path, val_variants=2).cache_path == built.cache_path
    for change in ({"peak": 0.8}, {"data_seed": 1}, {"sample_rate": 16000}, {"pitch": [40, 60]}):
        assert _tiny(cache_dir=tmp_path, **change).cache_path != built.cache_path


def test_a_missing_synthesiser_is_one_sentence_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import fails
    monkeypatch.setattr(speech, "_engine", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'gan_je\[audio\]'") as caught:
        _tiny(cache_dir=tmp_path).prepare_data()
    assert "\n" not in str(caught.value) and "data=spoken_digits" in str(caught.value)
    with pytest.raises(MissingExtraError, match=r"gan_je\[audio\]"):
        speech.synthesise("one", "en-us+m3")


@pytest.mark.parametrize(
    ("returned", "said", "message"),
    [
        (2, b"\x01\x00", r"espeak_Synth returned 2 \(EE_NOT_FOUND, not EE_OK\)"),
        (-1, b"", r"returned -1 \(EE_INTERNAL_ERROR"),
        (0, b"", "'one' in the voice 'en-us\\+m3' with no samples"),
    ],
)
def test_a_synthesis_that_fails_or_says_nothing_is_an_error(monkeypatch, returned, said, message):
    engine = SimpleNamespace(chunks=[])

    def synth(*args: object) -> int:
        engine.chunks.append(said)
        return returned

    engine.lib = SimpleNamespace(
        espeak_SetVoiceByName=lambda name: 0,
        espeak_SetParameter=lambda *args: 0,
        espeak_Synth=synth,
    )
    monkeypatch.setattr(speech, "_engine", engine)
    with pytest.raises(RuntimeError, match=message):
        speech.synthesise("one", "en-us+m3")


def test_a_missing_synthesiser_stops_train_with_the_message(train_config, tmp_path, monkeypatch):
    from gan_je.train import train

    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    monkeypatch.setattr(speech, "_engine", None)
    cfg = train_config(
        "data=spoken_digits",
        "model=mlp",
        "debug=fdr",
        "logger=none",
        "callbacks=none",
        "data.accents=[en-us]",
        "data.variants=[f1,m3]",
        "data.val_variants=1",
        f"paths.data_dir={tmp_path / 'data'}",
    )
    with pytest.raises(MissingExtraError, match=r"pip install 'gan_je\[audio\]'"):
        train(cfg)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"accents": ["en-xx"]}, "not an English accent"),
        ({"variants": ["f1", "f1"]}, "each once"),
        ({"variants": "f1"}, "a list of names"),
        ({"sample_rate": 44100}, "sample_rate must be from 4000 to 22050"),
        ({"words_per_minute": [60, 200]}, r"80 <= low <= high <= 450"),
        ({"pitch": [70, 30]}, "low <= high"),
        ({"peak": 1.5}, r"peak must be in \(0, 1\]"),
        ({"val_variants": 3}, "holds out 3 of the 3"),
        ({"val_variants": 0.1}, "holds out 0 of the 3"),
        ({"clips_per_word": 0}, "clips_per_word"),
    ],
)
def test_bad_settings_are_refused_with_what_to_do(settings, message):
    with pytest.raises(ValueError, match=message):
        _tiny(**settings)


def test_an_unknown_variant_names_the_voice_folder(tmp_path):
    dm = _tiny(variants=["f1", "nobody"], cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"nobody, not a voice variant.*voices/!v"):
        dm.prepare_data()


def test_a_slow_rate_that_does_not_fit_the_clip_says_what_to_raise():
    dm = _tiny(length=4000, words_per_minute=[80, 80])  # 0.5 s at 8 kHz
    with pytest.raises(ConfigError, match=r"longer than a clip of 4000 samples"):
        dm.setup()


def test_the_words_are_the_digits_in_label_order():
    assert DIGITS[0] == "zero" and DIGITS[9] == "nine" and len(set(DIGITS)) == 10


@pytest.mark.slow
def test_the_config_builds_the_documented_set(train_config, tmp_path):
    """data=spoken_digits with its defaults: 8 accents x 48 variants x 10 digits x 2 clips,
    10 variants (20 %) held out; only the plan (synthesising all takes ~30 s)."""
    from hydra.utils import instantiate

    cfg = train_config("data=spoken_digits", f"paths.data_dir={tmp_path}")
    dm = instantiate(cfg.data)
    assert dm.n_clips == 7680 and len(dm.val_variant_names) == 10
    assert dm.data_spec == {"kind": "waveform", "sample_shape": [1, 8192], "sample_rate": 8000}
    assert dm.cache_path.parent == tmp_path / "spoken_digits"
