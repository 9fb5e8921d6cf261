"""AudioFolder: any folder of WAV files as mono clips of one rate and length, labelled by
subfolder."""

import wave

import numpy as np
import pytest
import torch

from gan_je.audio import read_wav, write_wav
from gan_je.data import AudioFolder
from gan_je.data.audio_folder import load_clip
from gan_je.errors import DataError


def _tone(frequency: float, seconds: float, rate: int, level: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _write_pcm16(path, channels: np.ndarray, rate: int) -> None:
    """``channels`` ``(c, n)`` in [-1, 1] as 16-bit PCM, written with ``wave`` directly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.round(channels * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(len(channels))
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.T.tobytes())


@pytest.fixture
def sound_tree(tmp_path):
    """Two classes of five 0.5 s tones at 8 kHz: "high" (880 Hz) and "low" (220 Hz)."""
    for name, frequency in (("low", 220.0), ("high", 880.0)):
        for i in range(5):
            tone = _tone(frequency, 0.5, 8000, level=0.1 * (i + 1))
            write_wav(tmp_path / name / f"{i}.wav", torch.from_numpy(tone)[None], 8000)
    return tmp_path


def _loaded(dm: AudioFolder) -> AudioFolder:
    dm.prepare_data()
    dm.setup()
    return dm


def test_clips_are_read_back_with_labels_by_subfolder(sound_tree):
    dm = _loaded(AudioFolder(sound_tree, sample_rate=8000, length=6000, val_size=2))
    assert dm.classes == ["high", "low"] and dm.n_classes == 2
    assert dm.data_spec == {"kind": "waveform", "sample_shape": [1, 6000], "sample_rate": 8000}
    x = torch.cat([dm.train_set.tensors[0], dm.val_set.tensors[0]])
    y = torch.cat([dm.train_set.tensors[1], dm.val_set.tensors[1]])
    assert x.shape == (10, 1, 6000) and len(dm.val_set) == 2 and x.dtype == torch.float32
    for clip, label in zip(x[:, 0], y, strict=True):
        frequency = 880.0 if label == 0 else 220.0  # "high" sorts first
        level = clip.abs().max().item()
        expected = _tone(frequency, 0.5, 8000, level=level)  # the file, padded with silence
        np.testing.assert_allclose(clip[:4000].numpy(), expected, atol=2 / 32767)
        assert torch.all(clip[4000:] == 0)
    levels = sorted(round(clip.abs().max().item(), 3) for clip in x[:, 0])
    assert levels == sorted([0.1, 0.2, 0.3, 0.4, 0.5] * 2)  # levels kept as recorded


def test_a_flat_folder_is_one_class_and_a_default_length_of_1_024_s(tmp_path):
    for i in range(3):
        write_wav(tmp_path / f"{i}.wav", torch.zeros(1, 100), 16000)
    dm = _loaded(AudioFolder(tmp_path, sample_rate=16000, val_size=1))
    assert dm.sample_shape == (1, 16384) and dm.n_classes == 1 and dm.classes == ["."]
    assert set(dm.train_set.tensors[1].tolist()) == {0}


def test_stereo_is_mixed_down_and_another_rate_resampled(tmp_path):
    left, right = _tone(440.0, 1.0, 16000, 0.6), _tone(440.0, 1.0, 16000, 0.2)
    _write_pcm16(tmp_path / "stereo.wav", np.stack([left, right]), 16000)
    clip, rate = read_wav(tmp_path / "stereo.wav")
    assert clip.shape == (2, 16000) and rate == 16000
    mono = load_clip(tmp_path / "stereo.wav", 8000, 4000)  # half a second at 8 kHz
    assert mono.shape == (4000,) and mono.dtype == np.float32
    expected = _tone(440.0, 0.5, 8000, 0.4)  # the mean of the channels, at the new rate
    np.testing.assert_allclose(mono[100:-100], expected[100:-100], atol=2e-3)


def test_a_longer_file_is_cut_and_a_loud_one_stays_within_one(tmp_path):
    _write_pcm16(tmp_path / "loud.wav", _tone(1000.0, 2.0, 22050, 1.0)[None], 22050)
    clip = load_clip(tmp_path / "loud.wav", 8000, 8192)
    assert clip.shape == (8192,) and np.abs(clip).max() <= 1.0
    assert np.abs(clip[-100:]).max() > 0.9  # the tone runs to the end: cut, not padded


def test_the_split_is_fixed_by_the_data_seed(sound_tree):
    first, again, other = (
        _loaded(AudioFolder(sound_tree, length=4000, val_size=0.3, data_seed=s)) for s in (0, 0, 1)
    )
    assert len(first.val_set) == 3 and len(first.train_set) == 7
    assert torch.equal(first.val_set.tensors[0], again.val_set.tensors[0])
    assert not torch.equal(first.val_set.tensors[0], other.val_set.tensors[0])


def test_a_missing_or_empty_folder_says_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*set data\.path"):
        AudioFolder(tmp_path / "missing").prepare_data()
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "song.mp3").write_bytes(b"ID3 not a wav")
    with pytest.raises(DataError, match=r"no WAV files in .*\.wav"):
        AudioFolder(tmp_path / "empty").setup()


def test_a_file_that_is_not_pcm_wav_is_named(tmp_path):
    write_wav(tmp_path / "good.wav", torch.zeros(1, 100), 8000)
    (tmp_path / "fake.wav").write_text("this is not a WAV file")
    with pytest.raises(DataError, match=r"fake\.wav .*not a PCM WAV file.*ffmpeg"):
        AudioFolder(tmp_path, val_size=1).setup()


def test_an_empty_wav_is_named(tmp_path):
    write_wav(tmp_path / "good.wav", torch.zeros(1, 100), 8000)
    _write_pcm16(tmp_path / "silent.wav", np.zeros((1, 0)), 8000)
    with pytest.raises(DataError, match=r"silent\.wav holds no samples"):
        AudioFolder(tmp_path, val_size=1).setup()


def test_a_wav_whose_header_says_0_hz_is_named(tmp_path):
    write_wav(tmp_path / "good.wav", torch.zeros(1, 100), 8000)
    write_wav(tmp_path / "zero.wav", torch.zeros(1, 100), 8000)
    header = bytearray((tmp_path / "zero.wav").read_bytes())
    header[24:28] = (0).to_bytes(4, "little")  # the fmt chunk's sample rate
    (tmp_path / "zero.wav").write_bytes(bytes(header))
    with pytest.raises(DataError, match=r"zero\.wav .*sample rate of 0 Hz"):
        AudioFolder(tmp_path, val_size=1).setup()


def test_a_resampling_error_names_the_file(tmp_path, monkeypatch):
    from gan_je.data import audio_folder

    write_wav(tmp_path / "x.wav", torch.zeros(1, 100), 16000)

    def failing(*args: object) -> np.ndarray:
        raise MemoryError("out of memory")

    monkeypatch.setattr(audio_folder, "resample", failing)
    with pytest.raises(DataError, match=r"cannot resample .*x\.wav from 16000 to 8000 Hz"):
        load_clip(tmp_path / "x.wav", 8000, 100)


def test_macos_sidecar_files_are_skipped(tmp_path):
    for i in range(3):
        write_wav(tmp_path / "digits" / f"{i}.wav", torch.zeros(1, 100), 8000)
        (tmp_path / "digits" / f"._{i}.wav").write_bytes(b"\x00\x05\x16\x07 resource fork")
    dm = _loaded(AudioFolder(tmp_path, length=100, val_size=1))
    assert len(dm.train_set) + len(dm.val_set) == 3
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "._a.wav").write_bytes(b"\x00\x05\x16\x07")
    with pytest.raises(DataError, match=r"no WAV files .*sidecars"):
        AudioFolder(tmp_path / "only").prepare_data()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"length": -5}, "length"),
        ({"val_size": 1.5}, "val_size"),
    ],
)
def test_bad_settings_are_refused(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        AudioFolder(tmp_path, **settings)


def test_the_config_needs_a_path(train_config, sound_tree):
    from hydra.utils import instantiate

    cfg = train_config("data=audio_folder", f"data.path={sound_tree}", "data.length=4000")
    dm = _loaded(instantiate(cfg.data))
    assert dm.sample_shape == (1, 4000) and len(dm.train_set) + len(dm.val_set) == 10
