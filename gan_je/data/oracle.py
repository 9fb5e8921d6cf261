"""Oracle: the synthetic benchmark of SeqGAN, sequences drawn from a random LSTM.

Yu, Zhang, Wang and Yu, "SeqGAN: Sequence generative adversarial nets with policy gradient"
(AAAI 2017), section "Synthetic data experiments": the real data is drawn from an LSTM
language model whose parameters are all drawn from N(0, 1), with a vocabulary of 5,000
tokens, sequences of 20, embedding and hidden sizes 32; 10,000 sequences form the training
set. Because the data distribution p is known, the oracle's negative log-likelihood of
generated sequences (NLL-oracle) measures their quality exactly, and a held-out set of the
oracle's own samples lets an autoregressive generator's likelihood measure its diversity.

Here the oracle is :class:`gan_je.models.lstm.LSTMLanguageModel` with every parameter drawn
by :meth:`~gan_je.models.lstm.LSTMLanguageModel.init_normal_` from a generator seeded with
``oracle_seed``; the training and validation sequences are its samples, drawn from uniforms
of the ``"oracle"`` streams of ``data_seed`` (:mod:`gan_je.seeding`). Drawing the default
20,000 sequences takes about 20 s on 2 CPU cores, so they are kept in ``cache_dir`` (a file
named by every setting that fixes them; delete it at will).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gan_je.atomic_files import replaced_atomically
from gan_je.checks import non_negative_int, positive_int
from gan_je.data._checks import check_samples_fit
from gan_je.data.tokens import TokenDataModule
from gan_je.errors import DataError, RecordError
from gan_je.estimators._inputs import check_ids
from gan_je.models.lstm import LSTMLanguageModel
from gan_je.seeding import generator
from gan_je.sequence_measures import log_probs

log = logging.getLogger(__name__)

#: How many values one batch of the oracle's computations may hold: rows of V logits when
#: sampling, rows of L x V when scoring (about 16 MB of float32 per tensor).
BATCH_VALUES = 2**22
#: Part of the cache file's name; raise it when the sequences a setting gives change.
CACHE_VERSION = 1


class Oracle(TokenDataModule):
    """SeqGAN's synthetic data: an LSTM with N(0, 1) parameters, and sequences it samples.

    Args:
        vocab_size: V, the oracle's vocabulary (SeqGAN: 5,000).
        length: L, tokens per sequence (SeqGAN: 20).
        embed_dim: the oracle's embedding size (SeqGAN: 32).
        hidden_dim: the oracle's LSTM hidden size (SeqGAN: 32).
        oracle_seed: seeds the oracle's parameters; fixed, so every run shares one oracle.
        n_train: training sequences (SeqGAN: 10,000).
        n_val: held-out sequences, for NLL-test and the metric's real side.
        cache_dir: a folder where the sampled sequences are kept between runs (``None``: draw
            them in every run).
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ``data_seed``, ... of
            :class:`~gan_je.data.base.ArrayDataModule`; ``data_seed`` seeds the sequences.

    Attributes:
        oracle: the :class:`~gan_je.models.lstm.LSTMLanguageModel` (eval mode, no gradients,
            on the CPU): the data distribution itself.
    """

    def __init__(
        self,
        vocab_size: int = 5_000,
        length: int = 20,
        embed_dim: int = 32,
        hidden_dim: int = 32,
        oracle_seed: int = 0,
        n_train: int = 10_000,
        n_val: int = 10_000,
        cache_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(length, **kwargs)
        self.oracle_seed = non_negative_int("oracle_seed", oracle_seed)
        self.oracle = LSTMLanguageModel(vocab_size, length, embed_dim, hidden_dim)
        self.oracle.init_normal_(torch.Generator().manual_seed(self.oracle_seed))
        self.oracle.eval().requires_grad_(False)
        self.n_train = positive_int("n_train", n_train)
        self.n_val = positive_int("n_val", n_val)
        check_samples_fit(self.n_train, self.n_val, (self.length,))
        self.cache_dir = None if cache_dir is None else Path(cache_dir)

    @property
    def vocab_size(self) -> int:
        return self.oracle.vocab_size

    @property
    def cache_path(self) -> Path | None:
        """The file the sequences are kept in, named by every setting that fixes them."""
        if self.cache_dir is None:
            return None
        oracle = self.oracle
        name = (
            f"oracle-v{CACHE_VERSION}-vocab{oracle.vocab_size}-length{oracle.length}-"
            f"embed{oracle.embed_dim}-hidden{oracle.hidden_dim}-seed{self.oracle_seed}-"
            f"data{self.data_seed}-train{self.n_train}-val{self.n_val}.pt"
        )
        return self.cache_dir / name

    def prepare_data(self) -> None:
        """Draw the sequences into ``cache_dir`` once (Lightning calls this in one process
        per machine, before :meth:`setup` in every process reads the file)."""
        if self.cache_dir is not None:
            self._sequences()

    def sample_sequences(self, n: int, stream: int) -> Tensor:
        """``n`` sequences ``(n, L)`` of the oracle: ``oracle.sample(n, generator)`` with the
        generator of ``data_seed``'s ``"oracle"`` stream ``stream`` (0: training, 1:
        validation), computed in batches."""
        n = positive_int("n", n)
        uniforms = torch.rand(n, self.length, generator=generator(self.data_seed, "oracle", stream))
        rows = max(1, BATCH_VALUES // self.vocab_size)
        with torch.no_grad():
            return torch.cat([self.oracle.sample_from_uniforms(u) for u in uniforms.split(rows)])

    def log_prob(self, tokens: Tensor) -> Tensor:
        """The oracle's exact log-likelihood log p(x) of each sequence, ``(n,)`` nats.

        Args:
            tokens: ids ``(n, L)`` (an integer tensor) or one-hot sequences ``(n, L, V)``
                (real data, or generated samples in eval mode), on any device.

        Returns:
            ``(n,)`` float32 on the device of ``tokens`` (computed on the oracle's, in
            batches). NLL-oracle per token is ``-log_prob(x).mean() / L``.
        """
        rows = max(1, BATCH_VALUES // (self.length * self.vocab_size))
        values = log_probs(self.oracle, self._ids_of(tokens), rows)
        return values.to(tokens.device, torch.float32)

    def _ids_of(self, tokens: Tensor) -> Tensor:
        if isinstance(tokens, Tensor) and tokens.ndim == 3:
            shape = (self.length, self.vocab_size)
            if not tokens.dtype.is_floating_point or tuple(tokens.shape[1:]) != shape:
                raise ValueError(
                    f"one-hot tokens must be a float tensor of shape (n, {shape[0]}, "
                    f"{shape[1]}), got {tokens.dtype} {tuple(tokens.shape)}"
                )
            # non-negative entries summing to 1 with one of them 1: exactly one-hot
            one_hot = (
                (tokens.amin(dim=-1) >= 0) & (tokens.amax(dim=-1) == 1) & (tokens.sum(dim=-1) == 1)
            )
            if tokens.shape[0] == 0 or not bool(one_hot.all()):
                raise ValueError(
                    "tokens (n, L, V) must be one-hot at every position (n >= 1): the oracle "
                    "scores sequences, not distributions over them; take argmax(-1) first, or "
                    "sample the generator in eval mode"
                )
            tokens = tokens.argmax(dim=-1)
        return check_ids(tokens, "tokens", self.length, self.vocab_size).cpu()

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        train, val = self._sequences()
        return train, torch.zeros(len(train)), val, torch.zeros(len(val))

    def _sequences(self) -> tuple[Tensor, Tensor]:
        """The training and validation ids: read from the cache, or drawn (and cached)."""
        path = self.cache_path
        if path is not None and path.is_file():
            return _read_cache(path)
        train = self.sample_sequences(self.n_train, 0)
        val = self.sample_sequences(self.n_val, 1)
        if path is not None:
            try:
                with replaced_atomically(path) as file:
                    torch.save({"train": train, "val": val}, file)
            except RecordError as err:
                log.warning("the oracle's sequences are not cached: %s", err)
        return train, val


def _read_cache(path: Path) -> tuple[Tensor, Tensor]:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return saved["train"], saved["val"]
    except Exception as err:
        raise DataError(
            f"the cached oracle sequences {path} cannot be read ({type(err).__name__}: "
            f"{err}); delete the file and they are drawn again"
        ) from err
