"""The base of the token-sequence data modules: ids stored, one-hot samples handed out.

A sample of kind ``tokens`` (:mod:`gan_je.data.kinds`) is ``(L, V)`` float32, at each of the L
positions a distribution over the V tokens, one-hot for real data. Stored that way the
SeqGAN oracle's 10,000 sequences of 20 tokens over 5,000 would take 4 GB, so a token module
stores the ids, ``(N, L)`` int64, and makes one-hot samples of them only where they are
handed out: in every loader batch and in :meth:`TokenDataModule.train_tensor` (keep its
``max_n`` small for a large vocabulary; ``sample_batches`` makes them a batch at a time).
:attr:`TokenDataModule.train_ids` and :attr:`TokenDataModule.val_ids` give the ids
themselves, ``stored(split, max_n)`` the ids of ``train_tensor``'s seeded subset.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from gan_je.checks import check_fits_in_memory, positive_int
from gan_je.data.base import ArrayDataModule
from gan_je.data.kinds import kind_of
from gan_je.estimators._inputs import check_ids


class TokenDataModule(ArrayDataModule):
    """Sequences of ``length`` token ids in ``range(vocab_size)``, handed out one-hot.

    Args:
        length: L, the tokens of every sequence.
        **kwargs: ``batch_size``, ``num_workers``, ``seed``, ... of :class:`ArrayDataModule`.

    A subclass implements :meth:`_load` (ids ``(N, L)`` for ``x``, zeros for ``y``: token
    sequences have no classes, so :attr:`n_classes` is 1) and :attr:`vocab_size`, and
    :attr:`symbols` where ids stand for text. Loader batches are ``(one_hot (B, L, V)
    float32, y)``.
    """

    kind = "tokens"
    stored_dtype: ClassVar[torch.dtype] = torch.int64

    def __init__(self, length: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.length = positive_int("length", length)

    @property
    def vocab_size(self) -> int:
        """V, the number of tokens."""
        raise NotImplementedError(f"{type(self).__name__} must implement vocab_size")

    @property
    def symbols(self) -> list[str] | None:
        """What each id decodes to (``symbols[i]`` for id i), or ``None``: ids decode as
        numbers."""
        return None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.length, self.vocab_size)

    @property
    def n_classes(self) -> int:
        return 1

    @property
    def data_spec(self) -> dict[str, Any]:
        """``{"kind": "tokens", "sample_shape": [L, V], "vocab_size": V}``, plus ``"symbols"``
        (V plain strings) where the module has them."""
        spec: dict[str, Any] = {
            "kind": self.kind,
            "sample_shape": [self.length, self.vocab_size],
            "vocab_size": self.vocab_size,
        }
        if self.symbols is not None:
            spec["symbols"] = [str(symbol) for symbol in self.symbols]
        return kind_of(spec).spec  # the kind checks the spec: one symbol per token id

    @property
    def train_ids(self) -> Tensor:
        """The training sequences' ids ``(N, L)`` int64 (not a copy: do not modify them)."""
        return self._require("train", "train_ids").tensors[0]

    @property
    def val_ids(self) -> Tensor:
        """The validation sequences' ids ``(N, L)`` int64 (not a copy: do not modify them)."""
        return self._require("val", "val_ids").tensors[0]

    def as_samples(self, x: Tensor) -> Tensor:
        """One-hot samples ``(n, L, V)`` float32 of ids ``x`` ``(n, L)``; a
        :class:`~gan_je.errors.ConfigError` instead where they would not fit in memory (all
        10,000 of the oracle's take 4 GB: ask :meth:`train_tensor` for fewer)."""
        check_fits_in_memory("one-hot samples", len(x), 4 * self.length * self.vocab_size)
        return torch.nn.functional.one_hot(x, self.vocab_size).to(torch.float32)

    def setup(self, stage: str | None = None) -> None:
        """:meth:`ArrayDataModule.setup`, then a check that each split holds ids ``(N, L)`` in
        ``range(vocab_size)``."""
        super().setup(stage)
        for split in ("train", "val"):
            dataset = self._split(split)
            if dataset is not None:
                check_ids(dataset.tensors[0], f"{split} ids", self.length, self.vocab_size)
