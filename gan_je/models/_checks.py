"""Argument checks shared by the generators and discriminators."""

from collections.abc import Sequence
from numbers import Integral

from torch import Tensor


def _is_count(value: object) -> bool:
    """True for a positive integer (Python or NumPy ints count; bools do not)."""
    return not isinstance(value, bool) and isinstance(value, Integral) and value >= 1


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int if it is a positive integer, else raise ValueError."""
    if not _is_count(value):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def shape_tuple(sample_shape: Sequence[int]) -> tuple[int, ...]:
    """Turn a sample shape (list, tuple, Hydra ListConfig, torch.Size) into a tuple of ints > 0."""
    try:
        shape = tuple(sample_shape)
    except TypeError:
        shape = ()
    if not shape or not all(_is_count(s) for s in shape):
        raise ValueError(
            f"sample_shape must be a non-empty sequence of positive integers, got {sample_shape!r}"
        )
    return tuple(int(s) for s in shape)


def check_samples(x: Tensor, sample_shape: tuple[int, ...]) -> None:
    """Raise ValueError unless ``x`` has shape (batch, *sample_shape)."""
    if tuple(x.shape[1:]) != sample_shape:
        expected = ", ".join(map(str, sample_shape))
        raise ValueError(
            f"the discriminator expects samples of shape (batch, {expected}), got {tuple(x.shape)}"
        )
