"""Checkpoints of ``gan_je.train`` runs: written in one step, read as data, checked before a
resume, with the random streams a resumed run continues.

- **Writing.** :class:`AtomicCheckpointIO` (``trainer.plugins`` in the trainer configs)
  replaces a checkpoint file in one step; :func:`random_state` is what the module saves of
  the global random streams. :func:`last_checkpoint` is where a run's latest checkpoint is
  (the one saved at a signal, and every epoch).
- **Reading.** A checkpoint is data: it is read with ``torch.load(weights_only=True)``
  (tensors and plain values only), and the module is rebuilt from the part descriptions it
  holds through :mod:`gan_je.parts`, which builds registered gan_je parts and nothing else.
  No training data is needed: the checkpoint holds the data's shape and the fitted features.
  :func:`load_sampler` reads only the sampling network, without Lightning.
- **Resuming.** :func:`checkpoint_to_resume` picks the file, :func:`check_resumable` refuses
  one this config cannot continue, and :func:`restore_random_state` puts the streams back.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from gan_je import parts
from gan_je.atomic_files import cannot_write, replaced_atomically
from gan_je.checks import is_int
from gan_je.data.kinds import kind_of, with_kind
from gan_je.errors import CheckpointError, ConfigError, RecordError
from gan_je.sampling import build_generator

if TYPE_CHECKING:  # Lightning is imported only where the whole module is restored
    import lightning

log = logging.getLogger(__name__)
LoadedModule = TypeVar("LoadedModule", bound="lightning.LightningModule")
#: What :func:`random_state` saves: the streams of torch (CPU, CUDA), NumPy and Python.
RANDOM_STREAMS = ("torch", "cuda", "numpy", "python")


# ---------------------------------------------------------------------------- writing
def __getattr__(name: str) -> Any:
    """:class:`AtomicCheckpointIO` is defined at its first use: it extends a Lightning class,
    and Lightning takes seconds to import, which reading a checkpoint (``generate``) does not
    need."""
    if name == "AtomicCheckpointIO":
        return _atomic_checkpoint_io()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _atomic_checkpoint_io() -> type:
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """Lightning's checkpoint IO for local files, but a checkpoint replaces its file in
        one step (temporary file, fsync, ``os.replace``): a crash or a full disk while
        saving leaves the previous checkpoint whole, never a truncated one under the final
        name."""

        __qualname__ = "AtomicCheckpointIO"

        def save_checkpoint(
            self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
        ) -> None:
            if storage_options is not None:
                raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
            try:
                with replaced_atomically(path) as file:
                    torch.save(checkpoint, file)
            except (RecordError, RuntimeError) as err:  # torch says RuntimeError for a full disk
                cause = (err.__cause__ if isinstance(err, RecordError) else None) or err
                raise CheckpointError(cannot_write(path, cause, "the checkpoint")) from err

        def remove_checkpoint(self, path: Any) -> None:
            """Remove a checkpoint file that a ``ModelCheckpoint`` replaced: a ``.ckpt``
            file only, never a folder (Lightning's own removes recursively)."""
            path = Path(path)
            if path.suffix == ".ckpt" and (path.is_file() or path.is_symlink()):
                path.unlink()
            elif path.exists():
                log.warning("not removing %s: not a checkpoint file", path)

    return AtomicCheckpointIO


def confined_callback_state(state: Mapping[str, Any], folder: str | Path) -> bool:
    """Whether a ``ModelCheckpoint``'s saved ``state`` names only checkpoint files inside
    ``folder`` (its ``dirpath``; paths resolved, symlinks and ``..`` included): the files it
    would later remove as a replaced "best" or "last". A state naming anything else (a
    crafted checkpoint, or one from another run's folder) must not be restored."""
    folder = Path(folder).resolve()
    keys = ("best_model_path", "kth_best_model_path", "last_model_path")
    paths = [state.get(key) for key in keys]
    best_k = state.get("best_k_models") or {}
    if not isinstance(best_k, Mapping):
        return False
    for path in [*paths, *best_k]:
        if path in (None, ""):
            continue
        if not isinstance(path, str) or not path.endswith(".ckpt"):
            return False
        if folder not in Path(path).resolve().parents:
            return False
    return True


def last_checkpoint(output_dir: str | Path) -> Path:
    """A run directory's latest checkpoint, ``<output_dir>/checkpoints/last.ckpt``: saved
    after every epoch and when a signal stops the run; what ``resume=true`` reads."""
    return Path(output_dir) / "checkpoints" / "last.ckpt"


def random_state() -> dict[str, Any]:
    """The global random streams (torch on the CPU and every CUDA device, NumPy, Python) as
    tensors and plain values only, so a checkpoint holding them loads with
    ``weights_only=True``; :func:`restore_random_state` puts them back."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "python": random.getstate(),
    }


def restore_random_state(state: dict[str, Any]) -> None:
    """Set the global random streams to ``state``, a :func:`random_state` read back from a
    checkpoint (the CUDA streams only where CUDA is available)."""
    missing = [name for name in RANDOM_STREAMS if name not in state]
    if missing:
        raise CheckpointError(f"the checkpoint's random state lacks {', '.join(missing)}")
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(state["python"])


# ---------------------------------------------------------------------------- reading
def checkpoint_file(path: str | Path) -> Path:
    """``path`` if a file is there, else a :class:`CheckpointError` saying what to pass: what
    the commands check first, before anything else that depends on where it is."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; pass ckpt_path=<run dir>/checkpoints/…")
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict of a ``gan_je.train`` run, loaded with ``weights_only=True``."""
    path = checkpoint_file(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a corrupt or foreign file: one sentence, not a traceback
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({reason})") from err
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or not hparams.get("data_spec"):
        raise CheckpointError(
            f"{path} was not written by `python -m gan_je.train` of this gan_je version (it "
            f"holds no GANModule description; checkpoints from before the model config built "
            f"the module cannot be restored)"
        )
    _check_fields(path, checkpoint)
    return checkpoint


#: How ``nn.Module.state_dict`` names a module's extra state (``get_extra_state``).
EXTRA_STATE_SUFFIX = "_extra_state"


def _check_fields(path: Path, checkpoint: dict[str, Any]) -> None:
    """Refuse, naming the field, a checkpoint whose fields have the wrong types: a
    ``state_dict`` of named tensors (a module's ``<name>._extra_state``, the plain values a
    fitted feature map keeps, such as a classifier's input shape, excepted), a whole
    ``g_step`` >= 0, a data spec its kind accepts (e.g. a mixture's ``centers`` as rows of
    numbers)."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(key, str)
        and (isinstance(value, torch.Tensor) or key.endswith(EXTRA_STATE_SUFFIX))
        for key, value in state.items()
    ):
        raise CheckpointError(f"{path}: its state_dict must map names to tensors")
    g_step = checkpoint.get("g_step", 0)
    if not is_int(g_step) or g_step < 0:
        raise CheckpointError(f"{path}: its g_step must be a whole number >= 0, got {g_step!r}")
    try:
        kind_of(checkpoint["hyper_parameters"]["data_spec"])
    except ConfigError as err:
        raise CheckpointError(f"{path}: {err}") from None


