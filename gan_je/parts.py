"""gan_je's parts built from plain descriptions, the way a config and a checkpoint name them.

A part is a dict ``{"_target_": "<dotted name>", **arguments}``, as in Hydra's configs.
``"_partial_": True`` returns a ``functools.partial`` to be completed later (a network gets
its ``sample_shape`` in ``GANModule.setup``, an optimiser its parameters). Dicts with a
``_target_`` inside the arguments are built first.

Only *registered* targets are built: gan_je's networks, losses, metrics, feature maps and
data modules, and torch's optimisers and schedulers (:data:`REGISTERED`). A checkpoint
stores these descriptions as plain data, so loading one can choose among registered parts
but never import or call anything else. Register your own class with :func:`register`
before training or loading.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gan_je.errors import ConfigError, PartError

REGISTERED: set[str] = {
    *(f"gan_je.models.{name}" for name in ("MLPGenerator", "MLPDiscriminator")),
    *(f"gan_je.models.{name}" for name in ("DCGANGenerator", "DCGANDiscriminator")),
    *(f"gan_je.models.{name}" for name in ("ResNetGenerator", "ResNetDiscriminator")),
    *(
        f"gan_je.models.{name}"
        for name in ("CharResNetGenerator", "CharResNetDiscriminator", "LSTMGenerator")
    ),
    *(f"gan_je.models.{name}" for name in ("WaveGANGenerator", "WaveGANDiscriminator")),
    *(f"gan_je.models.{name}" for name in ("SpecGANGenerator", "SpecGANDiscriminator")),
    *(
        f"gan_je.losses.{name}"
        for name in ("NonSaturating", "Minimax", "Hinge", "WassersteinGP", "LeastSquares")
    ),
    *(
        f"gan_je.metrics.{name}"
        for name in ("JointEntropy", "GaussianJointEntropy", "InceptionJointEntropy")
    ),
    *(f"gan_je.features.{name}" for name in ("PCA", "Identity", "RandomProjection", "Classifier")),
    "gan_je.features.TokenFeatures",
    "gan_je.features.LogMelPCA",
    *(
        f"gan_je.data.{name}"
        for name in (
            "MNIST5k",
            "StackedMNIST",
            "Digits",
            "Ring",
            "Grid",
            "TorchvisionImages",
            "ImageFolder",
            "Oracle",
            "TextLines",
            "SpokenDigits",
            "AudioFolder",
        )
    ),
    *(f"torch.optim.{name}" for name in ("Adam", "AdamW", "SGD", "RMSprop")),
    *(
        f"torch.optim.lr_scheduler.{name}"
        for name in (
            "ConstantLR",
            "CosineAnnealingLR",
            "ExponentialLR",
            "LinearLR",
            "MultiStepLR",
            "StepLR",
        )
    ),
}
TARGET, PARTIAL = "_target_", "_partial_"


def register(target: type | Callable[..., Any]) -> type | Callable[..., Any]:
    """Allow ``target`` (a class or function) to be built by its dotted name
    ``<module>.<qualname>``; usable as a decorator."""
    if not callable(target):
        raise ValueError(f"register needs a class or function, got {target!r}")
    REGISTERED.add(f"{target.__module__}.{target.__qualname__}")
    return target


def plain(value: Any) -> Any:
    """``value`` as plain dicts, lists and scalars (an OmegaConf config becomes dicts and
    lists with its interpolations resolved), so that it can be stored in a checkpoint."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ConfigError(
        f"{value!r} ({type(value).__name__}) is not plain data; a part is described by "
        f"dicts, lists, numbers and strings"
    )


