"""Argument checks shared by the data modules: one place for the error messages."""

from __future__ import annotations

import numbers


def positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 1, else raise a ``ValueError`` naming ``name``."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: object) -> int:
    """Return ``value`` if it is an int >= 0, else raise a ``ValueError`` naming ``name``."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0, else raise a ``ValueError``."""
    if not _is_real(value) or not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_val_size(value: object, name: str = "val_size") -> int | float:
    """Check a validation size: an int >= 1 (a count) or a float in (0, 1) (a fraction)."""
    if _is_int(value):
        return positive_int(name, value)
    if _is_real(value) and 0 < value < 1:
        return float(value)
    raise ValueError(
        f"{name} must be a number of samples (an int >= 1) or a fraction in (0, 1), got {value!r}"
    )


def resolve_val_size(value: int | float, n: int, name: str = "val_size") -> int:
    """Turn a checked ``val_size`` into a count that leaves at least one training sample."""
    count = round(value * n) if isinstance(value, float) else value
    if not 1 <= count < n:
        raise ValueError(
            f"{name}={value!r} gives {count} validation samples out of {n}; "
            f"it must leave at least one sample for each of train and val"
        )
    return count


def choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
