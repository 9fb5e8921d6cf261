"""Folders of files as data sets (:mod:`~gan_je.data.image_folder`,
:mod:`~gan_je.data.audio_folder`): finding the files and labelling them by subfolder.

The label of a file is the index of the top-level subfolder it lies under (subfolders sorted
by name; files directly in the folder form a class of their own, sorted first as
:data:`ROOT_CLASS`), so a folder without subfolders is one class, 0, and a folder laid out as
``root/<class>/<file>`` (torchvision's ``ImageFolder``) is labelled by its class folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from gan_je.errors import DataError

#: Class name of the files lying directly in the root folder.
ROOT_CLASS = "."


def find_files(path: str | Path, extensions: Sequence[str], what: str, folder: str) -> list[Path]:
    """All files under ``path``, recursively, whose names end in one of ``extensions`` (lower
    case; matched case-insensitively), sorted; a :class:`DataError` if ``path`` is not a
    folder or holds none. ``what`` names the files in the messages ("images"), ``folder``
    the folder ("image folder")."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(
            f"{folder} {path} does not exist or is not a folder: set data.path "
            f"(path=...) to a folder of {what}"
        )
    files = sorted(
        file for file in path.rglob("*") if file.suffix.lower() in extensions and file.is_file()
    )
    if not files:
        raise DataError(
            f"no {what} in {path} or its subfolders (looked for files ending in "
            f"{', '.join(extensions)}): add {what} or point data.path at a folder of them"
        )
    return files


def class_name(root: Path, file: Path) -> str:
    """The class of ``file``: its top-level subfolder under ``root``, or :data:`ROOT_CLASS`."""
    parts = file.relative_to(root).parts
    return parts[0] if len(parts) > 1 else ROOT_CLASS


def labels(root: Path, files: Sequence[Path]) -> tuple[list[str], Tensor]:
    """The class names of ``files`` (sorted) and each file's label, its index among them."""
    classes = sorted({class_name(root, file) for file in files})
    index = {name: i for i, name in enumerate(classes)}
    return classes, torch.tensor([index[class_name(root, file)] for file in files])
