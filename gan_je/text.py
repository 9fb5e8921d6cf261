r"""Text kept one item a line (decoded token sequences in a ``.txt`` file, a picture, a
TensorBoard text summary): :func:`one_line` escapes what would end a line, as a Python string
literal does, so a line reads back with
``line.encode("latin-1", "backslashreplace").decode("unicode_escape")``."""

from __future__ import annotations

#: What ends a line (the characters ``str.splitlines`` breaks at), and the backslash that
#: escapes them.
_ESCAPED = "\\\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_ONE_LINE = str.maketrans({character: ascii(character)[1:-1] for character in _ESCAPED})


def one_line(text: str) -> str:
    r"""``text`` on one line: a backslash and every character that ends a line (those
    ``str.splitlines`` breaks at: ``\n``, ``\r``, ``\x0b``, ``\x0c``, ``\x1c`` to ``\x1e``,
    ``\x85``, ``\u2028``, ``\u2029``) written as in a Python string literal (``\\``,
    ``\n``, ...); everything else as it is."""
    if not isinstance(text, str):
        raise TypeError(f"one_line needs a string, got {type(text).__name__}")
    return text.translate(_ONE_LINE)
