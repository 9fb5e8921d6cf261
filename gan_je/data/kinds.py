"""What one sample is: the kinds of sample a data module declares in its ``data_spec``.

A data module's spec names its kind, ``{"kind": "image", "sample_shape": [1, 28, 28]}``,
plus the fields that kind needs (a waveform's ``sample_rate``, a token sequence's
``vocab_size``, a mixture's ``centers`` and ``std``). Everything that depends on what a
sample is asks the kind and nothing else:

- whether a generator squashes its output into [-1, 1] (:attr:`SampleKind.bounded`);
- how a batch of samples is drawn as a PNG (:meth:`SampleKind.picture`), for the sample
  callback and ``gan_je.generate``;
- what the run's loggers receive after each validation (:meth:`SampleKind.send`);
- which files ``gan_je.generate`` writes (:attr:`SampleKind.formats`, :meth:`SampleKind.write`),
  and which of them the run directory keeps beside each picture
  (:attr:`SampleKind.companion_formats`).

=================  =====================  ================================================
kind               ``sample_shape``       other fields
=================  =====================  ================================================
``points``         ``(d,)``               ``centers`` ``[[x, y], ...]`` and ``std`` of a known
                                          mixture (both or neither)
``image``          ``(C, H, W)``          none; values in [-1, 1]
``tokens``         ``(length, vocab)``    ``vocab_size`` (= vocab): each position a distribution
                                          over the vocabulary (one-hot for real data); optional
                                          ``symbols``, vocab strings spelling the tokens
``waveform``       ``(channels, length)`` ``sample_rate`` in Hz; values in [-1, 1]; written as
                                          WAV files (``format=wav``)
=================  =====================  ================================================

A package of your own adds a kind by subclassing :class:`SampleKind` and decorating it with
:func:`register_kind` (docs/howto.md shows one). Checkpoints written before kinds existed
hold ``{"sample_shape": [...], "image": bool}``; :func:`with_kind` reads them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from gan_je.atomic_files import write_atomically
from gan_je.checks import is_finite, is_int
from gan_je.errors import ConfigError
from gan_je.estimators._inputs import check_ids
from gan_je.pictures import save_grid, scatter_real_fake, show_spectrograms, show_tokens
from gan_je.text import one_line

if TYPE_CHECKING:
    from lightning import Trainer

#: Every kind a data spec may name: ``{name: kind class}`` (:func:`register_kind` adds one).
KINDS: dict[str, type[SampleKind]] = {}


class SampleKind:
    """One kind of sample, built from a data spec (:func:`kind_of`) and checked on the way.

    A subclass sets :attr:`name` and :attr:`bounded`, checks its spec in :meth:`check`, and
    draws a batch in :meth:`picture` (or sets :attr:`has_picture` false). Override
    :meth:`send` to give the loggers other media than the picture, and :meth:`write` with
    :attr:`formats` to offer other files than a PNG and an NPZ.

    Attributes:
        spec: the data spec, a plain dict with ``kind`` and ``sample_shape``.
        sample_shape: ``spec["sample_shape"]`` as a tuple of ints.
    """

    #: The name a data spec gives (``spec["kind"]``).
    name: ClassVar[str] = ""
    #: Whether samples lie in [-1, 1], so that generators end in ``tanh``.
    bounded: ClassVar[bool] = False
    #: Whether the sample picture shows the fixed preview batch (``GANModule.preview``);
    #: false: a fresh seeded draw of many samples beside as many real ones (a scatter plot).
    pictures_preview: ClassVar[bool] = True
    #: The formats of :meth:`write` that the sample callback writes beside each picture in the
    #: run directory (the same name, another ending): a token sequence's decoded ``txt``.
    companion_formats: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = dict(spec)
        shape = self.spec.get("sample_shape")
        if not isinstance(shape, list | tuple) or not all(is_int(n) and n >= 1 for n in shape):
            raise ConfigError(
                f"data_spec['sample_shape'] must be a list of positive ints, got {shape!r}"
            )
        self.sample_shape = tuple(int(n) for n in shape)
        self.check()

    def check(self) -> None:
        """Raise :class:`~gan_je.errors.ConfigError` when the spec does not describe this kind."""

    def _refuse(self, what: str) -> ConfigError:
        return ConfigError(f"a data spec of kind {self.name!r} needs {what}; got {self.spec}")

    @property
    def has_picture(self) -> bool:
        """Whether :meth:`picture` can draw these samples."""
        return True

    @property
    def formats(self) -> tuple[str, ...]:
        """The files ``gan_je.generate`` writes for this kind (``format=...``)."""
        return ("png", "npz") if self.has_picture else ("npz",)

    def check_format(self, file_format: str) -> None:
        """Raise :class:`~gan_je.errors.ConfigError` unless :meth:`write` offers ``file_format``."""
        if file_format not in self.formats:
            raise ConfigError(
                f"format={file_format} is not offered for samples of kind {self.name!r}; "
                f"choose one of {', '.join(self.formats)}"
            )

    def picture(
        self,
        samples: Tensor,
        path: Path,
        title: str,
        real: Tensor | None = None,
        strip: bool = False,
    ) -> None:
        """Write a PNG of generated ``samples`` (``(n, *sample_shape)``, on the CPU) to
        ``path``; ``real`` samples beside them where the picture compares, ``strip``: one row
        (an interpolation)."""
        raise NotImplementedError(f"samples of kind {self.name!r} have no picture")

    def send(self, trainer: Trainer, key: str, path: Path, samples: Tensor, g_step: int) -> None:
        """Give the run's loggers the picture at ``path`` of ``samples``: an image for W&B and
        TensorBoard."""
        from gan_je.loggers import send_picture  # Lightning: only where a run logs

        send_picture(trainer, key, path, g_step)

    def write(self, samples: Tensor, path: Path, file_format: str, title: str, strip: bool) -> None:
        """``gan_je.generate``'s file of ``samples`` (on the CPU): ``"png"``, the picture;
        ``"npz"``, the samples as the data module gives them (key ``samples``, with ``kind``,
        and ``value_range`` [-1, 1] for a bounded kind)."""
        self.check_format(file_format)
        path.parent.mkdir(parents=True, exist_ok=True)
        if file_format == "png":
            self.picture(samples, path, title, strip=strip)
        else:
            arrays = {"samples": samples.numpy(), "kind": np.array(self.name)}
            if self.bounded:
                arrays["value_range"] = np.array([-1.0, 1.0])
            np.savez_compressed(path, **arrays)


def register_kind(kind: type[SampleKind]) -> type[SampleKind]:
    """Make ``kind`` (a :class:`SampleKind` subclass with a ``name``) one a data spec may
    name; usable as a decorator. A name already taken by another class is refused."""
    if not (isinstance(kind, type) and issubclass(kind, SampleKind)) or not kind.name:
        raise ValueError(f"register_kind needs a SampleKind subclass with a name, got {kind!r}")
    if KINDS.get(kind.name, kind) is not kind:
        raise ValueError(f"the kind {kind.name!r} is already {KINDS[kind.name].__qualname__}")
    KINDS[kind.name] = kind
    return kind


def with_kind(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with its kind named: a spec written before kinds existed (a checkpoint's
    ``{"sample_shape": [...], "image": bool}``) becomes ``image`` if ``image`` else
    ``points``, its ``image`` flag dropped; a spec with a kind is returned as it is."""
    if "kind" in spec:
        return dict(spec)
    legacy = {key: value for key, value in spec.items() if key != "image"}
    return {"kind": "image" if spec.get("image") else "points", **legacy}


