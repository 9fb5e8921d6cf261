"""Sound as arrays: resampling, clip lengths, WAV files, spectrograms and their inverse.

Pure functions over the last axis (time). A clip is ``(channels, n)`` float32 in [-1, 1].
The spectrograms use a Hann window of ``n_fft`` samples moved by ``hop``, frames centred
(frame ``t`` centred on sample ``t * hop``), and are differentiable, so that generated clips
can be judged through them:

- :func:`magnitude`: ``|STFT|``, scaled so that a full-scale sine reads 1;
- :func:`log_spectrogram`: SpecGAN's image (Donahue et al. 2019): ``20 log10 |X|`` clipped
  to ``[-floor_db, 0]`` dB and mapped linearly onto [-1, 1], the Nyquist bin and the last
  frame dropped, so that ``n_fft = 256, hop = 128`` turns 16,384 samples into 128 x 128;
- :func:`griffin_lim`: a waveform whose spectrogram is that image (Griffin & Lim 1984,
  with the momentum of Perraudin, Balazs & Søndergaard 2013);
- :func:`log_mel`: log mel power, ``log(1e-5 + M |X|^2)``, for classifiers and pictures.
"""

from __future__ import annotations

import math
import os
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gan_je.atomic_files import replaced_atomically
from gan_je.checks import non_negative_int, positive_float, positive_int

