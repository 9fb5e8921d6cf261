"""The settings a resumed run continues with: its own, as recorded in ``<run>/.hydra/``.

``python -m gan_je.train resume=true hydra.run.dir=<run>`` (or ``ckpt_path=`` a checkpoint
inside the run, or a requeued SLURM job) continues the run with the settings it was started
with (``.hydra/config.yaml``, written by :func:`gan_je.run_directory.write_hydra_record`),
whatever Hydra composed from the command line. The overrides the user typed apply on top
only where they cannot change what is trained (:data:`SAFE_ON_RESUME`); any other that
differs from the recorded value is refused in one sentence naming the key. To change a
setting, start a new run from the checkpoint (``ckpt_path=``) in another directory.

A run directory is data, as a checkpoint is: the code its record names (``imports``, the
``_target_`` of every node Hydra instantiates) runs only where gan_je's own configs or this
command line name it too (:func:`check_recorded_code`).
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from gan_je.errors import ConfigError
from gan_je.redaction import REDACTED, is_secret, public_overrides

log = logging.getLogger(__name__)
#: The settings a resumed run may change (a key and everything under it), as none changes
#: what is trained: how long it trains (a larger ``max_epochs``: the checkpoint refuses a
#: smaller one), where it runs (accelerator, devices, nodes and the strategy that joins them;
#: ``batch_size`` is per process, so more devices mean larger batches from then on), what it
#: reports (loggers, W&B tags, progress, the model summary, sample pictures, logging frequency), the
#: data loader's worker processes, where files live (``paths``), the metric returned to
#: sweepers, and how this start treats its directory. ``trainer.precision`` is not among
#: them: it changes every later step's numerics, and a ``16-mixed`` checkpoint's gradient
#: scaler state means nothing to a ``32-true`` run.
SAFE_ON_RESUME = (
    "resume", "ckpt_path", "overwrite", "optimized_metric", "paths", "logger", "tags",
    "trainer.max_epochs", "trainer.max_steps", "trainer.max_time",
    "trainer.accelerator", "trainer.devices", "trainer.num_nodes", "trainer.strategy",
    "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.log_every_n_steps",
    "data.num_workers", "callbacks.progress", "callbacks.samples",
)  # fmt: skip
#: Settings a resumed run always takes from its command line: which checkpoint it continues
#: and the directory it continues in (the one it was started from).
FROM_COMMAND_LINE = ("resume", "ckpt_path", "overwrite", "paths.output_dir")
_MISSING = object()


@dataclass(frozen=True)
class RunSettings:
    """A run's settings as Hydra records them: the task ``config`` (unresolved), the
    ``choices`` of each config group (``hydra.runtime.choices``; ``None`` where not
    recorded) and the command line's ``overrides`` (``hydra.overrides.task``)."""

    config: DictConfig
    choices: dict[str, Any] | None
    overrides: list[str]


