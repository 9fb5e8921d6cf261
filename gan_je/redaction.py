"""Secrets out of everything a run writes or uploads: the W&B config, tags, job type and
command line, ``summary.json``, checkpoints, sweep reports and the sweep's ``multirun.yaml``.
A setting is secret when its key names one (:data:`SECRET_WORDS`), also inside a dict given on
the command line (``'+db={host: h, password: p}'``); its value is replaced by
:data:`REDACTED`. Hydra's own ``.hydra/`` folder in each run directory keeps the config as
given, on the local disk (docs/reliability.md lists every file that holds it)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gan_je.atomic_files import write_atomically

log = logging.getLogger(__name__)
SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "credential")
REDACTED = "***"
#: ``key: value`` inside an override's value (a dict, a list of dicts, a sweep over them):
#: a quoted or bare key, then a quoted string, a flat ``{...}`` / ``[...]`` or a bare value.
_PAIR = re.compile(
    r"""(?P<key>'[^']*'|"[^"]*"|[\w.-]+)(?P<sep>\s*:\s*)"""
    r"""(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\{[^{}]*\}|\[[^\[\]]*\]|[^,}\]\s]+)"""
)


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
    """Command-line overrides (``key=value``) with the values of secret keys redacted, also
    those of secret keys inside a value (``+db={host: h, password: p}`` becomes
    ``+db={host: h, password: ***}``)."""
    public = []
    for item in overrides:
        key, equals, value = str(item).partition("=")
        if not equals:
            public.append(str(item))
        elif is_secret(key):
            public.append(f"{key}={REDACTED}")
        else:
            public.append(f"{key}={_PAIR.sub(_redacted_pair, value)}")
    return public


#: One ``key=value`` item of Hydra's ``hydra.job.override_dirname`` (items joined by ``,``).
_ITEM = re.compile(r"(?P<start>^|,)(?P<key>[+~]*[\w.-]+)=(?P<value>\{[^{}]*\}|\[[^\[\]]*\]|[^,]*)")


def public_override_line(text: str) -> str:
    """Hydra's ``override_dirname`` (the overrides as one ``key=value,key=value`` line) with
    the values of secret keys redacted, inside dict values too."""
    text = _ITEM.sub(
        lambda m: f"{m['start']}{m['key']}={REDACTED}" if is_secret(m["key"]) else m[0], text
    )
    return _PAIR.sub(_redacted_pair, text)


def _redacted_pair(match: re.Match[str]) -> str:
    key = match["key"].strip("'\"")
    return f"{match['key']}{match['sep']}{REDACTED}" if is_secret(key) else match[0]


def redact_sweep_config(path: str | Path) -> bool:
    """Replace a sweep's ``multirun.yaml`` (Hydra's composed config of the sweep, written
    when it starts) by its public copy: secret settings and the secrets in its recorded
    overrides (``hydra.overrides``, ``hydra.job.override_dirname``) redacted, interpolations
    left as they are. Returns whether it changed."""
    path = Path(path)
    if not path.is_file():
        return False
    original = OmegaConf.create(path.read_text())
    config = public_config(OmegaConf.to_container(original, resolve=False))
    hydra = config.get("hydra", {})
    overrides = hydra.get("overrides", {})
    for name in ("task", "hydra"):
        if isinstance(overrides.get(name), list):
            overrides[name] = public_overrides(overrides[name])
    job = hydra.get("job", {})
    if isinstance(job.get("override_dirname"), str):
        job["override_dirname"] = public_override_line(job["override_dirname"])
    public = OmegaConf.to_yaml(config)
    if public == OmegaConf.to_yaml(original):
        return False
    write_atomically(path, public)
    return True


class RedactSweepConfig(HydraCallback):
    """Hydra callback (``conf/hydra/default.yaml``): the sweep's ``multirun.yaml`` redacted
    (:func:`redact_sweep_config`) as each job starts, where a SLURM job runs too, and when
    the sweep ends. Hydra writes it when the sweep starts, so it holds the secrets until its
    first job starts."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            self._redact(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._redact(config)

    @staticmethod
    def _redact(config: DictConfig) -> None:
        """Silent when it works: a log line here, before the job runs, would open the job's
        ``train.log`` in a directory the job may yet refuse (:mod:`gan_je.run_directory`)."""
        path = Path(config.hydra.sweep.dir) / "multirun.yaml"
        try:
            redact_sweep_config(path)
        except (OSError, ValueError) as err:  # never fail a job over it (RecordError too)
            log.warning("could not redact the secrets in %s (%s)", path, err)
