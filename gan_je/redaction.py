"""Secrets out of everything a run writes or uploads: the W&B config, tags and job type,
``summary.json``, checkpoints and sweep reports. A setting is secret when its key names one
(:data:`SECRET_WORDS`); its value is replaced by :data:`REDACTED`. Hydra's own ``.hydra/``
folder in the run directory keeps the config as given (it stays on the local disk)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "credential")
REDACTED = "***"


def is_secret(key: str) -> bool:
    """Whether a config key (``a.b.api_key``, ``+secret_password``) names a secret."""
    name = str(key).lstrip("+~").rsplit(".", 1)[-1].lower()
    return any(word in name for word in SECRET_WORDS)


def public_config(config: Any) -> Any:
    """A copy of a nested config (dicts, lists, values) with every secret value redacted."""
    if isinstance(config, Mapping):
        return {
            key: REDACTED if is_secret(key) else public_config(value)
            for key, value in config.items()
        }
    if isinstance(config, list | tuple):
        return [public_config(item) for item in config]
    return config


def public_overrides(overrides: Iterable[str]) -> list[str]:
    """Command-line overrides (``key=value``) with the values of secret keys redacted."""
    public = []
    for item in overrides:
        key, equals, _ = str(item).partition("=")
        public.append(f"{key}={REDACTED}" if equals and is_secret(key) else str(item))
    return public