#: The smallest log-mel power (keeps silence finite).
MEL_FLOOR = 1e-5
#: Full scale of a 16-bit PCM sample: 1.0 is stored as 32767 (:func:`to_pcm16`).
PCM16_SCALE = 32767


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """``x`` (any shape, time last) at ``from_rate`` samples per second resampled to
    ``to_rate``: polyphase filtering by ``to_rate / from_rate`` in lowest terms
    (``scipy.signal.resample_poly``, a Kaiser-windowed low-pass); ``x`` itself when the
    rates are equal. The result has ``ceil(n * to_rate / from_rate)`` samples."""
    from scipy.signal import resample_poly

    from_rate, to_rate = positive_int("from_rate", from_rate), positive_int("to_rate", to_rate)
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have at least one sample on its last axis, got {x.shape}")
    if from_rate == to_rate:
        return x
    common = math.gcd(from_rate, to_rate)
    out = resample_poly(x.astype(np.float64), to_rate // common, from_rate // common, axis=-1)
    return out.astype(np.float32)


def fit_length(x: Tensor | np.ndarray, length: int, offset: int = 0) -> Tensor | np.ndarray:
    """``x`` (time last) placed ``offset`` samples into a silent clip of ``length`` samples:
    zero-padded around it, cut where it runs past the end. The same type as ``x``."""
    length, offset = positive_int("length", length), non_negative_int("offset", offset)
    if offset >= length:
        raise ValueError(f"offset must be below length={length}, got {offset}")
    keep = min(x.shape[-1], length - offset)
    if isinstance(x, Tensor):
        out = x.new_zeros((*x.shape[:-1], length))
    else:
        out = np.zeros((*x.shape[:-1], length), dtype=x.dtype)
    out[..., offset : offset + keep] = x[..., :keep]
    return out


def to_pcm16(x: np.ndarray) -> np.ndarray:
    """``x`` (values in [-1, 1]; clipped there) as 16-bit PCM samples, ``round(x * 32767)``
    (int16, any shape): symmetric, so that 1 and -1 are 32767 and -32767 and 0 is 0. The
    inverse of :func:`from_pcm16` up to rounding (half a step, ``0.5 / 32767``)."""
    x = np.asarray(x)
    if not np.isfinite(x).all():
        raise ValueError("x holds values that are not finite (NaN or inf)")
    return np.round(np.clip(x, -1.0, 1.0) * PCM16_SCALE).astype(np.int16)


def from_pcm16(pcm: np.ndarray) -> np.ndarray:
    """16-bit PCM samples (int16, any shape) as float32 ``pcm / 32767``: the inverse of
    :func:`to_pcm16`. -32768, which :func:`to_pcm16` never writes but other programs may,
    reads as -1, so that every value is in [-1, 1]."""
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16:
        raise ValueError(f"pcm must hold int16 samples, got {pcm.dtype}")
    values = pcm.astype(np.float32) / np.float32(PCM16_SCALE)
    return np.maximum(values, -1.0, out=values)


def write_wav(path: str | Path, clip: Tensor | np.ndarray, rate: int) -> None:
    """Write ``clip`` ``(channels, n)`` (values in [-1, 1]; clipped there) as a 16-bit PCM
    WAV file (:func:`to_pcm16`) at ``rate`` samples per second, atomically
    (:mod:`gan_je.atomic_files`)."""
    rate = positive_int("rate", rate)
    if isinstance(clip, Tensor):
        clip = clip.detach().float().cpu().numpy()
    clip = np.asarray(clip, dtype=np.float32)
    if clip.ndim != 2 or clip.shape[0] < 1 or clip.shape[1] < 1:
        raise ValueError(f"clip must have shape (channels, n) with both >= 1, got {clip.shape}")
    if not np.isfinite(clip).all():
        raise ValueError("clip holds values that are not finite (NaN or inf)")
    pcm = to_pcm16(clip).astype("<i2")
    with replaced_atomically(path) as file, wave.open(file, "wb") as out:
        out.setnchannels(clip.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.T.tobytes())  # frames interleave the channels


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A PCM WAV file as ``(clip (channels, n) float32 in [-1, 1], rate)``; 8-bit (unsigned),
    16-, 24- and 32-bit (signed) samples; 16-bit ones by :func:`from_pcm16` (what
    :func:`write_wav` wrote reads back within half a step, ``0.5 / 32767``).

    Raises:
        ValueError: the file is not a PCM WAV file (``wave`` reads no other), or its header
            gives a sample rate below 1 Hz.
    """
    try:
        with wave.open(os.fspath(path), "rb") as source:
            channels, width = source.getnchannels(), source.getsampwidth()
            rate, frames = source.getframerate(), source.readframes(source.getnframes())
    except (wave.Error, EOFError) as err:
        raise ValueError(f"{path} is not a PCM WAV file that Python's wave reads: {err}") from err
    if rate < 1:
        raise ValueError(f"{path}: its header gives a sample rate of {rate} Hz")
    raw = np.frombuffer(frames, dtype=np.uint8)
    if width == 1:
        values = (raw.astype(np.float32) - 128) / 128
    elif width == 3:  # little-endian 24-bit: widen to 32 bits, keeping the sign
        triples = raw.reshape(-1, 3).astype(np.int32)
        ints = (triples[:, 0] << 8) | (triples[:, 1] << 16) | (triples[:, 2] << 24)
        values = ints.astype(np.float32) / 2**31
    elif width == 2:
        values = from_pcm16(np.frombuffer(frames, dtype="<i2").astype(np.int16))
    elif width == 4:
        values = np.frombuffer(frames, dtype="<i4").astype(np.float32) / 2**31
    else:
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported (8, 16, 24, 32 are)")
    return values.reshape(-1, channels).T.copy(), rate


def check_stft(
    n_fft: int, hop: int, length: int | None = None, invertible: bool = False
) -> tuple[int, int]:
    """``(n_fft, hop)`` checked for the spectrograms of this module: ``n_fft`` an even number
    >= 2 and ``hop`` from 1 to ``n_fft`` (below it where ``invertible``: Griffin-Lim needs
    overlapping windows); with ``length``, a clip of that many samples must be longer than
    ``n_fft // 2``, which its centred first and last frames reflect around their centre.

    Raises:
        ValueError: naming the setting (and the clip length) that does not fit.
    """
    n_fft, hop = positive_int("n_fft", n_fft), positive_int("hop", hop)
    if n_fft < 2 or n_fft % 2:
        raise ValueError(f"n_fft must be an even number >= 2, got {n_fft}")
    if hop > n_fft:
        raise ValueError(f"hop ({hop}) must not exceed n_fft ({n_fft}): samples would be skipped")
    if invertible and hop == n_fft:  # Hann windows that meet end to end leave gaps
        raise ValueError(
            f"hop must be below n_fft ({n_fft}) to invert a spectrogram (Griffin-Lim needs "
            f"overlapping windows), got {hop}"
        )
    if length is not None and positive_int("length", length) <= n_fft // 2:
        raise ValueError(
            f"a clip of {length} samples is too short for n_fft={n_fft}: the centred frames "
            f"need more than n_fft // 2 = {n_fft // 2} samples; lower n_fft, or raise the "
            "clip length (data.length may be too short)"
        )
    return n_fft, hop


def _stft(x: Tensor, n_fft: int, hop: int) -> Tensor:
    """The complex STFT ``(..., n_fft // 2 + 1, frames)`` of ``x`` ``(..., n)``, scaled so a
    full-scale sine has magnitude 1 at its frequency."""
    if not isinstance(x, Tensor) or x.ndim == 0 or x.shape[-1] < 2:
        raise ValueError("x must be a tensor (..., n) with n >= 2 samples on its last axis")
    check_stft(n_fft, hop, x.shape[-1])
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    flat = x.reshape(-1, x.shape[-1])
    spectrum = torch.stft(flat, n_fft, hop, window=window, center=True, return_complex=True)
    return spectrum.reshape(*x.shape[:-1], *spectrum.shape[-2:]) / (window.sum() / 2)


def magnitude(x: Tensor, n_fft: int, hop: int) -> Tensor:
    """``|STFT(x)|`` ``(..., n_fft // 2 + 1, 1 + n // hop)`` of ``x`` ``(..., n)`` (see the
    module doc): a full-scale sine reads 1 at its frequency."""
    n_fft, hop = check_stft(n_fft, hop)
    return _stft(x, n_fft, hop).abs()


def log_spectrogram(x: Tensor, n_fft: int, hop: int, floor_db: float = 80.0) -> Tensor:
    """SpecGAN's image of ``x`` ``(..., n)``: ``(..., n_fft // 2, n // hop)`` in [-1, 1],
    ``1 + 2 dB / floor_db`` of ``dB = 20 log10 |X|`` clipped to ``[-floor_db, 0]``; the
    Nyquist bin and the last frame are dropped."""
    n_fft, hop = check_stft(n_fft, hop)
    floor_db = positive_float("floor_db", floor_db)
    if x.shape[-1] < hop:
        raise ValueError(f"x has {x.shape[-1]} samples, fewer than one hop ({hop})")
    floor = 10 ** (-floor_db / 20)
    spectrum = magnitude(x, n_fft, hop)[..., : n_fft // 2, : x.shape[-1] // hop]
    decibels = 20 * torch.log10(spectrum.clamp(min=floor, max=1.0))
    return 1 + 2 * decibels / floor_db


def griffin_lim(
    image: Tensor,
    n_fft: int,
    hop: int,
    length: int,
    n_iter: int = 16,
    floor_db: float = 80.0,
    momentum: float = 0.99,
) -> Tensor:
    """A waveform ``(..., length)`` whose :func:`log_spectrogram` is ``image``
    ``(..., n_fft // 2, length // hop)``: the magnitudes the image encodes (the dropped
    Nyquist bin and last frame silent), with phases from ``n_iter`` rounds of Griffin & Lim
    (1984): invert, transform again, keep the new phases; each round's phases pushed on by
    ``momentum`` times their change (Perraudin et al. 2013, "A fast Griffin-Lim algorithm";
    0: the original). Starts from zero phase, so the result is deterministic."""
    n_fft, hop = check_stft(n_fft, hop, length, invertible=True)
    length, n_iter = positive_int("length", length), positive_int("n_iter", n_iter)
    floor_db = positive_float("floor_db", floor_db)
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    bins, frames = n_fft // 2, length // hop
    if image.ndim < 2 or tuple(image.shape[-2:]) != (bins, frames):
        raise ValueError(
            f"image must have shape (..., {bins}, {frames}) for n_fft={n_fft}, hop={hop}, "
            f"length={length}, got {tuple(image.shape)}"
        )
    target = 10 ** ((image - 1) * floor_db / 40)  # dB = (image - 1) floor_db / 2
    window = torch.hann_window(n_fft, device=image.device, dtype=image.dtype)
    target = torch.nn.functional.pad(target, (0, 1, 0, 1))  # the Nyquist bin, the last frame
    target = target.reshape(-1, bins + 1, frames + 1) * (window.sum() / 2)  # torch.stft's scale

    def invert(spectrum: Tensor) -> Tensor:
        return torch.istft(spectrum, n_fft, hop, window=window, center=True, length=length)

    phase = torch.polar(torch.ones_like(target), torch.zeros_like(target))
    previous = phase
    for _ in range(n_iter):
        again = torch.stft(
            invert(target * phase), n_fft, hop, window=window, center=True, return_complex=True
        )
        pushed = again + momentum * (again - previous) if momentum else again
        previous = again
        phase = pushed / pushed.abs().clamp(min=1e-12)
    return invert(target * phase).reshape(*image.shape[:-2], length)


@lru_cache(maxsize=16)
def mel_filters(rate: int, n_fft: int, n_mels: int) -> Tensor:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` over the STFT's bins from 0 Hz to
    ``rate / 2``, their peaks equally spaced on the mel scale ``2595 log10(1 + f / 700)``
    (O'Shaughnessy 1987). Each triangle rises to 1 at its centre frequency, but it is
    sampled at the bins' frequencies, so its largest value is 1 only where a bin falls on
    that centre and below 1 otherwise: about 0.7 at the least for 40 bands of a 256-point
    STFT at 8 kHz, less (down to 0) for bands narrower than the bins' spacing."""
    rate, n_mels = positive_int("rate", rate), positive_int("n_mels", n_mels)
    bins = torch.linspace(0, rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    top = 2595 * math.log10(1 + rate / 2 / 700)
    peaks = 700 * (10 ** (torch.linspace(0, top, n_mels + 2, dtype=torch.float64) / 2595) - 1)
    lower, centre, upper = peaks[:-2, None], peaks[1:-1, None], peaks[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0).float()


def log_mel(x: Tensor, rate: int, n_fft: int = 512, hop: int = 128, n_mels: int = 40) -> Tensor:
    """``log(1e-5 + M |X|^2)`` ``(..., n_mels, 1 + n // hop)`` of ``x`` ``(..., n)`` at
    ``rate`` samples per second: :func:`magnitude` squared through :func:`mel_filters`."""
    n_fft, hop = check_stft(n_fft, hop)
    filters = mel_filters(positive_int("rate", rate), n_fft, positive_int("n_mels", n_mels))
    power = magnitude(x, n_fft, hop) ** 2
    return torch.log(MEL_FLOOR + filters.to(power) @ power)