def check_weights(path: str | Path, expected: Mapping[str, torch.Tensor], saved: Mapping) -> None:
    """Refuse, naming the first such tensor, weights of checkpoint ``path`` that would load
    silently wrong into a module whose own tensors are ``expected`` (its ``state_dict()``):
    whole numbers where the module holds floating-point ones (``load_state_dict`` would cast
    them), and NaN or infinite values (a diverged or damaged run: its samples would all be
    NaN). The one check of :func:`load_sampler` and :func:`load_module`."""
    for name, tensor in saved.items():
        mine = expected.get(name)
        if not isinstance(mine, torch.Tensor) or not mine.is_floating_point():
            continue  # not the module's, an extra state, or whole numbers
        if not tensor.is_floating_point():
            raise CheckpointError(
                f"{path}: the tensor {name} holds {tensor.dtype} values where the network "
                f"has {mine.dtype} weights; it was not written by gan_je.train"
            )
        if not torch.isfinite(tensor).all():
            raise CheckpointError(
                f"{path}: the tensor {name} holds NaN or infinite values (a diverged or damaged "
                f"run); sample from an earlier checkpoint"
            )


#: Hyperparameters that moved from the model to its metric (the ``estimator`` group), with
#: their names there: checkpoints written before the move keep them in the model's.
MOVED_TO_METRIC = {
    "n_fake": "n_fake",
    "features_fit_samples": "features_fit_samples",
    "coverage": "mode_coverage",
}


