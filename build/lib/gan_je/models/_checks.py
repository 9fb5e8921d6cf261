"""Argument checks shared by the generators and discriminators."""

from collections.abc import Sequence

from torch import Tensor

from gan_je.checks import is_int


def shape_tuple(sample_shape: Sequence[int]) -> tuple[int, ...]:
    """Turn a sample shape (list, tuple, Hydra ListConfig, torch.Size) into a tuple of ints > 0."""
    try:
        shape = tuple(sample_shape)
    except TypeError:
        shape = ()
    if not shape or not all(is_int(s) and s >= 1 for s in shape):
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
