"""Speech synthesised offline with eSpeak NG: the library and its voice data come inside the
``espeakng-loader`` wheel (``pip install 'gan_je[audio]'``), driven here through ``ctypes``.

A voice is an accent (a language file of eSpeak NG, ``en-us``) and a variant (a voice quality
file, ``m3``), named ``"<accent>+<variant>"`` as eSpeak names them; :func:`synthesise` says
a text in a voice at a speaking rate (words per minute) and a pitch (0-100), as 16-bit
samples at :data:`ESPEAK_RATE` Hz. eSpeak NG keeps one global state, so calls are serialised
by a lock. Its output varies slightly from call to call with the same arguments (a noise
source its API does not seed: lengths differ by tens of samples, waveforms by small shifts
in time, log-mel spectrograms hardly at all), so data sets made with it are cached
(:mod:`gan_je.data.spoken_digits`).
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from gan_je.extras import require

#: The sample rate eSpeak NG synthesises at (Hz).
ESPEAK_RATE = 22050
#: The English accents of eSpeak NG's data (``espeak-ng-data/lang/gmw``).
ENGLISH_ACCENTS = (
    "en-us",
    "en",
    "en-gb-x-rp",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
    "en-029",
)
#: Voice variants of eSpeak NG (``espeak-ng-data/voices/!v``) that sound like a person, in a
#: fixed order: the five female and eight male formant sets and named voices.
VARIANTS = (
    *("f1", "f2", "f3", "f4", "f5"),
    *("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"),
    *("Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee", "Mario", "Michael", "Mike"),
    *("adam", "anika", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed"),
    *("edward", "grandma", "grandpa", "ian", "john", "linda", "max", "norbert", "paul"),
    *("quincy", "rob", "robert", "steph", "travis", "victor", "zac"),
)
#: eSpeak NG's parameter numbers (``espeak_PARAMETER`` in speak_lib.h).
_RATE, _PITCH = 1, 3
#: ``espeak_AUDIO_OUTPUT``: synchronous, samples handed to the callback.
_SYNCHRONOUS = 2
#: ``espeak_Synth``'s ``position_type``: ``POS_CHARACTER`` (its position counts characters).
_POS_CHARACTER = 1
#: ``espeak_Synth``'s ``flags``: ``espeakCHARS_UTF8``, the text is UTF-8.
_CHARS_UTF8 = 1
#: ``espeak_ERROR`` values ``espeak_Synth`` returns (speak_lib.h); 0 is ``EE_OK``.
_ERRORS = {-1: "EE_INTERNAL_ERROR", 1: "EE_BUFFER_FULL", 2: "EE_NOT_FOUND"}
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Engine:
    """The loaded library, initialised once, with the callback that collects samples."""

    def __init__(self) -> None:
        loader = require("espeakng_loader", "audio", "speech synthesis (data=spoken_digits)")
        self.lib = ctypes.CDLL(loader.get_library_path())
        rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, loader.get_data_path().encode(), 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(
                f"eSpeak NG failed to start (espeak_Initialize returned {rate}, expected the "
                f"sample rate {ESPEAK_RATE}); reinstall it: pip install 'gan_je[audio]'"
            )
        self.chunks: list[bytes] = []
        self.callback = _CALLBACK(self._collect)  # kept alive as long as the engine
        self.lib.espeak_SetSynthCallback(self.callback)

    def _collect(self, samples: ctypes.Array, n: int, events: int) -> int:
        if n > 0:
            self.chunks.append(ctypes.string_at(samples, n * 2))
        return 0  # go on


_engine: _Engine | None = None
_lock = threading.Lock()


def synthesise(text: str, voice: str, words_per_minute: int = 175, pitch: int = 50) -> np.ndarray:
    """``text`` said by eSpeak NG's ``voice`` (``"en-us+m3"``, see the module doc) at
    ``words_per_minute`` (80-450) and ``pitch`` (0-100): int16 samples ``(n,)`` at
    :data:`ESPEAK_RATE` Hz.

    Raises:
        MissingExtraError: the ``espeakng-loader`` wheel is not installed.
        ValueError: an empty text, a rate or pitch out of range, or a voice eSpeak NG
            does not know.
        RuntimeError: eSpeak NG reported an error, or gave no samples.
    """
    global _engine
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    if not 80 <= words_per_minute <= 450:
        raise ValueError(f"words_per_minute must be in [80, 450], got {words_per_minute}")
    if not 0 <= pitch <= 100:
        raise ValueError(f"pitch must be in [0, 100], got {pitch}")
    with _lock:
        if _engine is None:
            _engine = _Engine()
        lib = _engine.lib
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(
                f"eSpeak NG has no voice {voice!r}: name an accent of "
                f"gan_je.data.speech.ENGLISH_ACCENTS (or another eSpeak NG language) and a "
                f"variant of VARIANTS, as 'en-us+m3'"
            )
        lib.espeak_SetParameter(_RATE, int(words_per_minute), 0)
        lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        _engine.chunks.clear()
        encoded = text.encode()
        error = lib.espeak_Synth(
            encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        samples = np.frombuffer(b"".join(_engine.chunks), dtype=np.int16).copy()
    if error != 0:
        raise RuntimeError(
            f"eSpeak NG failed to say {text!r} in the voice {voice!r}: espeak_Synth returned "
            f"{error} ({_ERRORS.get(error, 'unknown')}, not EE_OK)"
        )
    if len(samples) == 0:
        raise RuntimeError(f"eSpeak NG said {text!r} in the voice {voice!r} with no samples")
    return samples
