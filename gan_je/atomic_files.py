"""Files replaced in one step (temporary file, fsync, ``os.replace``): the run record, the
feature cache and checkpoints (:mod:`gan_je.checkpoints`) are written this way, so a crash,
``kill -9`` or a full disk leaves the old file or the new one, never a truncated one. A file
that cannot be written (a full disk, a read-only folder) is one
:class:`gan_je.errors.RecordError` saying why and how much space is left."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from gan_je.errors import RecordError


def write_atomically(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one step (see :func:`replaced_atomically`)."""
    with replaced_atomically(path) as file:
        file.write(text.encode())


@contextmanager
def replaced_atomically(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write that replaces ``path`` in one step when the block ends: it is
    written to a temporary file in the same folder, flushed to disk, then renamed over
    ``path`` (``os.replace``), so a reader or a crash (``kill -9``, a full disk) sees the old
    file or the new one, never a truncated one; on an error the temporary file is removed,
    and an ``OSError`` becomes a :class:`RecordError` (:func:`cannot_write`)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as err:
        raise RecordError(cannot_write(path, err)) from err
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private
        os.replace(temporary, path)
    except BaseException as err:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise RecordError(cannot_write(path, err)) from err
        raise


def cannot_write(path: str | Path, err: BaseException, what: str = "") -> str:
    """Why ``path`` (``what``: "the checkpoint") could not be written, in one sentence: the
    error and the space left there; the previous file is kept whole."""
    folder = next((p for p in Path(path).parents if p.exists()), Path("/"))
    free = shutil.disk_usage(folder).free / 2**20
    reason = " ".join(str(getattr(err, "strerror", None) or err).split())[:200]
    name = f"{what} {path}" if what else str(path)
    return (
        f"cannot write {name} ({reason}; {free:.1f} MiB free there); the previous one is kept whole"
    )
