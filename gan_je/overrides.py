"""What a run's command-line overrides say about its setting: the W&B fields of a sweep
(:mod:`gan_je.resolvers`) and the report's columns group runs by them. Secret values in
them are redacted by :func:`gan_je.redaction.public_overrides`."""

from __future__ import annotations

from collections.abc import Iterable


def without_seed(overrides: Iterable[str]) -> list[str]:
    """The overrides that are not a seed (``seed=1``, ``data.data_seed=2``): what tells a
    setting apart from the other seeds of the same setting."""
    return [item for item in overrides if not item.split("=", 1)[0].endswith("seed")]
