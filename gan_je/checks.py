"""Argument checks shared across gan_je (data, models, losses, features, the module and
callbacks): one place for the rules and the error messages. Python and NumPy numbers count;
bools do not."""

from __future__ import annotations

import numbers


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


def is_int(value: object) -> bool:
    """True for a Python or NumPy integer that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """True for a Python or NumPy real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