def kind_of(spec: Mapping[str, Any]) -> SampleKind:
    """The kind of sample a data spec describes, checked against the spec (:func:`with_kind`
    reads a spec without a kind)."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"data_spec must be a dict with a kind and a sample_shape, got {spec!r}")
    spec = with_kind(spec)
    kind = KINDS.get(spec["kind"])
    if kind is None:
        raise ConfigError(
            f"data_spec['kind'] is {spec['kind']!r}, not a registered kind of sample "
            f"({', '.join(sorted(KINDS))}); register your own with gan_je.data.register_kind"
        )
    return kind(spec)


@register_kind
class Points(SampleKind):
    """Vectors ``(d,)``, unbounded; pictured (for d = 2) as a scatter plot of generated
    against real samples, with a known mixture's mode ``centers``."""

    name = "points"
    bounded = False
    pictures_preview = False

    def check(self) -> None:
        if len(self.sample_shape) != 1:
            raise self._refuse("a sample_shape (d,) (declare another kind for other shapes)")
        if ("centers" in self.spec) != ("std" in self.spec):
            raise self._refuse("both a mixture's centers and std, or neither")
        if "centers" in self.spec:
            centers, std, (d,) = self.spec["centers"], self.spec["std"], self.sample_shape
            if (
                not isinstance(centers, list | tuple)
                or not centers
                or not all(
                    isinstance(row, list | tuple) and len(row) == d and all(map(is_finite, row))
                    for row in centers
                )
            ):
                raise self._refuse(f"centers as a list of rows of {d} finite numbers")
            if not is_finite(std) or std <= 0:
                raise self._refuse("a std that is a finite number > 0")

    @property
    def has_picture(self) -> bool:
        return self.sample_shape == (2,)

    def picture(
        self,
        samples: Tensor,
        path: Path,
        title: str,
        real: Tensor | None = None,
        strip: bool = False,
    ) -> None:
        if not self.has_picture:
            super().picture(samples, path, title, real, strip)
        centers = self.spec.get("centers")
        scatter_real_fake(
            real, samples, path, title, None if centers is None else torch.tensor(centers)
        )


