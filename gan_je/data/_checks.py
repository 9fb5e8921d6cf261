"""Size checks of the data modules (the general checks: :mod:`gan_je.checks`)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

from gan_je.checks import (
    available_memory,
    check_fits_in_memory,
    is_int,
    is_real,
    non_negative_int,
    positive_int,
)
from gan_je.errors import DataError

log = logging.getLogger(__name__)


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


def check_samples_fit(n_train: int, n_val: int, sample_shape: Sequence[int]) -> None:
    """Refuse, before drawing them, ``n_train`` training and ``n_val`` validation samples of
    ``sample_shape`` that cannot be held in memory (a :class:`~gan_je.errors.ConfigError`
    naming ``data.n_train`` or ``data.n_val``): each sample takes its float32 values and
    int64 label, counted twice for the temporaries of drawing them."""
    each = 2 * (4 * math.prod(sample_shape) + 8)
    check_fits_in_memory("data.n_val", n_val, each)
    check_fits_in_memory("data.n_train", n_train, each, available_memory() - n_val * each)


def capped_workers(num_workers: int) -> int:
    """``num_workers`` data loader processes, at most one per CPU this process may use
    (``os.sched_getaffinity``: a SLURM or container allocation, not the machine), with one
    warning when capped: more processes than CPUs only add start-up time and memory, and
    ``data.num_workers=100000`` would fork until a process limit stops it."""
    num_workers = non_negative_int("num_workers", num_workers)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    if num_workers > cpus:
        log.warning(
            "data.num_workers=%d is more than the %d CPUs here: using %d", num_workers, cpus, cpus
        )
        return cpus
    return num_workers
