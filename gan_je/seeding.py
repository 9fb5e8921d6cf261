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

from gan_je.checks import non_negative_int

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
}


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
