"""The base of the audio data modules: mono clips ``(1, length)`` at a sample rate."""

from __future__ import annotations

from typing import Any

from gan_je.checks import positive_int
from gan_je.data.base import ArrayDataModule
from gan_je.data.kinds import kind_of

#: Seconds per clip when no length is given: 16,384 samples at 16 kHz (WaveGAN's SC09 clips).
DEFAULT_SECONDS = 16384 / 16000


def default_length(sample_rate: int) -> int:
    """The clip length when none is given: :data:`DEFAULT_SECONDS` at ``sample_rate``
    (8,192 samples at 8 kHz, 16,384 at 16 kHz)."""
    return round(DEFAULT_SECONDS * positive_int("sample_rate", sample_rate))


class WaveformDataModule(ArrayDataModule):
    """Mono clips ``(1, length)`` float32 in [-1, 1] at ``sample_rate`` samples per second.

    Args:
        sample_rate: samples per second of every clip.
        length: samples per clip; ``None``: :func:`default_length` of ``sample_rate``.
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ``data_seed``, ... of
            :class:`~gan_je.data.base.ArrayDataModule`.
    """

    kind = "waveform"

    def __init__(self, sample_rate: int, length: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sample_rate = positive_int("sample_rate", sample_rate)
        self.length = (
            default_length(self.sample_rate) if length is None else positive_int("length", length)
        )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (1, self.length)

    @property
    def data_spec(self) -> dict[str, Any]:
        spec = {"kind": self.kind, "sample_shape": [1, self.length]}
        return kind_of({**spec, "sample_rate": self.sample_rate}).spec
