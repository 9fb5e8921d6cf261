"""Optional dependencies: the extras of ``pyproject.toml`` and the one sentence a user sees
when a feature needs one that is not installed.

``pip install gan_je`` installs what the default experiment needs; each extra adds what one
feature needs (``pip install 'gan_je[faiss]'``), and ``gan_je[all]`` adds every one.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from gan_je.errors import ConfigError


class MissingExtraError(ConfigError, ImportError):
    """A feature was asked for whose optional dependency is not installed."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or fail in one sentence naming the extra that
    installs it: ``require("faiss", "faiss", "backend='faiss'")``.

    Raises:
        MissingExtraError: ``module`` cannot be imported (not installed, or broken).
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtraError(
            f"{feature} needs the optional package {module.split('.')[0]}, which is not "
            f"installed here ({err}): pip install 'gan_je[{extra}]'"
        ) from err
