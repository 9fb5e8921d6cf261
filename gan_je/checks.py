"""Argument checks shared across gan_je (data, models, losses, features, the module,
callbacks and the commands): one place for the rules and the error messages. Python and NumPy
numbers count; bools do not."""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from pathlib import Path

from gan_je.errors import ConfigError


def positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1, else raise a ``ValueError`` naming ``name``."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 0, else raise a ``ValueError`` naming ``name``."""
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise a ``ValueError``."""
    if not is_real(value) or not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def non_negative_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number >= 0, else raise a ``ValueError``."""
    if not is_real(value) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def probability(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a number in [0, 1], else raise a ``ValueError``."""
    if not is_real(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def finite_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number, else raise a ``ValueError``."""
    if not is_real(value) or not abs(value) < float("inf"):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def is_finite(value: object) -> bool:
    """True for a Python or NumPy real number, not a bool, that is neither NaN nor infinite."""
    return is_real(value) and math.isfinite(value)


def available_memory() -> int:
    """The bytes of memory this process can still allocate without swapping: ``MemAvailable``
    of ``/proc/meminfo`` on Linux (free memory plus the caches the kernel can drop), else the
    machine's physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits_in_memory(
    what: str, count: int, bytes_each: int, available: int | None = None
) -> None:
    """Refuse, before any work, ``count`` items of ``bytes_each`` bytes that cannot fit in
    ``available`` bytes (default: :func:`available_memory`): one :class:`ConfigError` naming
    ``what`` (the setting, e.g. ``n`` or ``data.n_train``), the bytes needed and the largest
    count that fits, instead of a ``MemoryError`` (or the kernel's OOM killer) after minutes
    of work. Counts what the caller counts; other allocations may still fail."""
    available = available_memory() if available is None else available
    if count * bytes_each > available:
        raise ConfigError(
            f"{what}={count} needs {_gigabytes(count * bytes_each)} of memory "
            f"({bytes_each} bytes each), more than the {_gigabytes(available)} available "
            f"here: at most {what}={available // bytes_each} fits"
        )


def _gigabytes(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


def check_writable(path: Path, hint: str) -> None:
    """Refuse, before any work, a file that could not be written at ``path``: a folder in its
    place, a file where a parent folder should be, or a folder where no file can be created
    (tried with a temporary file in the nearest existing folder, removed at once: permissions
    alone miss read-only file systems, and root ignores them). Creates nothing that stays.
    One :class:`ConfigError` naming the file, the reason and ``hint`` (what to do instead)."""
    if path.is_dir():
        raise ConfigError(f"cannot write {path}: it is a folder; {hint}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"cannot write {path}: {folder} is a file, not a folder; {hint}")
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".gan_je-write-test.")
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(f"cannot write {path} ({err.strerror or err}); {hint}") from None


def is_int(value: object) -> bool:
    """True for a Python or NumPy integer that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """True for a Python or NumPy real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
