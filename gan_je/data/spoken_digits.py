"""SpokenDigits: the ten words "zero" to "nine" said by eSpeak NG, one second a clip, as
SC09 (the spoken digits of Speech Commands that WaveGAN was measured on; Donahue, McAuley
and Puckette 2019) rebuilt offline from synthesised speech.

Every voice ("<accent>+<variant>": an English accent of eSpeak NG, :data:`ENGLISH_ACCENTS`,
and a voice variant, :data:`VARIANTS`) says every digit ``clips_per_word`` times, each
time at a speaking rate and a pitch drawn uniformly (integers) from the configured ranges.
A clip is made in four steps (:func:`make_clip`):

1. :func:`gan_je.data.speech.synthesise` says the word at 22,050 Hz;
2. the silence before and after it is cut (samples quieter than :data:`SILENCE` of the
   word's peak, -60 dB), so that what remains is the whole word;
3. :func:`gan_je.audio.resample` takes it to ``sample_rate``;
4. it is scaled so that its largest absolute value is ``peak`` (eSpeak's voices differ in
   loudness by a factor of two; this takes loudness out, leaving headroom below 1), and
   :func:`gan_je.audio.fit_length` places it in a silent clip of ``length`` samples at an
   offset drawn uniformly from those that keep the whole word inside.

The choices (voices, rates, pitches, offsets, which variants are held out) are drawn from
the ``"speech"`` streams of ``data_seed`` (:mod:`gan_je.seeding`), so they are the same on
every machine. The sound itself is not quite: eSpeak NG adds noise it takes from no seed
that its API exposes, so two syntheses of one word differ a little (lengths by a few tens
of samples, waveforms by small shifts in time; their log-mel spectrograms correlate at
0.999). The set is therefore built once and kept in ``cache_dir`` (a file named by every
setting that changes it; samples as 16-bit integers, :func:`gan_je.audio.to_pcm16`), and
every later run and every job of a sweep reads that one set. Jobs that start together on an
empty cache would each build their own (the last written stays), so build it with one short
run first (``debug=fdr``).
Building the default 7,680 clips takes about 20 s of one CPU core (synthesis about 1 ms a
clip, resampling about 2 ms); reading them back takes about a second.

The validation clips are those of whole voice variants held out (``val_variants``): their
voices, in every accent, are not heard in training, so a classifier or a metric is judged on
speakers it has not heard. Every digit is in both splits. The label ``y`` is the digit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from gan_je.atomic_files import replaced_atomically
from gan_je.audio import fit_length, from_pcm16, resample, to_pcm16
from gan_je.checks import is_int, is_real, positive_float, positive_int
from gan_je.data._checks import check_samples_fit
from gan_je.data._waveforms import WaveformDataModule
from gan_je.data.speech import ENGLISH_ACCENTS, ESPEAK_RATE, VARIANTS, synthesise
from gan_je.errors import ConfigError, DataError, RecordError
from gan_je.extras import require
from gan_je.seeding import stream_seed

log = logging.getLogger(__name__)

#: The words said, in the order of their labels.
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: What counts as silence around a word: samples below this share of the word's peak (-60 dB).
SILENCE = 1e-3
#: The sample rates a clip may have: low enough for speech to be understood, at most the rate
#: eSpeak NG synthesises at (a higher one would add nothing).
RATES = (4000, ESPEAK_RATE)
#: The speaking rates (words per minute) and pitches (0-100) eSpeak NG accepts.
WORDS_PER_MINUTE, PITCHES = (80, 450), (0, 100)
#: Part of the cache file's name; raise it when the clips a setting gives change.
CACHE_VERSION = 1


class ClipChoice(NamedTuple):
    """What one clip is: ``voice`` says ``DIGITS[digit]`` at ``words_per_minute`` and
    ``pitch``, placed at ``position`` (in [0, 1)) of the offsets that keep it whole."""

    voice: str
    digit: int
    words_per_minute: int
    pitch: int
    position: float


class SpokenDigits(WaveformDataModule):
    """Spoken digits synthesised by eSpeak NG (module doc), ``(1, length)`` clips in [-1, 1].

    Needs the optional ``espeakng-loader`` (``pip install 'gan_je[audio]'``) to build the set,
    not to read it from ``cache_dir``.

    Args:
        sample_rate: samples per second (WaveGAN: 16,000; 8,000 for the CPU presets); from
            4,000 to 22,050.
        length: samples per clip; ``None``: 1.024 s (8,192 at 8 kHz, 16,384 at 16 kHz). Must
            hold the longest word (a slow rate makes a word last up to 0.8 s).
        accents: English accents of eSpeak NG (:data:`ENGLISH_ACCENTS`); ``None``: all eight.
        variants: voice variants (file names in eSpeak NG's ``voices/!v``); ``None``: the 48
            human-sounding ones of :data:`~gan_je.data.speech.VARIANTS`. A voice is an accent
            and a variant.
        clips_per_word: clips of each digit in each voice, each at its own rate, pitch and
            offset.
        words_per_minute: the ``[low, high]`` range speaking rates are drawn from (eSpeak's
            default rate is 175).
        pitch: the ``[low, high]`` range pitches (0-100; eSpeak's default 50) are drawn from.
        peak: the largest absolute value of every clip, in (0, 1].
        val_variants: variants held out for validation with all their voices, a count (int)
            or a fraction of ``variants`` (float in (0, 1)); chosen by ``data_seed``.
        cache_dir: the folder the set is kept in (``None``: synthesise it in every run, and
            in every process of a run, each a little differently).
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ``data_seed``, ... of
            :class:`~gan_je.data.base.ArrayDataModule`; ``data_seed`` seeds every choice.

    Attributes:
        val_variant_names: the held-out variants (their voices make the validation set).
        choices: after :meth:`setup`, the :class:`ClipChoice` of every clip of the set, in
            the order :func:`plan_clips` gives (training and validation clips together).
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        length: int | None = None,
        accents: Sequence[str] | None = None,
        variants: Sequence[str] | None = None,
        clips_per_word: int = 2,
        words_per_minute: Sequence[int] = (120, 240),
        pitch: Sequence[int] = (30, 70),
        peak: float = 0.9,
        val_variants: int | float = 0.2,
        cache_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(sample_rate, length, **kwargs)
        if not RATES[0] <= self.sample_rate <= RATES[1]:
            raise ConfigError(
                f"data.sample_rate must be from {RATES[0]} to {RATES[1]} (eSpeak NG's rate) "
                f"samples per second, got {self.sample_rate}: 8000 or 16000 as WaveGAN"
            )
        self.accents = _names("accents", ENGLISH_ACCENTS if accents is None else accents)
        unknown = sorted(set(self.accents) - set(ENGLISH_ACCENTS))
        if unknown:
            raise ConfigError(
                f"data.accents holds {', '.join(unknown)}, not an English accent of eSpeak NG: "
                f"choose among {', '.join(ENGLISH_ACCENTS)}"
            )
        self.variants = _names("variants", VARIANTS if variants is None else variants)
        self.clips_per_word = positive_int("clips_per_word", clips_per_word)
        self.words_per_minute = _range("words_per_minute", words_per_minute, WORDS_PER_MINUTE)
        self.pitch = _range("pitch", pitch, PITCHES)
        self.peak = positive_float("peak", peak)
        if self.peak > 1:
            raise ConfigError(f"data.peak must be in (0, 1] (full scale is 1), got {peak!r}")
        self.val_variant_names = held_out(self.variants, val_variants, self.data_seed)
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()
        n_val = len(self.accents) * len(self.val_variant_names) * len(DIGITS) * clips_per_word
        check_samples_fit(self.n_clips - n_val, n_val, self.sample_shape)
        self.choices: list[ClipChoice] | None = None

    @property
    def n_clips(self) -> int:
        """Clips in the set, training and validation together."""
        return len(self.accents) * len(self.variants) * len(DIGITS) * self.clips_per_word

    @property
    def n_classes(self) -> int:
        return len(DIGITS)

    @property
    def cache_path(self) -> Path | None:
        """The file the set is kept in, named by every setting that changes it (the held-out
        variants do not: the file holds every clip)."""
        if self.cache_dir is None:
            return None
        settings = {
            "accents": self.accents,
            "variants": self.variants,
            "clips_per_word": self.clips_per_word,
            "words_per_minute": self.words_per_minute,
            "pitch": self.pitch,
            "peak": self.peak,
            "data_seed": self.data_seed,
        }
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
        name = f"spoken_digits-v{CACHE_VERSION}-{self.sample_rate}hz-{self.length}-{digest[:16]}.pt"
        return self.cache_dir / name

    def prepare_data(self) -> None:
        """Build the set into ``cache_dir`` unless it is there (Lightning calls this in one
        process per machine, before :meth:`setup` in every process reads the file)."""
        path = self.cache_path
        if path is not None and not path.is_file():
            self._clips()

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        pcm, self.choices = self._clips()
        y = np.array([choice.digit for choice in self.choices])
        held = set(self.val_variant_names)
        val = np.array([c.voice.split("+", 1)[1] in held for c in self.choices])
        train = ~val  # the int16 clips split first: floats of each split made once
        return (
            torch.from_numpy(from_pcm16(pcm[train])).unsqueeze(1),
            torch.from_numpy(y[train]),
            torch.from_numpy(from_pcm16(pcm[val])).unsqueeze(1),
            torch.from_numpy(y[val]),
        )

    def _clips(self) -> tuple[np.ndarray, list[ClipChoice]]:
        """The clips, int16 ``(n_clips, length)``, and their choices: read from the cache,
        or synthesised (and cached)."""
        path = self.cache_path
        if path is not None and path.is_file():
            return _read_cache(path)
        choices = plan_clips(
            self.accents,
            self.variants,
            self.clips_per_word,
            self.words_per_minute,
            self.pitch,
            self.data_seed,
        )
        check_variants(self.variants)
        log.info("synthesising %d spoken digits with eSpeak NG", len(choices))
        pcm = np.stack(
            [to_pcm16(make_clip(c, self.sample_rate, self.length, self.peak)) for c in choices]
        )
        if path is not None:
            saved = {"pcm": torch.from_numpy(pcm), "choices": [list(c) for c in choices]}
            try:
                with replaced_atomically(path) as file:
                    torch.save(saved, file)
            except RecordError as err:
                log.warning("the spoken digits are not cached: %s", err)
        return pcm, choices


def plan_clips(
    accents: Sequence[str],
    variants: Sequence[str],
    clips_per_word: int,
    words_per_minute: Sequence[int],
    pitch: Sequence[int],
    seed: int,
) -> list[ClipChoice]:
    """Every clip of the set, in order (accent, variant, digit, repeat): each voice
    ``"<accent>+<variant>"`` says each digit ``clips_per_word`` times, at a rate and a pitch
    drawn uniformly from the inclusive ranges ``words_per_minute`` and ``pitch``, at a
    uniform ``position``; drawn from the ``"speech"`` stream 0 of ``seed``."""
    voices = [f"{accent}+{variant}" for accent in accents for variant in variants]
    n = len(voices) * len(DIGITS) * positive_int("clips_per_word", clips_per_word)
    rng = np.random.default_rng(stream_seed(seed, "speech", 0))
    rates = rng.integers(words_per_minute[0], words_per_minute[1], n, endpoint=True).tolist()
    pitches = rng.integers(pitch[0], pitch[1], n, endpoint=True).tolist()
    positions = rng.random(n).tolist()
    keys = [(v, d) for v in voices for d in range(len(DIGITS)) for _ in range(clips_per_word)]
    return [
        ClipChoice(voice, digit, rate, tone, position)
        for (voice, digit), rate, tone, position in zip(
            keys, rates, pitches, positions, strict=True
        )
    ]


def make_clip(choice: ClipChoice, sample_rate: int, length: int, peak: float = 0.9) -> np.ndarray:
    """The clip ``(length,)`` float32 in [-peak, peak] of ``choice`` at ``sample_rate`` (the
    steps of the module doc).

    Raises:
        ConfigError: the word, its silence cut, lasts longer than ``length`` samples.
        MissingExtraError: ``espeakng-loader`` is not installed.
    """
    word = DIGITS[choice.digit]
    said = synthesise(word, choice.voice, choice.words_per_minute, choice.pitch)
    said = said.astype(np.float32)
    loud = np.flatnonzero(np.abs(said) > SILENCE * np.abs(said).max())
    if len(loud) == 0:
        raise DataError(f"eSpeak NG said nothing for {word!r} in the voice {choice.voice}")
    sound = resample(said[loud[0] : loud[-1] + 1], ESPEAK_RATE, sample_rate)
    if len(sound) > length:
        raise ConfigError(
            f"{word!r} said by {choice.voice} at {choice.words_per_minute} words per minute "
            f"lasts {len(sound) / sample_rate:.3f} s, longer than a clip of {length} samples "
            f"({length / sample_rate:.3f} s): raise the lowest data.words_per_minute or "
            "data.length"
        )
    sound *= peak / np.abs(sound).max()
    return fit_length(sound, length, int(choice.position * (length - len(sound) + 1)))


def held_out(variants: Sequence[str], val_variants: int | float, seed: int) -> tuple[str, ...]:
    """The variants whose voices form the validation set: ``val_variants`` of ``variants`` (a
    count, or a fraction rounded), drawn by the ``"speech"`` stream 1 of ``seed``, in the
    order of ``variants``; a :class:`ConfigError` unless at least one is held out and one
    kept."""
    n = len(variants)
    if is_int(val_variants):
        count = int(val_variants)
    elif is_real(val_variants) and 0 < val_variants < 1:
        count = round(val_variants * n)
    else:
        raise ConfigError(
            "data.val_variants must be a number of variants (an int) or a fraction in (0, 1), "
            f"got {val_variants!r}"
        )
    if not 1 <= count < n:
        raise ConfigError(
            f"data.val_variants={val_variants!r} holds out {count} of the {n} voice variants, "
            "but validation and training need one each at least: give data.variants two or "
            f"more, and data.val_variants from 1 to {max(n - 1, 1)}"
        )
    rng = np.random.default_rng(stream_seed(seed, "speech", 1))
    chosen = set(rng.choice(n, size=count, replace=False).tolist())
    return tuple(variant for i, variant in enumerate(variants) if i in chosen)


def check_variants(variants: Sequence[str]) -> None:
    """Refuse variants that are not files in eSpeak NG's ``voices/!v`` (a
    :class:`ConfigError` listing the unknown ones and where the known ones are).

    Raises:
        MissingExtraError: ``espeakng-loader`` is not installed.
    """
    loader = require("espeakng_loader", "audio", "speech synthesis (data=spoken_digits)")
    folder = Path(loader.get_data_path()) / "voices" / "!v"
    unknown = [name for name in variants if not (folder / name).is_file()]
    if unknown:
        raise ConfigError(
            f"data.variants holds {', '.join(unknown)}, not a voice variant of eSpeak NG: "
            f"name files of {folder}, such as {', '.join(VARIANTS[:8])}"
        )


def _names(setting: str, names: Sequence[str]) -> list[str]:
    """``names`` as a list of distinct non-empty strings (at least one)."""
    if isinstance(names, str) or not all(isinstance(name, str) and name for name in names):
        raise ConfigError(f"data.{setting} must be a list of names, got {names!r}")
    names = list(names)
    if not names or len(set(names)) < len(names):
        raise ConfigError(f"data.{setting} must name one or more, each once, got {names!r}")
    if any(os.sep in name or "+" in name for name in names):
        raise ConfigError(f"data.{setting} names hold no '+' or '/', got {names!r}")
    return names


def _range(setting: str, bounds: Sequence[int], allowed: tuple[int, int]) -> list[int]:
    """``[low, high]`` integers with ``allowed[0] <= low <= high <= allowed[1]``."""
    values = list(bounds) if not isinstance(bounds, str | int) else []
    if len(values) != 2 or not all(is_int(v) for v in values):
        raise ConfigError(f"data.{setting} must be [low, high], two integers, got {bounds!r}")
    low, high = (int(v) for v in values)
    if not allowed[0] <= low <= high <= allowed[1]:
        raise ConfigError(
            f"data.{setting} must be [low, high] with {allowed[0]} <= low <= high <= "
            f"{allowed[1]}, got {bounds!r}"
        )
    return [low, high]


def _read_cache(path: Path) -> tuple[np.ndarray, list[ClipChoice]]:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return saved["pcm"].numpy(), [ClipChoice(*choice) for choice in saved["choices"]]
    except Exception as err:
        raise DataError(
            f"the cached spoken digits {path} cannot be read ({type(err).__name__}: {err}); "
            "delete the file and they are synthesised again"
        ) from err