def current_hyperparameters(hparams: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's module hyperparameters in this version's terms: the settings of
    :data:`MOVED_TO_METRIC` moved into the metric's description (a copy; ``hparams`` is
    left as it was)."""
    hparams = dict(hparams)
    moved = {new: hparams.pop(old) for old, new in MOVED_TO_METRIC.items() if old in hparams}
    if moved and isinstance(hparams.get("metric"), dict):
        hparams["metric"] = moved | hparams["metric"]
    return hparams


@dataclass
class Sampler:
    """What sampling needs of a trained run: the network (the EMA generator when the run kept
    one), its generator step and the data spec (``sample_shape``, mixture ``centers``)."""

    network: nn.Module
    g_step: int
    data_spec: dict[str, Any]


def load_sampler(path: str | Path, device: str = "cpu") -> Sampler:
    """The sampling network of checkpoint ``path`` alone, without Lightning, the metric or the
    discriminator: the generator built from its description and the data spec, with the EMA
    weights when the run kept them (``ema.module.*``), else the generator's."""
    checkpoint = read_checkpoint(path)
    hparams, state = checkpoint["hyper_parameters"], checkpoint["state_dict"]
    spec = hparams["data_spec"]
    try:
        network = build_generator(hparams["generator"], spec)
        prefix = "ema.module." if hparams.get("ema_decay") is not None else "generator."
        weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        check_weights(path, {prefix + k: v for k, v in network.state_dict().items()}, state)
        network.load_state_dict(weights)
    except (ConfigError, KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path} cannot be restored ({_reason(err)})") from err
    return Sampler(network.to(device).eval(), checkpoint.get("g_step", 0), spec)


def load_module(
    module_class: type[LoadedModule], path: str | Path, device: Any = "cpu", **overrides: Any
) -> LoadedModule:
    """The trained module of class ``module_class`` (``GANModule``) that checkpoint ``path``
    holds (EMA generator and fitted features included), on ``device``; ``overrides`` replace
    hyperparameters. What ``GANModule.load_from_checkpoint`` does: a local file read with
    ``weights_only=True``, every part built through :mod:`gan_je.parts`."""
    if not isinstance(module_class, type):
        raise TypeError(f"module_class must be a class, got {module_class!r}")
    checkpoint = read_checkpoint(path)
    try:
        hparams = current_hyperparameters(checkpoint["hyper_parameters"])
        module = module_class(**(hparams | overrides))
        module.on_load_checkpoint(checkpoint)
        # the mode-coverage centres were saved before they moved into the metric's data spec
        state = {k: v for k, v in checkpoint["state_dict"].items() if k != "coverage.centers"}
        check_weights(path, module.state_dict(), state)
        module.load_state_dict(state)
    except CheckpointError:
        raise
    except (ConfigError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} cannot be restored ({_reason(err)})") from err
    return module.to(device)


def _reason(err: BaseException) -> str:
    """An error's message on one line (torch's state-dict errors span several)."""
    reason = " ".join(str(err).split()) or type(err).__name__
    return reason if len(reason) <= 300 else reason[:297] + "..."