@register_kind
class Image(SampleKind):
    """Images ``(C, H, W)`` in [-1, 1]; pictured as a grid (1 or 3 channels)."""

    name = "image"
    bounded = True

    def check(self) -> None:
        if len(self.sample_shape) != 3:
            raise self._refuse("a sample_shape (C, H, W)")

    @property
    def has_picture(self) -> bool:
        return self.sample_shape[0] in (1, 3)

    def picture(
        self,
        samples: Tensor,
        path: Path,
        title: str,
        real: Tensor | None = None,
        strip: bool = False,
    ) -> None:
        save_grid(samples, path, nrow=samples.shape[0] if strip else None)


@register_kind
class TokenSequence(SampleKind):
    r"""Sequences ``(length, vocab_size)``: at each position a distribution over the
    ``vocab_size`` tokens (one-hot for real data, a softmax from a generator), so unbounded
    by ``tanh``. The spec's optional ``symbols``, ``vocab_size`` strings, spell the tokens
    (``symbols[i]`` decodes id ``i``; text gives its pad token ``""``); without them ids
    decode as space-separated numbers (:meth:`decode`).

    Written as text (``format=txt``, and beside each picture in the run directory): one
    decoded sequence a line, UTF-8, with a backslash and every character that would end a line
    escaped as in a Python string literal (:func:`gan_je.text.one_line`: ``\\``, ``\n``, ``\r``,
    ``\x0b``, ..., ``\u2029``), so a line reads back with
    ``line.encode("latin-1", "backslashreplace").decode("unicode_escape")``."""

    name = "tokens"
    bounded = False
    companion_formats = ("txt",)

    def check(self) -> None:
        vocab = self.spec.get("vocab_size")
        if not (is_int(vocab) and vocab >= 2):
            raise self._refuse("an int vocab_size >= 2")
        if len(self.sample_shape) != 2 or self.sample_shape[1] != vocab:
            raise self._refuse("a sample_shape (length, vocab_size)")
        symbols = self.spec.get("symbols")
        #: ``symbols[i]`` spells token ``i`` (``None``: ids decode as numbers).
        self.symbols = None if symbols is None else self._checked_symbols(symbols, int(vocab))

    def _checked_symbols(self, symbols: object, vocab: int) -> tuple[str, ...]:
        need = f"a data spec of kind 'tokens' needs symbols as a list of {vocab} strings"
        if not isinstance(symbols, Sequence) or isinstance(symbols, str | bytes):
            raise ConfigError(f"{need}, symbols[i] spelling token i; got {symbols!r:.80}")
        if len(symbols) != vocab:
            raise ConfigError(f"{need}, one per token id; got {len(symbols)}")
        for index, symbol in enumerate(symbols):
            if not isinstance(symbol, str):
                raise ConfigError(f"{need}; symbols[{index}] is {symbol!r:.80}, not a string")
            try:
                symbol.encode("utf-8")
            except UnicodeEncodeError:
                raise ConfigError(
                    f"{need}; symbols[{index}] is {symbol!r:.80}, not writable as UTF-8"
                ) from None
        return tuple(symbols)

    @property
    def formats(self) -> tuple[str, ...]:
        return (*super().formats, "txt")

    def decode(self, ids: Tensor | np.ndarray) -> list[str]:
        """The text of token ids ``(n, length)`` (ints in [0, vocab_size)), one string a
        sequence: its symbols joined (``"".join``) when the spec has ``symbols``, else its
        ids as space-separated numbers. The one decoding of pictures, files and loggers."""
        length, vocab = self.sample_shape
        rows = check_ids(torch.as_tensor(ids), "ids", length, vocab).tolist()
        if self.symbols is None:
            return [" ".join(map(str, row)) for row in rows]
        return ["".join(self.symbols[i] for i in row) for row in rows]

    def decode_samples(self, samples: Tensor) -> list[str]:
        """:meth:`decode` of samples ``(n, length, vocab_size)``: of each position's most
        likely token (``argmax(-1)``; one-hot samples are the tokens themselves)."""
        if samples.ndim != 3 or tuple(samples.shape[1:]) != self.sample_shape:
            raise ValueError(
                f"token samples must have shape (n, {', '.join(map(str, self.sample_shape))}), "
                f"got {tuple(samples.shape)}"
            )
        return self.decode(samples.argmax(dim=-1))

    def picture(
        self,
        samples: Tensor,
        path: Path,
        title: str,
        real: Tensor | None = None,
        strip: bool = False,
    ) -> None:
        show_tokens([one_line(text) for text in self.decode_samples(samples)], path, title)

    def send(self, trainer: Trainer, key: str, path: Path, samples: Tensor, g_step: int) -> None:
        """The picture, and the decoded samples as text: a table (``index``, ``text``) for
        W&B and a text summary for TensorBoard, under ``<key>_text``."""
        from gan_je.loggers import send_text

        super().send(trainer, key, path, samples, g_step)
        send_text(trainer, f"{key}_text", self.decode_samples(samples), g_step)

    def write(self, samples: Tensor, path: Path, file_format: str, title: str, strip: bool) -> None:
        """As :meth:`SampleKind.write`, and ``"txt"``: the decoded samples, one a line
        (:func:`gan_je.text.one_line`), UTF-8, written atomically."""
        self.check_format(file_format)
        if file_format != "txt":
            super().write(samples, path, file_format, title, strip)
            return
        self.write_text(samples.argmax(dim=-1), path)

    def write_text(self, ids: Tensor, path: Path) -> None:
        """The ``txt`` file of token ``ids`` ``(n, length)``: each sequence decoded
        (:meth:`decode`), one a line (:func:`gan_je.text.one_line`), UTF-8, written atomically."""
        write_atomically(path, "".join(f"{one_line(line)}\n" for line in self.decode(ids)))


