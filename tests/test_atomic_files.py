"""Files replaced in one step: a failed write leaves the old file and no temporary."""

import os

import pytest

from gan_je import atomic_files
from gan_je.atomic_files import write_atomically
from gan_je.errors import RecordError


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    write_atomically(path, "old\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_files.os, "fsync", disk_full)
    with pytest.raises(RecordError, match=r"cannot write .*summary.json \(No space left on dev"):
        write_atomically(path, "new\n" * 1000)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["summary.json"]
