"""gan_je.audio: resampling, clip lengths, WAV files and the spectrograms, checked against
values computed another way (a sine's frequency and amplitude, the standard library's
``wave`` module)."""

import wave

import numpy as np
import pytest
import torch

from gan_je import audio


def sine(frequency: float, rate: int, n: int, amplitude: float = 1.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(n) / rate).astype(np.float32)


def peak_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


def test_resample_keeps_a_sine_at_its_frequency_and_scales_the_length():
    x = sine(440, 22050, 22050)
    y = audio.resample(x, 22050, 8000)
    assert y.shape == (8000,) and y.dtype == np.float32
    assert peak_frequency(y, 8000) == pytest.approx(440, abs=2)
    assert np.abs(y[1000:-1000]).max() == pytest.approx(1, abs=0.02)
    assert audio.resample(x, 8000, 8000) is x


def test_resample_removes_what_the_new_rate_cannot_hold():
    above = sine(6000, 22050, 22050)  # above 8 kHz's Nyquist frequency of 4 kHz
    assert np.abs(audio.resample(above, 22050, 8000)[1000:-1000]).max() < 0.01


def test_fit_length_pads_and_cuts_around_the_offset():
    x = torch.arange(1.0, 6.0)
    assert audio.fit_length(x, 8, 2).tolist() == [0, 0, 1, 2, 3, 4, 5, 0]
    assert audio.fit_length(x, 4, 1).tolist() == [0, 1, 2, 3]
    batch = np.ones((2, 1, 3), dtype=np.float32)
    out = audio.fit_length(batch, 5)
    assert isinstance(out, np.ndarray) and out.shape == (2, 1, 5) and out.sum() == 6
    with pytest.raises(ValueError, match="offset must be below"):
        audio.fit_length(x, 4, 4)


def test_wav_round_trip_read_with_the_standard_library(tmp_path):
    clip = np.stack([sine(300, 8000, 800, 0.5), sine(500, 8000, 800, -0.25)])
    path = tmp_path / "stereo.wav"
    audio.write_wav(path, torch.from_numpy(clip), 8000)
    with wave.open(str(path), "rb") as file:
        assert (file.getnchannels(), file.getsampwidth(), file.getframerate()) == (2, 2, 8000)
        assert file.getnframes() == 800
        frames = np.frombuffer(file.readframes(800), "<i2").reshape(800, 2).T
    assert np.abs(frames / 32767 - clip).max() <= 0.5 / 32767 + 1e-7
    back, rate = audio.read_wav(path)
    assert rate == 8000 and back.shape == (2, 800)
    assert np.abs(back - clip).max() <= 0.5 / 32767 + 1e-7  # one scale both ways: rounding only


def test_16_bit_pcm_is_symmetric_and_clipped():
    x = np.array([0.0, 1.0, -1.0, 0.5, 1.5, -2.0, 0.25 / 32767], dtype=np.float32)
    pcm = audio.to_pcm16(x)
    assert pcm.dtype == np.int16
    assert pcm.tolist() == [0, 32767, -32767, 16384, 32767, -32767, 0]
    back = audio.from_pcm16(np.array([0, 32767, -32767, -32768, 16384], dtype=np.int16))
    assert back.dtype == np.float32
    assert back.tolist() == pytest.approx([0.0, 1.0, -1.0, -1.0, 16384 / 32767], abs=1e-7)
    ints = np.arange(-32767, 32768, dtype=np.int16)
    assert np.array_equal(audio.to_pcm16(audio.from_pcm16(ints)), ints)
    with pytest.raises(ValueError, match="not finite"):
        audio.to_pcm16(np.array([np.nan]))
    with pytest.raises(ValueError, match="int16"):
        audio.from_pcm16(np.array([1], dtype=np.int32))


@pytest.mark.parametrize("width", [1, 3, 4])
def test_read_wav_reads_other_sample_widths(tmp_path, width):
    values = np.array([0.0, 0.5, -0.5, 0.25])
    if width == 1:
        raw = np.round(values * 128 + 128).astype(np.uint8).tobytes()
    else:
        ints = np.round(values * 2 ** (8 * width - 1)).astype(np.int64)
        raw = b"".join(int(v).to_bytes(width, "little", signed=True) for v in ints)
    path = tmp_path / "x.wav"
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1), file.setsampwidth(width), file.setframerate(16000)
        file.writeframes(raw)
    back, rate = audio.read_wav(path)
    assert rate == 16000 and back.shape == (1, 4)
    assert back[0] == pytest.approx(values, abs=1e-6)


def test_read_wav_refuses_what_is_not_a_wav_file(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match="not a PCM WAV file"):
        audio.read_wav(path)


def test_write_wav_refuses_bad_clips(tmp_path):
    with pytest.raises(ValueError, match="channels, n"):
        audio.write_wav(tmp_path / "x.wav", np.zeros(10), 8000)
    with pytest.raises(ValueError, match="not finite"):
        audio.write_wav(tmp_path / "x.wav", np.full((1, 10), np.nan), 8000)
    assert not (tmp_path / "x.wav").exists()


