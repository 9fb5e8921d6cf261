"""What gan_je asks of a generator and a discriminator, checked when the networks are built
(``GANModule.build_networks``), so that a network of your own that does not fit fails at
start-up in one sentence naming what is missing (docs/howto.md, "What gan_je asks of the
networks"):

- a generator is built with ``sample_shape`` and ``bounded`` (:func:`gan_je.parts.build`
  checks its signature), has an int ``latent_dim``, and maps ``(B, latent_dim)`` latents to
  samples ``(B, *sample_shape)``;
- a discriminator is built with ``sample_shape`` (a pack's) and maps ``(B, *sample_shape)``
  to logits ``(B,)``;
- optionally, a generator that trains in another form than its samples (SpecGAN: log
  spectrograms of waveforms) declares it with both ``train_shape`` (a tuple of ints, the
  train-mode output's sample shape, for which the discriminator is built) and
  ``to_train_form(real)`` (real samples ``(B, *sample_shape)`` to ``(B, *train_shape)``).

The forward passes are checked on two zero inputs in eval mode without gradients: nothing
random is drawn and no state (batch-norm statistics) changes. A declared train form is checked
in train mode on a copy of the generator, with torch's random streams put back afterwards.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from gan_je.checks import is_int
from gan_je.errors import ConfigError

#: Where the contract is written down, named in every refusal.
HOWTO = "see 'What gan_je asks of the networks' in docs/howto.md"


def check_generator(network: object, sample_shape: tuple[int, ...]) -> None:
    """Refuse a generator that is not an ``nn.Module``, has no int ``latent_dim``, does not
    map ``(2, latent_dim)`` latents to ``(2, *sample_shape)`` samples, or declares a train
    form (:func:`train_shape`) that its ``to_train_form`` or train-mode output does not
    have."""
    latent_dim = check_latent_dim(network)
    _check_output("model.generator", network, (2, latent_dim), (2, *sample_shape))
    form = train_shape(network)
    if form is None:
        return
    trained = copy.deepcopy(network).train()
    calls = {
        "to_train_form(real)": (network.to_train_form, (2, *sample_shape)),
        "its train-mode output": (trained, (2, latent_dim)),
    }
    for what, (call, shape_in) in calls.items():
        try:
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                out = call(torch.zeros(shape_in))
        except Exception as err:
            raise ConfigError(
                f"model.generator: {_name(network)}'s {what} fails on an input of shape "
                f"{shape_in} ({err}); {HOWTO}"
            ) from err
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        if got != (2, *form):
            raise ConfigError(
                f"model.generator: {_name(network)} declares train_shape {form}, but {what} "
                f"has shape {got} for a batch of 2, where gan_je needs {(2, *form)}; {HOWTO}"
            )


def train_shape(network: object) -> tuple[int, ...] | None:
    """The sample shape a generator trains in (its ``train_shape``), ``None`` when it trains
    in the form of its samples; refuse a generator that declares only one of ``train_shape``
    and ``to_train_form``, or a ``train_shape`` that is not a tuple of ints >= 1."""
    form = getattr(network, "train_shape", None)
    converts = callable(getattr(network, "to_train_form", None))
    if form is None and not converts:
        return None
    if form is None or not converts:
        missing = "to_train_form(real)" if form is not None else "train_shape"
        raise ConfigError(
            f"model.generator: {_name(network)} declares a train form with only one of "
            f"train_shape and to_train_form(real): add {missing}; {HOWTO}"
        )
    if not (isinstance(form, tuple) and form and all(is_int(n) and n >= 1 for n in form)):
        raise ConfigError(
            f"model.generator: {_name(network)}.train_shape must be a tuple of ints >= 1, "
            f"got {form!r}; {HOWTO}"
        )
    return form


def check_latent_dim(network: object) -> int:
    """The generator's ``latent_dim``; refuse one that is not an int >= 1."""
    latent_dim = getattr(network, "latent_dim", None)
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        raise ConfigError(
            f"model.generator: {_name(network)} must have an int attribute latent_dim >= 1 "
            f"(the size of the latents it maps to samples), got {latent_dim!r}; {HOWTO}"
        )
    return latent_dim


def check_discriminator(network: object, sample_shape: tuple[int, ...]) -> None:
    """Refuse a discriminator that is not an ``nn.Module`` or does not map
    ``(2, *sample_shape)`` samples to ``(2,)`` logits."""
    _check_output("model.discriminator", network, (2, *sample_shape), (2,))


def _check_output(
    setting: str, network: object, shape_in: tuple[int, ...], shape_out: tuple[int, ...]
) -> None:
    name = _name(network)
    if not isinstance(network, nn.Module):
        raise ConfigError(f"{setting}: {name} must be a torch.nn.Module; {HOWTO}")
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            out = network(torch.zeros(shape_in))
    except Exception as err:
        raise ConfigError(
            f"{setting}: {name} fails on an input of shape {shape_in} ({err}); {HOWTO}"
        ) from err
    finally:
        network.train(was_training)
    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if got != shape_out:
        raise ConfigError(
            f"{setting}: {name} maps an input of shape {shape_in} to {got}, where gan_je needs "
            f"a tensor of shape {shape_out}; {HOWTO}"
        )


def _name(network: object) -> str:
    kind = type(network)
    return f"{kind.__module__}.{kind.__qualname__}"
