"""Named random streams: reproducible, and unrelated across seeds, streams and indices."""

import random

import numpy as np
import pytest
import torch

from gan_je.seeding import STREAMS, generator, stream_seed


def test_stream_seeds_are_the_recorded_ones():
    """Changing them changes every run's latents: these values were recorded when the
    streams were introduced (NumPy's SeedSequence of (seed, stream number, count, extra))."""
    assert stream_seed(3, "validation", 1) == 8843984282117319961
    assert stream_seed(0, "preview") == 8514611595135926838
    assert stream_seed(0, "preview", 0) == 1935405067445313501  # an index is its own stream
    assert generator(3, "validation", 1).initial_seed() == 8843984282117319961


def test_streams_neither_read_nor_move_the_global_random_state():
    draws = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        np.random.seed(global_seed)
        random.seed(global_seed)
        before = torch.get_rng_state()
        draws.append(torch.randn(4, generator=generator(3, "preview")))
        assert torch.equal(torch.get_rng_state(), before)  # the global stream did not move
    torch.testing.assert_close(draws[0], draws[1], rtol=0, atol=0)


def test_seeds_streams_and_indices_never_share_a_seed():
    # the collisions of "seed + offset": seed 0's stream 1 is seed 1's stream 0, and so on
    seeds = {
        stream_seed(seed, stream, *extra)
        for seed in range(6)
        for stream in STREAMS
        for extra in [(), (0,), (1,), (2,), (0, 1), (1, 0)]
    }
    assert len(seeds) == 6 * len(STREAMS) * 6
    assert all(0 <= seed < 2**63 for seed in seeds)


def test_bad_streams_and_seeds_are_refused():
    with pytest.raises(ValueError, match="stream must be one of"):
        stream_seed(0, "latents")
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        stream_seed(-1, "preview")
    with pytest.raises(ValueError, match="stream index"):
        stream_seed(0, "preview", 1.5)