def test_magnitude_reads_a_full_scale_sine_as_one_at_its_bin():
    rate, n_fft = 8000, 256
    frequency = 20 * rate / n_fft  # on bin 20
    spectrum = audio.magnitude(torch.from_numpy(sine(frequency, rate, 4096)), n_fft, 64)
    assert spectrum.shape == (n_fft // 2 + 1, 4096 // 64 + 1)
    middle = spectrum[:, 8:-8]
    assert middle.argmax(dim=0).unique().tolist() == [20]
    assert middle[20].mean().item() == pytest.approx(1, abs=1e-3)


def test_log_spectrogram_is_specgans_image():
    x = torch.from_numpy(sine(1000, 16000, 16384, 0.5))[None]
    image = audio.log_spectrogram(x, 256, 128)
    assert image.shape == (1, 128, 128)
    assert image.min() >= -1 and image.max() <= 1
    # 0.5 full scale is -6.02 dB: 1 + 2 (-6.02) / 80 = 0.8495 at 1 kHz (bin 16)
    assert image[0, 16, 4:-4].mean().item() == pytest.approx(1 - 2 * 6.0206 / 80, abs=2e-3)
    assert audio.log_spectrogram(torch.zeros(1, 16384), 256, 128).eq(-1).all()


def test_griffin_lim_inverts_the_log_spectrogram():
    torch.manual_seed(0)
    chirp = np.sin(2 * np.pi * np.cumsum(np.linspace(200, 2000, 8192)) / 8000)
    x = torch.from_numpy(0.5 * chirp.astype(np.float32))[None]
    image = audio.log_spectrogram(x, 256, 64)
    back = audio.griffin_lim(image, 256, 64, 8192, n_iter=32)
    assert back.shape == (1, 8192)
    error = (audio.log_spectrogram(back, 256, 64) - image).abs().mean().item()
    noise = audio.log_spectrogram(0.5 * torch.randn(1, 8192), 256, 64)
    assert error < 0.1 * (noise - image).abs().mean().item()
    assert torch.equal(back, audio.griffin_lim(image, 256, 64, 8192, n_iter=32))
    with pytest.raises(ValueError, match="must have shape"):
        audio.griffin_lim(image, 256, 128, 8192)
    with pytest.raises(ValueError, match="hop must be below n_fft"):
        audio.griffin_lim(image, 64, 64, 8192)


def test_log_spectrogram_is_differentiable():
    x = torch.zeros(2, 1, 1024, requires_grad=True)
    audio.log_spectrogram(x + 0.3 * torch.randn(2, 1, 1024), 128, 32).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_mel_filters_peak_at_one_in_increasing_order():
    filters = audio.mel_filters(16000, 512, 40)
    assert filters.shape == (40, 257)
    assert filters.max(dim=1).values.min() > 0.5 and filters.max() <= 1
    peaks = filters.argmax(dim=1)
    assert (peaks[1:] >= peaks[:-1]).all() and peaks[-1] > 200


@pytest.mark.parametrize("frequency", [150, 300, 1000, 1234, 2500, 3500])
def test_a_sine_is_loudest_in_the_mel_band_centred_nearest_its_frequency(frequency):
    rate, n_mels = 8000, 40
    mel = 2595 * np.log10(1 + np.array(frequency) / 700)
    step = 2595 * np.log10(1 + rate / 2 / 700) / (n_mels + 1)  # centres at step, 2 step, ...
    nearest = int(np.abs(step * np.arange(1, n_mels + 1) - mel).argmin())
    x = torch.from_numpy(sine(frequency, rate, 4096, 0.5))
    bands = audio.log_mel(x, rate, n_fft=256, hop=64, n_mels=n_mels).mean(dim=-1)
    assert int(bands.argmax()) == nearest


def test_log_mel_shape_and_floor():
    out = audio.log_mel(torch.zeros(3, 1, 8192), 8000, n_fft=256, hop=128, n_mels=32)
    assert out.shape == (3, 1, 32, 65)
    assert torch.allclose(out, torch.tensor(np.log(audio.MEL_FLOOR), dtype=torch.float32))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: audio.magnitude(torch.zeros(100), 255, 64), "even number"),
        (lambda: audio.magnitude(torch.zeros(100), 64, 128), "must not exceed"),
        (lambda: audio.resample(np.zeros(10), 0, 8000), "from_rate"),
        (lambda: audio.log_spectrogram(torch.zeros(10), 64, 32), "fewer than one hop"),
        (lambda: audio.magnitude(torch.zeros(2, 64), 128, 32), r"64 samples.*n_fft=128"),
        (lambda: audio.log_mel(torch.zeros(64), 8000, 128, 32), "data.length may be too"),
        (lambda: audio.griffin_lim(torch.zeros(32, 2), 64, 16, 32), "32 samples is too short"),
    ],
)
def test_errors_name_the_setting(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_shortest_clip_a_spectrogram_takes_is_just_over_half_a_window():
    assert audio.magnitude(torch.zeros(65), 128, 32).shape == (65, 3)