def build(description: Mapping[str, Any] | None, name: str, **late_arguments: Any) -> Any:
    """The part ``description`` describes, called with its arguments and ``late_arguments``
    (a ``_partial_`` description without late arguments gives a ``functools.partial``;
    ``None`` stays ``None``). ``name`` names the setting in error messages
    (``model.generator``).

    Raises:
        ConfigError: the description is not a dict with a registered ``_target_`` or holds an
            unresolved ``${...}`` interpolation, or its target does not take one of the
            arguments (by its signature); :class:`~gan_je.errors.PartError` (a
            ``ConfigError``) when the part refuses its arguments' values.
    """
    if description is None:
        return None
    description = plain(description)
    if not isinstance(description, dict) or TARGET not in description:
        raise ConfigError(f"{name} must be a dict with a {TARGET} key, got {description!r}")
    arguments = dict(description)
    target, partial = arguments.pop(TARGET), arguments.pop(PARTIAL, False)
    unknown = [key for key in arguments if key.startswith("_") and key.endswith("_")]
    if unknown or not isinstance(partial, bool):
        raise ConfigError(f"{name}: only {TARGET} and {PARTIAL} are understood, got {unknown}")
    factory = _registered(target, name)
    arguments = {key: _build_nested(value, f"{name}.{key}") for key, value in arguments.items()}
    if partial and not late_arguments:
        return functools.partial(factory, **arguments)
    _check_arguments(factory, target, name, arguments, late_arguments)
    arguments |= late_arguments
    try:
        return factory(**arguments)
    except (TypeError, ValueError) as err:
        raise PartError(f"{name}: {err}") from err


def _check_arguments(
    factory: Callable[..., Any],
    target: str,
    name: str,
    arguments: Mapping[str, Any],
    late_arguments: Mapping[str, Any],
) -> None:
    """Refuse, in one sentence naming the key and ``target``, an argument ``factory`` does not
    take: a setting of the config (``n_layers`` left by ``model=mlp`` when only
    ``model.generator._target_`` was replaced) or one gan_je passes (a generator's
    ``sample_shape`` and ``bounded``: the contract in docs/howto.md). A factory taking
    ``**kwargs``, or whose signature cannot be read, is left to refuse for itself."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    accepted = {p.name for p in parameters if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    for key in late_arguments:
        if key not in accepted:
            raise ConfigError(
                f"{name}: {target} must take the argument {key!r}, which gan_je passes to "
                f"every {name.rsplit('.', 1)[-1]} (see 'What gan_je asks of the networks' in "
                f"docs/howto.md)"
            )
    for key in arguments:
        if key not in accepted:
            raise ConfigError(
                f"{name}: {target} takes no argument {key!r}, which the config sets "
                f"({name}.{key}): remove it with ~{name}.{key}, or replace the whole node "
                f"(~{name} +{name}={{_target_:{target},...}}, or a config file of your own: "
                f"docs/howto.md)"
            )


def check_registered(value: Any, name: str) -> None:
    """Raise :class:`ConfigError` if ``value`` (a description, or anything holding some)
    names an unregistered ``_target_`` anywhere, without importing or building anything."""
    if isinstance(value, Mapping):
        if TARGET in value and (
            not isinstance(value[TARGET], str) or value[TARGET] not in REGISTERED
        ):
            raise ConfigError(
                f"{name}: {TARGET} {value[TARGET]!r} is not a registered gan_je part; register "
                f"your own class with gan_je.parts.register before building it"
            )
        for key, item in value.items():
            check_registered(item, f"{name}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_registered(item, f"{name}[{i}]")


def _build_nested(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        if TARGET in value:
            return build(value, name)
        return {key: _build_nested(item, f"{name}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_build_nested(item, f"{name}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        raise ConfigError(f"{name} holds an unresolved interpolation {value!r}")
    return value


def _registered(target: Any, name: str) -> Callable[..., Any]:
    """The object a registered dotted name ``<module>.<qualname>`` refers to."""
    check_registered({TARGET: target}, name)
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):  # the longest importable module first
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            obj = getattr(obj, attribute, None)
        if callable(obj):
            return obj
    raise ConfigError(f"{name}: the registered {TARGET} {target} cannot be imported")
