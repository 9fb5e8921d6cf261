"""Feedback on long steps: a progress bar for any loop (shown only on a terminal), and the
one log line per validation that says how training goes (``train.log`` and the console)."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from typing import IO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(
    iterable: Iterable[T],
    desc: str,
    total: int | None = None,
    file: IO[str] | None = None,
) -> Iterable[T]:
    """``iterable``'s items, with a tqdm progress bar named ``desc`` on ``file`` (default
    stderr) while it is a terminal; nothing is drawn when it is not (a log file, a pipe, a
    test), so piped output stays readable. ``total``: the number of items, where
    ``len(iterable)`` does not say it. The bar is removed when the loop ends."""
    if not isinstance(desc, str) or not desc:
        raise ValueError(f"desc must be a non-empty string naming the step, got {desc!r}")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise ValueError(f"total must be a whole number of at least 0 or None, got {total!r}")
    stream = sys.stderr if file is None else file
    # disable=None: tqdm draws only when the stream is a terminal (isatty)
    return tqdm(iterable, desc=desc, total=total, file=stream, disable=None, leave=False)


#: What the validation line shows, in order: (metric key under ``val/``, its label).
VALIDATION_LINE_KEYS = (
    ("jsd", "val/jsd"),
    ("entropy_real", "H(real)"),
    ("entropy_fake", "H(gen)"),
    ("joint_entropy", "H(S,L)"),
)


def unit_name(base: float) -> str:
    """What a logarithm of ``base`` measures in: nats (e), bits (2), bans (10), else
    ``log<base> units``."""
    if base == math.e:
        return "nats"
    return {2: "bits", 10: "bans"}.get(base, f"log{base:g} units")


def validation_line(row: Mapping[str, float], base: float = math.e) -> str:
    """One validation's progress in a line, from its ``metrics.csv`` row (``g_step``,
    ``epoch`` and the logged ``val/<key>`` values with their ``val/<key>_se`` standard
    errors), e.g.::

        epoch 3  g_step 1200  val/jsd 0.251 ± 0.004  H(real) 3.120 ± 0.020
            H(gen) 2.950 ± 0.031  H(S,L) 3.728 ± 0.018  (nats)          (one line)

    The JSD (I(S;L)), the real and generated entropies and the joint entropy H(S,L) of
    sample and source, in the unit of the metric's logarithm ``base``; a value the metric did
    not log is left out, and its ``± se`` where the metric logs no standard error."""
    if "g_step" not in row:
        raise ValueError(f"the row has no g_step: {sorted(row)}")
    parts = [f"g_step {int(row['g_step'])}"]
    if "epoch" in row:
        parts.insert(0, f"epoch {int(row['epoch'])}")
    for key, label in VALIDATION_LINE_KEYS:
        value = row.get(f"val/{key}")
        if value is None:
            continue
        part = f"{label} {float(value):.3f}"
        se = row.get(f"val/{key}_se")
        if se is not None:
            part += f" ± {float(se):.3f}"
        parts.append(part)
    return "  ".join([*parts, f"({unit_name(base)})"])
