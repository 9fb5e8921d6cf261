"""Files replaced in one step (temporary file, fsync, ``os.replace``): the run record, the
feature cache and checkpoints (:mod:`gan_je.checkpoints`) are written this way, so a crash,
``kill -9`` or a full disk leaves the old file or the new one, never a truncated one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one step (see :func:`replaced_atomically`)."""
    with replaced_atomically(path) as file:
        file.write(text.encode())


@contextmanager
def replaced_atomically(path: str | Path) -> Iterator[BinaryIO]:
    """A binary file to write that replaces ``path`` in one step when the block ends: it is
    written to a temporary file in the same folder, flushed to disk, then renamed over
    ``path`` (``os.replace``), so a reader or a crash (``kill -9``, a full disk) sees the old
    file or the new one, never a truncated one; on an error the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