def is_safe_on_resume(key: str) -> bool:
    """Whether the setting ``key`` (dotted: ``trainer.max_epochs``) may change when a run
    is resumed (:data:`SAFE_ON_RESUME`)."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"a setting's key must be a non-empty string, not {key!r}")
    return any(key == safe or key.startswith(safe + ".") for safe in SAFE_ON_RESUME)


def recorded_settings(output_dir: str | Path) -> RunSettings | None:
    """The settings recorded in ``<output_dir>/.hydra/`` (``config.yaml``, and the group
    choices and overrides of ``hydra.yaml`` / ``overrides.yaml`` where present); ``None``
    where the directory holds no ``config.yaml`` (a run made by hand, not by
    ``gan_je.train``). A record that cannot be read is refused in one sentence."""
    folder = Path(output_dir) / ".hydra"
    if not (folder / "config.yaml").is_file():
        return None
    try:
        config = OmegaConf.load(folder / "config.yaml")
        hydra = OmegaConf.load(folder / "hydra.yaml") if (folder / "hydra.yaml").is_file() else None
        overrides = (
            OmegaConf.load(folder / "overrides.yaml")
            if (folder / "overrides.yaml").is_file()
            else []
        )
    except Exception as err:  # OmegaConf raises its own YAML and OS errors
        raise ConfigError(f"cannot read the run's recorded settings in {folder} ({err})") from None
    if not isinstance(config, DictConfig):
        raise ConfigError(f"{folder / 'config.yaml'} holds no settings")
    choices = OmegaConf.select(hydra, "hydra.runtime.choices") if hydra is not None else None
    return RunSettings(
        config=config,
        choices=OmegaConf.to_container(choices) if isinstance(choices, DictConfig) else None,
        overrides=[str(item) for item in overrides] if overrides is not None else [],
    )


def settings_to_resume(recorded: RunSettings, given: RunSettings) -> RunSettings:
    """The settings a resumed run continues with: ``recorded`` (the run's own), with the
    overrides the user typed (``given.overrides``, with ``given.config`` and
    ``given.choices`` the config and choices Hydra composed from them) applied where they
    are safe to change (:func:`is_safe_on_resume`), and :data:`FROM_COMMAND_LINE` taken from
    ``given``. An override equal to the recorded value, or a group choice equal to the
    recorded one (``experiment=ring`` repeated), changes nothing; any other is refused
    (:class:`ConfigError` naming the key and both values). The overrides recorded for the
    run are the run's own, followed by the ones typed now."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    config = recorded.config.copy()
    choices = dict(recorded.choices) if recorded.choices is not None else None
    for override in OverridesParser.create().parse_overrides(given.overrides):
        key = override.key_or_group
        if override.package is None and key in (given.choices or {}):  # a config group
            choice = (given.choices or {})[key]
            before = (
                recorded.choices.get(key, _MISSING) if recorded.choices is not None else _MISSING
            )
            if choice == before:
                continue
            node = key.replace("/", ".")
            # only a group wholly safe to change (logger=): another (trainer=cpu) composes its
            # node from the defaults, which would undo what the run's experiment set there
            if not is_safe_on_resume(node) or _select(config, node) is _MISSING:
                raise ConfigError(_refusal(override.input_line, key, before, GROUP_NOTE))
            changed = _differences(_select(given.config, node), _select(config, node), node)
            for name in changed:
                _assign(config, name, _select(given.config, name))
            if choices is not None:
                choices[key] = choice
            continue
        now, before = _select(given.config, key), _select(config, key)
        if _plain(now) == _plain(before):
            continue
        if not is_safe_on_resume(key):
            raise ConfigError(_refusal(override.input_line, key, before))
        _assign(config, key, now)
    for key in FROM_COMMAND_LINE:
        _assign(config, key, _select(given.config, key))
    typed = {_override_key(item) for item in given.overrides}
    kept = [item for item in recorded.overrides if _override_key(item) not in typed]
    OmegaConf.set_struct(config, True)  # as Hydra composes it: a mistyped key fails
    return RunSettings(config=config, choices=choices, overrides=kept + list(given.overrides))


def resume_command(output_dir: str | Path) -> str:
    """The shell command that continues the run in ``output_dir`` from its last checkpoint,
    with its own settings: ``python -m gan_je.train resume=true hydra.run.dir=<dir>``, the
    directory quoted for Hydra where its grammar needs it and for the shell, and the packages
    the run imports (``imports=[...]``: a resume runs only code its command line names,
    :func:`check_recorded_code`). Called by the run itself, about its own record."""
    recorded = recorded_settings(output_dir)
    imports = [str(name) for name in (recorded.config.get("imports") or [])] if recorded else []
    path = str(Path(output_dir).absolute())
    if not re.fullmatch(r"[A-Za-z0-9_/.:@+%-]+", path):  # Hydra reads other characters itself
        # in Hydra's quotes a backslash is literal unless a run of them ends at a quote
        path = re.sub(r"(\\+)(?='|$)", r"\1\1", path).replace("'", "\\'")
        path = f"'{path}'"
    command = f"python -m gan_je.train resume=true {shlex.quote('hydra.run.dir=' + path)}"
    return command + (f" {shlex.quote('imports=[' + ','.join(imports) + ']')}" if imports else "")


def given_settings(cfg: DictConfig) -> RunSettings:
    """The settings of this start: ``cfg`` as Hydra composed it, with the group choices and
    overrides of Hydra's runtime config (none outside a Hydra run)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return RunSettings(config=cfg, choices=None, overrides=[])
    hydra = HydraConfig.get()
    choices = OmegaConf.select(hydra, "runtime.choices")
    return RunSettings(
        config=cfg,
        choices=OmegaConf.to_container(choices) if isinstance(choices, DictConfig) else None,
        overrides=[str(item) for item in hydra.overrides.task],
    )


def continued_settings(cfg: DictConfig, output_dir: str | Path) -> RunSettings:
    """The settings a run continuing in ``output_dir`` trains with: its recorded ones with
    this start's safe overrides (:func:`settings_to_resume`), or, where the directory holds
    no record of its settings (a run made by hand), this start's."""
    recorded, given = recorded_settings(output_dir), given_settings(cfg)
    if recorded is None:
        log.warning(
            "%s holds no .hydra/config.yaml: resuming with the command line's settings", output_dir
        )
        return given
    check_recorded_code(recorded.config, given.config)
    return settings_to_resume(recorded, given)


def check_recorded_code(recorded: DictConfig, given: DictConfig) -> None:
    """Refuse, in one sentence, a recorded config naming code this start does not: a package
    in its ``imports`` that ``given`` (the command line's config) does not import, or a
    ``_target_`` that neither gan_je's own configs (:func:`shipped_targets`), nor ``given``,
    nor a package ``given`` imports, nor :data:`gan_je.parts.REGISTERED` names. A run
    directory someone else wrote thus runs none of its own code on resume."""
    from gan_je.parts import REGISTERED

    imported = [str(name) for name in given.get("imports") or []]
    for name in recorded.get("imports") or []:
        if str(name) not in imported:
            raise ConfigError(
                f"resume: the run's recorded settings import {name}; a run directory is data, "
                f"so its code runs only where you name it: add imports=[{name}] to the command"
            )
    allowed = shipped_targets() | _targets(OmegaConf.to_container(given)) | REGISTERED
    for target in sorted(_targets(OmegaConf.to_container(recorded)) - allowed):
        if not any(target.startswith(f"{package}.") for package in imported):
            raise ConfigError(
                f"resume: the run's recorded settings name _target_ {target}, which neither "
                f"gan_je's configs nor this command line name; a run directory is data, so its "
                f"code runs only where you name it (set that node on the command line)"
            )


@functools.cache
def shipped_targets() -> frozenset[str]:
    """Every ``_target_`` that gan_je's own configs (the ``gan_je.conf`` package) name."""
    import yaml

    found: set[str] = set()
    folders = [importlib.resources.files("gan_je.conf")]
    while folders:
        for entry in folders.pop().iterdir():
            if entry.is_dir():
                folders.append(entry)
            elif entry.name.endswith(".yaml"):
                found |= _targets(yaml.safe_load(entry.read_text()))
    return frozenset(found)


def _targets(value: Any) -> set[str]:
    """The ``_target_`` values anywhere in plain ``value`` (dicts and lists)."""
    if isinstance(value, dict):
        own = {str(value["_target_"])} if "_target_" in value else set()
        return own.union(*(_targets(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_targets(item) for item in value))
    return set()


#: Why a config group's choice (``trainer=cpu``, ``model=dcgan``) is refused on resume.
GROUP_NOTE = (
    " (a resumed run keeps the choice of every config group but logger and paths: set single "
    "keys instead, e.g. trainer.accelerator=cpu)"
)


def _refusal(line: str, key: str, before: Any, note: str = "") -> str:
    """The one sentence refusing the override ``line`` on a resumed run, ``note`` after the
    recorded value (secret values redacted: :mod:`gan_je.redaction`)."""
    line = public_overrides([line])[0]
    if is_secret(key):
        before = REDACTED
    if before is _MISSING:
        recorded = f"is not among the run's recorded settings ({key} is unset there)"
    else:
        shown = _plain(before)
        shown = OmegaConf.to_yaml({"v": shown})[3:].strip() if _is_scalar(shown) else str(shown)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        recorded = f"differs from the run's recorded {key}={shown}"
    return (
        f"resume: {line} {recorded}{note}; a resumed run keeps its settings (start a new run "
        f"from its checkpoint with ckpt_path=<run>/checkpoints/last.ckpt in another "
        f"hydra.run.dir to change them)"
    )


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _select(config: Any, key: str) -> Any:
    """The node or value at the dotted ``key`` of ``config``, unresolved; ``_MISSING``
    where there is none."""
    if not isinstance(config, DictConfig):
        return _MISSING
    node = config
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return _MISSING
        node = node._get_node(part)
    return node._value() if not isinstance(node, DictConfig) else node


def _plain(value: Any) -> Any:
    """A value (a node, a list, ``_MISSING``) as plain Python for comparing, unresolved."""
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=False)
    return value


def _differences(now: Any, before: Any, prefix: str) -> list[str]:
    """The dotted keys under ``prefix`` whose values differ between the nodes ``now`` and
    ``before`` (a key one of them lacks counts)."""
    if isinstance(now, DictConfig) and isinstance(before, DictConfig):
        keys = sorted(set(now.keys()) | set(before.keys()), key=str)
        return [
            name
            for key in keys
            for name in _differences(
                _select(now, str(key)), _select(before, str(key)), f"{prefix}.{key}"
            )
        ]
    return [] if _plain(now) == _plain(before) else [prefix]


def _assign(config: DictConfig, key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``config`` to ``value`` (a node is copied), or delete it
    where ``value`` is ``_MISSING``."""
    parent_key, _, name = key.rpartition(".")
    parent = _select(config, parent_key) if parent_key else config
    if value is _MISSING:
        if isinstance(parent, DictConfig) and name in parent:
            with open_dict(parent):
                del parent[name]
        return
    copied = _plain(value)
    with open_dict(config):
        OmegaConf.update(config, key, copied, merge=False, force_add=True)


def _override_key(item: str) -> str:
    """The key (or group) an override sets: ``+a.b=1`` -> ``a.b``."""
    return str(item).split("=", 1)[0].lstrip("~+")
