"""Torch's intra-op threads, where the estimators decide them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one intra-op thread inside the block, restored after (process-wide, as
    ``torch.set_num_threads`` is).

    Two places want it on CPU, both measured on this project's 2-core machine:

    - around the k-d tree, which runs its own worker threads: torch's glue
      (rescoring a few candidates per row) gains little from its OpenMP pool, and that
      pool's threads keep spinning after each parallel operation, taking the cores from the
      next query's workers (the JSD at N = 10,000, d = 1: 0.17 s with torch's 2 threads,
      0.02 s with one). Not around faiss: its OpenMP reads the same setting
      (``faiss.omp_get_max_threads()`` drops to 1 with it) and would search on one thread;
    - around the classifier's fits, thousands of small kernels that each wait for a second
      thread (a ``"radial"`` fit at d = 16: 3 to 7 s with 2 threads on a busy machine,
      0.2 s with one).
    """
    saved = torch.get_num_threads()
    if saved == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)
