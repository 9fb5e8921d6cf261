"""Where the entropy regulariser measures a generated batch (``model.entropy_space``).

The generator's loss can reward the k-NN entropy of its batch (``loss.entropy_weight``). That
entropy is taken in one of two spaces: ``"features"``, the metric's features (what
``val/entropy_fake`` measures), or ``"discriminator"``, the discriminator's last hidden layer
``h`` (its ``features`` method) projected as ``h Q`` onto ``DISCRIMINATOR_ENTROPY_DIM``
orthonormal directions, a space that moves with what the discriminator tells apart.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from gan_je import seeding
from gan_je.errors import ConfigError

#: where the entropy regulariser can measure a generated batch (``model.entropy_space``)
ENTROPY_SPACES = ("features", "discriminator")
#: dimension of the random projection of the discriminator's features the regulariser sees
DISCRIMINATOR_ENTROPY_DIM = 8


class EntropySpace(nn.Module):
    """The coordinates the entropy regulariser measures of a generated batch.

    Args:
        space: ``"features"`` or ``"discriminator"`` (see the module docstring).
        pack: the discriminator's packing (``model.pack``); the discriminator space measures
            single samples, so it needs ``pack == 1``.
        seed: seeds the projection ``Q`` (the run's ``projection`` stream): the same for the
            whole run and after a resume. It is a buffer that is not saved (it moves with the
            module and is rebuilt from the seed).

    Raises:
        ConfigError: an unknown ``space``, or the discriminator space with ``pack > 1``.
    """

    def __init__(self, space: str, pack: int, seed: int) -> None:
        super().__init__()
        if space not in ENTROPY_SPACES:
            raise ConfigError(
                f"model.entropy_space must be one of {', '.join(ENTROPY_SPACES)}, got {space!r}"
            )
        if space == "discriminator" and pack > 1:
            raise ConfigError(
                f"model.entropy_space=discriminator measures single samples, but with "
                f"model.pack={pack} the discriminator sees packs: use "
                f"model.entropy_space=features or model.pack=1"
            )
        self.space, self.seed = space, seed
        self.register_buffer("projection", None, persistent=False)  # built at first use

    @property
    def log_suffix(self) -> str:
        """Appended to ``train/entropy_batch``: empty for the features, else ``_<space>``."""
        return "" if self.space == "features" else f"_{self.space}"

    def check(self, discriminator: nn.Module) -> None:
        """Refuse a discriminator the chosen space cannot read (no ``features`` method)."""
        if self.space == "discriminator" and not callable(getattr(discriminator, "features", None)):
            raise ConfigError(
                f"model.entropy_space=discriminator needs a discriminator with a features(x) "
                f"method (its last hidden layer); {type(discriminator).__name__} has none"
            )

    def forward(
        self, fake: Tensor, features: Callable[[Tensor], Tensor], discriminator: nn.Module
    ) -> Tensor:
        """``(B, n)`` coordinates of the generated batch ``fake``: ``features(fake)``, or
        ``h Q`` in float32 (also under mixed precision), ``Q`` a
        ``(dim h, DISCRIMINATOR_ENTROPY_DIM)`` matrix with orthonormal columns (QR of a
        seeded Gaussian matrix).

        With batch norm in the discriminator (``norm: batch``), ``h`` is normalised with the
        generated batch's own statistics: the regulariser then rewards how the samples spread
        relative to each other at that layer, not its overall scale."""
        if self.space == "features":
            return features(fake)
        hidden = discriminator.features(fake)
        if self.projection is None:
            if hidden.shape[1] < DISCRIMINATOR_ENTROPY_DIM:
                raise ConfigError(
                    f"model.entropy_space=discriminator projects the discriminator's "
                    f"{hidden.shape[1]} features onto {DISCRIMINATOR_ENTROPY_DIM} directions: "
                    f"widen the discriminator"
                )
            gaussian = torch.randn(
                hidden.shape[1],
                DISCRIMINATOR_ENTROPY_DIM,
                generator=seeding.generator(self.seed, "projection"),
                dtype=torch.float64,
            )
            self.projection = torch.linalg.qr(gaussian).Q.float().to(hidden.device)
        with torch.autocast(hidden.device.type, enabled=False):
            return hidden.float() @ self.projection