def load_data(
    module: lightning.LightningModule, stage: str = "validate"
) -> lightning.LightningDataModule:
    """The datamodule ``module`` (loaded from a checkpoint) was trained on, rebuilt from the
    data part of its run config (a registered gan_je data module only, never downloading)
    and set up for ``stage``."""
    config = (module.hparams.get("run_config") or {}).get("data")
    if not isinstance(config, dict):
        raise CheckpointError("the checkpoint does not say which data it was trained on")
    if "download" in config:  # a checkpoint does not get to fetch files from the network
        config = config | {"download": False}
    datamodule = parts.build(config, "data")
    datamodule.prepare_data()
    datamodule.setup(stage)
    _check_same_samples(module.hparams.get("data_spec"), datamodule.data_spec)
    return datamodule


def _check_same_samples(saved: Mapping[str, Any] | None, spec: Mapping[str, Any]) -> None:
    """Refuse data rebuilt from a checkpoint's config whose samples differ from those it was
    trained on (its saved ``data_spec``): a changed text corpus changes the vocabulary. A key
    the checkpoint's spec predates is not compared."""
    if not isinstance(saved, Mapping):
        return  # a module that never saw data
    saved, now = kind_of(saved).spec, kind_of(parts.plain(spec)).spec
    differ = [key for key in saved if saved[key] != now.get(key)]
    if differ:
        what = ", ".join(
            "the vocabulary (symbols)"
            if key == "symbols"
            else f"{key} ({saved[key]!r} there, {now.get(key)!r} here)"
            for key in differ
        )
        raise CheckpointError(
            f"the data rebuilt from the checkpoint's config differs from the data it was "
            f"trained on in {what}: restore the data files it was trained on"
        )


# ---------------------------------------------------------------------------- resuming
def checkpoint_to_resume(cfg: DictConfig) -> str | None:
    """``ckpt_path`` when given, else with ``resume=true`` this run directory's last
    checkpoint (rerun with ``hydra.run.dir=<the run's directory>`` to continue it); with
    ``resume=auto`` that checkpoint when there is one, else none. A SLURM job that has been
    requeued (``$SLURM_RESTART_COUNT`` > 0) continues from its own ``last.ckpt`` when there is
    one (whatever ``ckpt_path`` it started from), else as with ``resume=auto``.
    :func:`check_resumable` then reads it."""
    from gan_je import slurm  # Hydra and submitit: for training only, not for reading

    last = last_checkpoint(cfg.paths.output_dir)
    restarts = slurm.restart_count()
    if restarts and last.is_file():  # its own progress, not the ckpt_path it started from
        log.info("SLURM restart %d of job %s: resuming from %s", restarts, slurm.job_id(), last)
        return str(last)
    if cfg.get("ckpt_path"):
        path = Path(cfg.ckpt_path)
        if not path.is_file():
            raise ConfigError(f"ckpt_path={path} does not exist")
        return str(path)
    resume = cfg.get("resume") or ("auto" if restarts else False)
    if resume:
        if resume == "auto" and not last.is_file():
            return None  # a first start; a requeued job finds its checkpoint
        if not last.is_file():
            raise ConfigError(
                f"resume=true found no {last}; pass hydra.run.dir=<the run's directory> "
                f"or ckpt_path=<file>"
            )
        return str(last)
    return None


