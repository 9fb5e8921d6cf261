"""The OmegaConf resolvers gan_je's configs use, registered when ``gan_je`` is imported:

- ``${gan_je.run_id:}``: this run's (or sweep's) directory name;
- ``${gan_je.cwd:}``: the directory gan_je was launched from (``paths.root_dir``);
- ``${gan_je.sweep:group|job_type|tags}``: W&B fields of a multirun job;
- ``${gan_je.tags:${tags}}``: a run's W&B tags, the ``tags`` setting then the sweep's;
- ``${gan_je.slurm_tasks:accelerator,devices,start_method}``,
  ``${gan_je.slurm_gpus:accelerator,devices}``:
  a SLURM job's size from the trainer's (:mod:`gan_je.slurm`).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from typing import Any

from omegaconf import ListConfig, OmegaConf

from gan_je.errors import ConfigError
from gan_je.overrides import without_seed
from gan_je.redaction import public_overrides

RUN_ID = "GAN_JE_RUN_ID"
#: What a run id may be: names of letters, digits, ``._-``, joined by ``/``, none of them
#: ``.`` or ``..``, so that the run directory stays inside the outputs folder.
_RUN_ID_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_INHERITED = RUN_ID in os.environ  # read when gan_je is imported, before run_id sets it


def inherited_run_id() -> bool:
    """Whether this process was started with ``$GAN_JE_RUN_ID`` set (by a launcher, or left
    over in the shell), rather than making its own."""
    return _INHERITED


def run_id() -> str:
    """``<date>/<time>-<pid><random hex>`` naming this run's (or sweep's) directory.

    Unique for runs started in the same second (process id and a random tag), and fixed for
    this process and every process it starts (kept in ``$GAN_JE_RUN_ID``), so that the jobs
    of one sweep agree on its directory even when a launcher runs them in other processes
    (joblib, submitit), where Hydra's ``${now:...}`` would be read again.

    A ``$GAN_JE_RUN_ID`` that would leave the outputs folder (absolute, ``..``, odd
    characters) is refused (:class:`gan_je.errors.ConfigError`).
    """
    if RUN_ID not in os.environ:
        stamp = time.strftime("%Y-%m-%d/%H-%M-%S")
        os.environ[RUN_ID] = f"{stamp}-{os.getpid()}{secrets.token_hex(2)}"
    value = os.environ[RUN_ID]
    if not all(_RUN_ID_NAME.fullmatch(name) for name in value.split("/")):
        raise ConfigError(
            f"${RUN_ID}={value!r} is not a run id (names of letters, digits, '._-' joined by "
            f"'/', none starting with '.'): unset it"
        )
    return value


def cwd() -> str:
    """The working directory: where the command was launched, as gan_je never changes it
    (``hydra.job.chdir: false``). Unlike ``${hydra:runtime.cwd}`` it resolves before Hydra
    sets its runtime config, which a multirun launcher (submitit) needs when it resolves
    its own settings (``submitit_folder`` lies under the sweep directory)."""
    return os.getcwd()


def slurm_tasks(accelerator: str, devices: Any, start_method: str | None = None) -> int:
    """``gan_je.slurm.tasks_per_node`` (imported only where a launcher config asks)."""
    from gan_je import slurm

    return slurm.tasks_per_node(accelerator, devices, start_method)


def slurm_gpus(accelerator: str, devices: Any) -> int | None:
    """``gan_je.slurm.gpus_per_node`` (imported only where a launcher config asks)."""
    from gan_je import slurm

    return slurm.gpus_per_node(accelerator, devices)


#: The longest tag W&B takes.
MAX_TAG_LENGTH = 64


def sweep_field(name: str) -> str | ListConfig | None:
    """W&B fields of a multirun job (``None`` / ``[]`` in a single run): ``group`` the sweep
    directory (``<date>/<time>-<tag>``), ``job_type`` the job's overrides without the seed,
    ``tags`` its overrides. The tags are a ``ListConfig``, not a list: OmegaConf can store
    only a config, not a Python list, where it resolves in place (``--cfg job --resolve``)."""
    from hydra.core.hydra_config import HydraConfig  # only where a config is resolved
    from hydra.types import RunMode

    if name not in ("group", "job_type", "tags"):
        raise ValueError(f"gan_je.sweep takes group, job_type or tags, got {name!r}")
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return ListConfig([]) if name == "tags" else None
    overrides = public_overrides(HydraConfig.get().overrides.task)
    if name == "group":
        return run_id()
    if name == "job_type":
        return " ".join(without_seed(overrides))
    return ListConfig([item[:MAX_TAG_LENGTH] for item in overrides])


def check_tags(tags: Any) -> list[str]:
    """The ``tags`` setting (``tags=[a,b]``) as a list of strings; ``None`` is none. A tag
    must be a word or number of at most :data:`MAX_TAG_LENGTH` characters (W&B's limit)."""
    if tags is None:
        return []
    if not (isinstance(tags, list) or OmegaConf.is_list(tags)):
        raise ConfigError(f"tags must be a list, as tags=[baseline,ring], got {tags!r}")
    checked = []
    for tag in tags:
        if isinstance(tag, bool) or not isinstance(tag, str | int | float):
            raise ConfigError(f"tags must be words or numbers, got {tag!r}")
        if not str(tag) or len(str(tag)) > MAX_TAG_LENGTH:
            raise ConfigError(f"a tag has 1 to {MAX_TAG_LENGTH} characters, got {str(tag)!r}")
        checked.append(str(tag))
    return checked


def wandb_tags(tags: Any) -> ListConfig:
    """A run's W&B tags: the ``tags`` setting (:func:`check_tags`), then in a multirun the
    job's overrides (``gan_je.sweep:tags``), each once; a ``ListConfig``, as
    :func:`sweep_field`'s, for ``--cfg job --resolve``."""
    return ListConfig(list(dict.fromkeys([*check_tags(tags), *sweep_field("tags")])))


def register() -> None:
    """Register the resolvers (again: a no-op once done)."""
    resolvers = {
        "gan_je.run_id": run_id,
        "gan_je.cwd": cwd,
        "gan_je.sweep": sweep_field,
        "gan_je.tags": wandb_tags,
        "gan_je.slurm_tasks": slurm_tasks,
        "gan_je.slurm_gpus": slurm_gpus,
    }
    for name, resolver in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
