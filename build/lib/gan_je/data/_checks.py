"""Validation-size checks of the data modules (the general checks: :mod:`gan_je.checks`)."""

from __future__ import annotations

from gan_je.checks import is_int, is_real, positive_int
from gan_je.errors import DataError


def check_val_size(value: object, name: str = "val_size") -> int | float:
    """Check a validation size: an int >= 1 (a count) or a float in (0, 1) (a fraction)."""
    if is_int(value):
        return positive_int(name, value)
    if is_real(value) and 0 < value < 1:
        return float(value)
    raise ValueError(
        f"{name} must be a number of samples (an int >= 1) or a fraction in (0, 1), got {value!r}"
    )


def resolve_val_size(value: int | float, n: int, name: str = "val_size") -> int:
    """Turn a checked ``val_size`` into a count of the ``n`` samples, leaving at least one
    for each of train and val; a :class:`DataError` if the data is too small for that."""
    count = round(value * n) if isinstance(value, float) else value
    if n < 2:
        raise DataError(
            f"the data set has {n} sample(s), too few to split into train and val (one each at "
            "least): add data"
        )
    if not 1 <= count < n:
        raise DataError(
            f"{name}={value!r} gives {count} validation samples out of {n}, but train and val "
            f"need at least one each: pass a {name} between 1 and {n - 1}, or a fraction of "
            f"{n} that rounds to such a count"
        )
    return count
