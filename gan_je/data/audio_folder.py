"""AudioFolder: any folder of WAV files, as mono clips of one length and one sample rate.

WAV files (PCM, 8 to 32 bits, :func:`gan_je.audio.read_wav`) are found recursively and
labelled by the top-level subfolder they lie under (:mod:`gan_je.data._folders`: sorted
subfolder names; a flat folder is one class, 0). Each file is mixed down to mono (the mean of
its channels), resampled to ``sample_rate`` (:func:`gan_je.audio.resample`), kept from its
start and cut or padded with silence to ``length`` samples (:func:`gan_je.audio.fit_length`),
and clipped to [-1, 1] (resampling can overshoot a full-scale file a little); levels are kept
as recorded. Files whose names start with ``._`` are skipped: macOS writes such sidecars
(resource forks, not sound) beside every file it copies onto some disks. A missing or empty
folder and a file that cannot be read or resampled (a damaged file, a header saying 0 Hz)
are a :class:`~gan_je.errors.DataError` naming the file.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gan_je.audio import fit_length, read_wav, resample
from gan_je.checks import positive_int
from gan_je.data._checks import check_samples_fit, check_val_size, resolve_val_size
from gan_je.data._folders import class_name, find_files, labels
from gan_je.data._waveforms import WaveformDataModule
from gan_je.data.base import split
from gan_je.errors import DataError

#: File name endings (lower case) that are read as WAV files.
WAV_EXTENSIONS = (".wav", ".wave")


class AudioFolder(WaveformDataModule):
    """A folder of WAV files as ``(1, length)`` float32 clips in [-1, 1] (module doc).

    Args:
        path: the folder; searched recursively for files ending in :data:`WAV_EXTENSIONS`.
        sample_rate: samples per second every file is resampled to.
        length: samples per clip (longer files are cut, shorter ones padded with silence at
            the end); ``None``: 1.024 s (8,192 at 8 kHz, 16,384 at 16 kHz).
        val_size: validation clips, a count (int) or a fraction (float in (0, 1)); the split
            is seeded by ``data_seed``.
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ... of
            :class:`~gan_je.data.base.ArrayDataModule`.

    Attributes:
        classes: after :meth:`setup`, the class names (subfolder names, "." for the root);
            label ``i`` is ``classes[i]``.

    Everything is loaded into memory: N x length x 4 bytes (10,000 clips of 16,384 samples
    take 625 MiB).
    """

    def __init__(
        self,
        path: str | Path,
        sample_rate: int = 8000,
        length: int | None = None,
        val_size: int | float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(sample_rate, length, **kwargs)
        self.path = Path(path).expanduser()
        self.val_size = check_val_size(val_size)
        self.classes: list[str] | None = None

    @property
    def n_classes(self) -> int:
        if self.classes is None:  # before setup: scan the folder (cheap, no decoding)
            return len({class_name(self.path, file) for file in find_wavs(self.path)})
        return len(self.classes)

    def prepare_data(self) -> None:
        find_wavs(self.path)  # fail early on a missing or empty folder

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        files = find_wavs(self.path)
        n_val = resolve_val_size(self.val_size, len(files))
        check_samples_fit(len(files) - n_val, n_val, self.sample_shape)
        self.classes, y = labels(self.path, files)
        with ThreadPoolExecutor() as pool:  # scipy's filtering releases the GIL
            clips = list(pool.map(lambda f: load_clip(f, self.sample_rate, self.length), files))
        x = torch.from_numpy(np.stack(clips)).unsqueeze(1)
        return split(x, y, n_val, self.data_seed)


def find_wavs(path: str | Path) -> list[Path]:
    """All WAV files under ``path``, recursively, sorted, but macOS's ``._*`` sidecars; a
    :class:`DataError` if ``path`` is not a folder or holds none."""
    files = find_files(path, WAV_EXTENSIONS, "WAV files", "audio folder")
    wavs = [file for file in files if not file.name.startswith("._")]
    if not wavs:
        raise DataError(
            f"no WAV files in {path} or its subfolders but macOS's '._*' sidecars (not "
            "sound): add WAV files or point data.path at a folder of them"
        )
    return wavs


def load_clip(file: Path, sample_rate: int, length: int) -> np.ndarray:
    """``(length,)`` float32 in [-1, 1]: ``file`` mixed down to mono, resampled to
    ``sample_rate``, cut or padded to ``length`` (module doc); a :class:`DataError` naming
    the file if it cannot be read or resampled, or holds no samples."""
    sample_rate, length = positive_int("sample_rate", sample_rate), positive_int("length", length)
    try:
        clip, rate = read_wav(file)
    except (ValueError, OSError) as err:
        raise DataError(
            f"cannot read {file} ({err}): it is damaged or not a PCM WAV file; convert it "
            "(ffmpeg -i in.x -c:a pcm_s16le out.wav), replace, delete or move it"
        ) from err
    if clip.shape[1] == 0:
        raise DataError(f"{file} holds no samples: delete or move it")
    try:
        mono = resample(clip.mean(axis=0), rate, sample_rate).astype(np.float32)
    except (ValueError, MemoryError) as err:
        raise DataError(
            f"cannot resample {file} from {rate} to {sample_rate} Hz ({type(err).__name__}: "
            f"{err}); convert it (ffmpeg -i in.wav -ar {sample_rate} out.wav) or move it"
        ) from err
    return np.clip(fit_length(mono, length), -1.0, 1.0)