def _is_clip(path: Path) -> bool:
    """Whether ``path`` is one of :meth:`Waveform.write_wav`'s numbered clip files."""
    return path.is_file() and path.suffix == ".wav" and path.stem.isdigit()


@register_kind
class Waveform(SampleKind):
    """Sound ``(channels, length)`` in [-1, 1] at ``sample_rate`` samples per second.

    Pictured as a grid of log-mel spectrograms (:func:`gan_je.audio.log_mel` of each clip's
    mono mix, the mean of its channels; :func:`gan_je.pictures.show_spectrograms`), sent to
    the loggers as the picture and the first clips as sound
    (:func:`gan_je.loggers.send_audio`), and written as WAV files (``format=wav``, and beside
    each picture in the run directory): :meth:`write_wav`."""

    name = "waveform"
    bounded = True
    companion_formats = ("wav",)
    #: The silence between two clips in the ``.wav`` that holds them all, in seconds.
    GAP_SECONDS: ClassVar[float] = 0.25
    #: The most STFT points of the picture's spectrograms (fewer for shorter clips).
    PICTURE_FFT: ClassVar[int] = 512
    #: The most clips the picture draws (the first ones; only these are transformed).
    PICTURE_CLIPS: ClassVar[int] = 16

    def check(self) -> None:
        rate = self.spec.get("sample_rate")
        if not (is_int(rate) and rate >= 1):
            raise self._refuse("an int sample_rate >= 1 (samples per second)")
        if len(self.sample_shape) != 2:
            raise self._refuse("a sample_shape (channels, length)")

    @property
    def rate(self) -> int:
        """Samples per second."""
        return int(self.spec["sample_rate"])

    @property
    def has_picture(self) -> bool:
        return self.sample_shape[1] >= 2  # a spectrogram needs two samples

    @property
    def formats(self) -> tuple[str, ...]:
        return (*super().formats, "wav")

    def clips(self, samples: Tensor) -> Tensor:
        """``samples`` checked to be clips ``(n >= 1, channels, length)`` of this spec, as
        float32 on the CPU."""
        if samples.ndim != 3 or samples.shape[0] == 0 or samples.shape[1:] != self.sample_shape:
            channels, length = self.sample_shape
            raise ValueError(
                f"waveform samples must have shape (n >= 1, {channels}, {length}), "
                f"got {tuple(samples.shape)}"
            )
        return samples.detach().float().cpu()

    def picture(
        self,
        samples: Tensor,
        path: Path,
        title: str,
        real: Tensor | None = None,
        strip: bool = False,
    ) -> None:
        """The log-mel spectrograms of the first 16 clips' mono mixes, in a grid (one row for
        ``strip``), time in seconds: STFTs of ``n_fft = min(512, the largest power of 2 up to
        the clip length)`` points every ``n_fft / 4`` samples, ``min(40, n_fft / 4)`` mel
        bands."""
        from gan_je.audio import log_mel

        if not self.has_picture:
            super().picture(samples, path, title, real, strip)  # refuses
        mono = self.clips(samples)[: self.PICTURE_CLIPS].mean(dim=1)
        n_fft = min(self.PICTURE_FFT, 2 ** int(math.log2(self.sample_shape[1])))
        hop = max(1, n_fft // 4)
        spectrograms = log_mel(mono, self.rate, n_fft, hop, n_mels=min(40, max(1, n_fft // 4)))
        columns = len(mono) if strip else None
        show_spectrograms(spectrograms, path, title, self.rate, hop, columns=columns)

    def send(self, trainer: Trainer, key: str, path: Path, samples: Tensor, g_step: int) -> None:
        """The picture, and the first clips as sound under ``<key>_audio``
        (:func:`gan_je.loggers.send_audio`)."""
        from gan_je.loggers import send_audio

        super().send(trainer, key, path, samples, g_step)
        send_audio(trainer, f"{key}_audio", self.clips(samples), self.rate, g_step)

    def write(self, samples: Tensor, path: Path, file_format: str, title: str, strip: bool) -> None:
        """As :meth:`SampleKind.write`, and ``"wav"``: :meth:`write_wav`."""
        self.check_format(file_format)
        if file_format != "wav":
            super().write(samples, path, file_format, title, strip)
            return
        self.write_wav(samples, path)

    @staticmethod
    def clip_folder(path: Path) -> Path:
        """The folder of one WAV per clip beside ``path`` (``x.wav``: ``x/``)."""
        return path.with_suffix("")

    def check_clip_folder(self, path: Path) -> None:
        """Refuse, before anything is drawn or written, a :meth:`clip_folder` of ``path``
        that is a file or holds anything but numbered WAVs (``000.wav``: an earlier write's
        clips), so that writing never touches files gan_je did not write there."""
        folder = self.clip_folder(path)
        if folder.exists() and not folder.is_dir():
            raise ConfigError(
                f"cannot write the clips of {path} into {folder}: it is a file, not a folder; "
                "choose another file name or move that file"
            )
        foreign = (
            sorted(p.name for p in folder.iterdir() if not _is_clip(p)) if folder.exists() else []
        )
        if foreign:
            raise ConfigError(
                f"cannot write the clips of {path} into {folder}: it holds files gan_je did "
                f"not write there ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                "choose another file name or folder"
            )

    def write_wav(self, samples: Tensor, path: Path) -> None:
        """The clips ``samples`` ``(n, channels, length)`` as 16-bit PCM WAV files at the
        spec's rate (:func:`gan_je.audio.write_wav`, each written atomically, values clipped
        to [-1, 1]), every channel kept: ``path`` holds all n clips one after another with
        :attr:`GAP_SECONDS` of silence between two (one file to listen to at once), and the
        folder :meth:`clip_folder` beside it one file per clip, ``000.wav``, ``001.wav``, ...
        (more digits from 1,000 clips on, so that names sort in order). The folder may hold
        only an earlier write's numbered WAVs (:meth:`check_clip_folder`); those beyond these
        clips are removed, so that it holds these clips alone."""
        from gan_je.audio import write_wav

        clips = self.clips(samples)
        if path.suffix != ".wav":
            raise ValueError(f"a waveform's WAV file must end in .wav, got {path}")
        self.check_clip_folder(path)
        folder = self.clip_folder(path)
        folder.mkdir(parents=True, exist_ok=True)
        width = max(3, len(str(len(clips) - 1)))
        names = [f"{index:0{width}d}.wav" for index in range(len(clips))]
        for name, clip in zip(names, clips, strict=True):
            write_wav(folder / name, clip, self.rate)
        for old in folder.iterdir():  # only numbered WAVs: an earlier, larger write's
            if old.name not in names:
                old.unlink()
        silence = clips.new_zeros(clips.shape[1], round(self.GAP_SECONDS * self.rate))
        pieces = [piece for clip in clips for piece in (silence, clip)][1:]
        write_wav(path, torch.cat(pieces, dim=-1), self.rate)
