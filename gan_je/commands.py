"""What the three commands (``gan_je.train``, ``gan_je.evaluate``, ``gan_je.generate``)
share: building from configs with one-sentence errors, the device, and how a user-caused
failure ends a command."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from gan_je.errors import ConfigError, GanJeError
from gan_je.extras import require_for_target

T = TypeVar("T")


def build_from_config(node: DictConfig, setting: str, **kwargs: Any) -> Any:
    """``instantiate(node, **kwargs)``, where a part that refuses its settings becomes one
    :class:`ConfigError` naming ``setting`` (``data``, ``model``, ...), and a part whose
    optional dependency is missing one naming the extra to install."""
    require_for_target(node, setting)
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, GanJeError):
            raise cause from None
        if isinstance(cause, TypeError | ValueError) or _lightning_refusal(cause):
            raise ConfigError(f"{setting}: {cause}") from err
        raise


def _lightning_refusal(err: BaseException | None) -> bool:
    """Whether ``err`` is Lightning refusing its settings (``trainer.max_epochs=-5``): its
    ``MisconfigurationException``, a sentence for the user. Lightning is imported only here,
    on a failure, so that ``gan_je.generate`` starts without it."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    return isinstance(err, MisconfigurationException)


def import_packages(names: Any) -> None:
    """Import the packages a config lists under ``imports`` (your own parts register
    themselves with :func:`gan_je.parts.register` when imported). The list comes from the
    user's own config or command line, never from a checkpoint (nor from a resumed run's
    record unless the command line repeats it: :func:`gan_je.run_settings.check_recorded_code`)."""
    for name in names or []:
        try:
            importlib.import_module(str(name))
        except ImportError as err:
            raise ConfigError(f"imports: cannot import {name} ({err})") from err


def chosen(group: str) -> str:
    """The option chosen for a config group in this Hydra run (``?`` outside one)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return "?"
    return str(HydraConfig.get().runtime.choices.get(group, "?"))


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``."""
    import torch  # only here: the commands' --help starts without it

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") or (device == "cuda" and not torch.cuda.is_available()):
        raise ConfigError(f"device={device} is not available here; use cpu or auto")
    return device


def run_command(name: str, body: Callable[[], T]) -> T:
    """``body()``; a :class:`GanJeError` ends the command with one sentence on stderr and
    exit status 1, unless ``HYDRA_FULL_ERROR=1`` asks for the traceback."""
    try:
        return body()
    except GanJeError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise SystemExit(f"gan_je.{name}: {err}") from None