def check_resumable(path: str, module: lightning.LightningModule, cfg: DictConfig) -> None:
    """Before ``module`` (a ``GANModule`` built from ``cfg``) resumes from checkpoint
    ``path``, read as data (an empty, truncated or foreign file fails in one sentence):
    refuse parts naming unregistered code, another data set, networks of other shapes and a
    run that has nothing left to do, and say which model and data settings differ from the
    checkpoint's (the new learning rates apply; shapes cannot change)."""
    checkpoint = read_checkpoint(path)
    old = current_hyperparameters(checkpoint["hyper_parameters"])
    try:  # train builds from its own config, but a checkpoint naming code is refused anyway
        for key in type(module).PARTS:
            parts.check_registered(old.get(key), key)
        parts.check_registered((old.get("run_config") or {}).get("data"), "data")
    except ConfigError as err:
        raise CheckpointError(f"{path}: {err}") from None
    _check_same_data(path, old, module.hparams)
    saved = checkpoint["state_dict"]
    for key, tensor in module.state_dict().items():
        if key.startswith(("generator.", "discriminator.", "ema.")):
            before = tuple(saved[key].shape) if key in saved else "nothing"
            if before != tuple(tensor.shape):
                raise ConfigError(
                    f"{path} holds other networks than this config builds ({key}: {before} "
                    f"there, {tuple(tensor.shape)} here); resume with the settings it was "
                    f"trained with"
                )
    done, max_epochs = epochs_trained(checkpoint), cfg.trainer.get("max_epochs")
    if max_epochs not in (None, -1) and done >= max_epochs:
        raise ConfigError(
            f"{path} has trained {done} epochs and trainer.max_epochs={max_epochs}: nothing "
            f"to do; raise trainer.max_epochs to train on"
        )
    # a setting the checkpoint predates had its default then
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(type(module).__init__).parameters.items()
    }
    changed = [
        f"model.{key}"
        for key in sorted(old.keys() | module.hparams.keys())
        if key not in ("run_config", "data_spec")
        and old.get(key, defaults.get(key)) != module.hparams.get(key, defaults.get(key))
    ]
    old_data, new_data = _data_config(old), _data_config(module.hparams)
    changed += [
        f"data.{key}"
        for key in sorted(old_data.keys() & new_data.keys())
        if old_data[key] != new_data[key]
    ]
    if changed:
        log.warning(
            "resuming with settings that differ from the checkpoint's: %s (new learning "
            "rates apply unless a scheduler sets them)",
            ", ".join(changed),
        )


def _data_config(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The data part of a module's run config (empty where it holds none)."""
    data = (hparams.get("run_config") or {}).get("data")
    return data if isinstance(data, dict) else {}


def _check_same_data(path: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Refuse to resume a run on another data set than the checkpoint's: another data class
    (``data=grid`` on a ring run) or samples of another kind or shape. Other data settings
    (``data.std``) may change; :func:`check_resumable` names them."""
    before, now = _data_config(old).get("_target_"), _data_config(new).get("_target_")
    if before and now and before != now:
        raise ConfigError(
            f"{path} was trained on other data ({before} there, {now} here): resume with "
            f"the data it was trained on, or start a new run in another folder"
        )
    specs = [spec.get("data_spec") for spec in (old, new)]
    if not all(isinstance(spec, Mapping) for spec in specs):
        return  # a module not built yet; the networks' shapes are checked next
    (kind, shape), (kind_now, shape_now) = [
        (spec["kind"], tuple(spec.get("sample_shape") or ())) for spec in map(with_kind, specs)
    ]
    if (kind, shape) != (kind_now, shape_now):
        raise ConfigError(
            f"{path} was trained on other samples ({kind} of shape {shape} there, {kind_now} "
            f"of shape {shape_now} here): resume with the data settings it was trained with, "
            f"or start a new run in another folder"
        )


def apply_configured_learning_rates(optimizers: list[Any], hparams: Mapping[str, Any]) -> None:
    """On resuming, the optimisers ``(G, D)`` keep their state but take the configured
    learning rate (the checkpoint's unless the user changed it), except where a scheduler
    sets it."""
    for optimizer, network in zip(optimizers, ("g", "d"), strict=True):
        configured = hparams[f"optimizer_{network}"]
        if "lr" in configured and hparams[f"scheduler_{network}"] is None:
            for group in optimizer.param_groups:
                group["lr"] = configured["lr"]


def epochs_trained(checkpoint: dict[str, Any]) -> int:
    """The whole epochs a checkpoint has trained: the fit loop's processed epochs, which
    leaves out an epoch stopped inside (at a signal) and counts an epoch whose batches all
    ran, whether the checkpoint was saved before or after its end-of-epoch hooks."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["total"]["processed"])
    except (KeyError, TypeError):
        return int(checkpoint.get("epoch", -1)) + 1
