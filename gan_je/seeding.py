"""Independent, named random streams of a run.

``torch.Generator().manual_seed(seed + i)`` for the i-th stream makes runs overlap: stream 1
of seed 0 is stream 0 of seed 1. Here a stream is seeded by NumPy's ``SeedSequence`` of
``(seed, stream, len(extra), *extra)``, whose hashing gives unrelated states for distinct
tuples (O'Neill 2015; NumPy's "parallel random number generation" notes), so two seeds of one
sweep, or two streams of one run, never replay each other.
"""

from __future__ import annotations

import numpy as np
import torch

from gan_je.checks import is_int, non_negative_int
from gan_je.errors import ConfigError

#: The largest run seed: NumPy's global stream, and so ``lightning.seed_everything``, take
#: seeds from 0 to 2**32 - 1.
MAX_SEED = 2**32 - 1

#: The streams of a run; a number each, fixed forever (changing one changes every run).
STREAMS = {
    "preview": 1,
    "validation": 2,
    "pictures": 3,
    "shuffle": 4,
    "subsample": 5,
    "stack": 6,
    "modes": 7,
    "projection": 8,
    "oracle": 9,
    "speech": 10,
}


def check_seed(seed: object) -> int:
    """Return ``seed`` if it is a run seed ``lightning.seed_everything`` accepts (an integer
    from 0 to :data:`MAX_SEED`), else raise a :class:`ConfigError` saying the range. Out of
    range seeds are refused, as Lightning refuses them, rather than folded into the range,
    which would make two seeds of a sweep replay one run."""
    if not is_int(seed) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(
            f"seed must be an integer from 0 to {MAX_SEED} (2**32 - 1, what NumPy and "
            f"lightning.seed_everything accept), got {seed!r}"
        )
    return int(seed)


def stream_seed(seed: int, stream: str, *extra: int) -> int:
    """A 63-bit seed for stream ``stream`` of run ``seed`` (``extra``: e.g. rank, epoch)."""
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {', '.join(STREAMS)}, got {stream!r}")
    # the count of extra words comes first: SeedSequence pads short entropy with zeros, so
    # (seed, stream) and (seed, stream, 0) would otherwise be the same stream
    words = [non_negative_int("seed", seed), STREAMS[stream], len(extra)]
    words += [non_negative_int("stream index", value) for value in extra]
    state = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def generator(seed: int, stream: str, *extra: int) -> torch.Generator:
    """A CPU ``torch.Generator`` for stream ``stream`` of run ``seed``."""
    return torch.Generator().manual_seed(stream_seed(seed, stream, *extra))
