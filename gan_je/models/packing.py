"""PacGAN packing (Lin et al. 2018): the discriminator judges ``m`` samples at once.

The discriminator of a packed GAN sees ``m`` samples of one source (all real or all
generated) joined into one input and returns one logit for the pack. A pack of generated
samples from a collapsed generator holds near-copies, which real packs never do, so the
discriminator can penalise missing diversity that a one-sample discriminator cannot see;
Lin et al. prove that packing with ``m`` samples amplifies the divergence of a collapsed
generator (their section 4) and report ``m = 2..4`` on the 2-D ring and grid.

Joining follows the paper's code: ``m`` consecutive samples are concatenated along the
first sample axis, so flat samples ``(d,)`` become ``(m·d,)`` and images ``(C, H, W)``
become ``(m·C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from gan_je.checks import positive_int
from gan_je.errors import ConfigError
from gan_je.models._checks import shape_tuple


def packed_shape(sample_shape: Sequence[int], pack: int) -> tuple[int, ...]:
    """The shape of one pack of ``pack`` samples of ``sample_shape``: the first axis times
    ``pack`` (``(d,) -> (pack·d,)``, ``(C, H, W) -> (pack·C, H, W)``)."""
    shape = shape_tuple(sample_shape)
    pack = positive_int("pack", pack)
    return (shape[0] * pack, *shape[1:])


def whole_packs(batch: Tensor, pack: int) -> Tensor:
    """The first samples of ``batch`` that fill whole packs of ``pack`` (a training batch
    is trimmed to a multiple of ``pack``).

    Raises:
        ConfigError: the batch holds fewer than ``pack`` samples.
    """
    n = batch.shape[0] - batch.shape[0] % positive_int("pack", pack)
    if n == 0:
        raise ConfigError(
            f"a training batch of {batch.shape[0]} samples holds no pack of "
            f"model.pack={pack}: raise data.batch_size"
        )
    return batch[:n]


def pack_samples(samples: Tensor, pack: int) -> Tensor:
    """``(B, s0, s1, ...) -> (B / pack, pack·s0, s1, ...)``: each ``pack`` consecutive
    samples joined along their first axis. ``pack = 1`` returns ``samples`` unchanged."""
    pack = positive_int("pack", pack)
    if samples.ndim < 2:
        raise ValueError(
            f"samples must have shape (batch, ...) with at least one sample axis, "
            f"got {tuple(samples.shape)}"
        )
    batch = samples.shape[0]
    if batch % pack:
        raise ValueError(
            f"a batch of {batch} samples cannot be split into packs of {pack}: use a batch "
            f"size that is a multiple of module.pack"
        )
    if pack == 1:
        return samples
    rest = samples.shape[2:]
    return samples.reshape(batch // pack, pack * samples.shape[1], *rest)
