"""The base of every data module: in-memory tensors, seeded loaders and seeded subsets.

Every data set here is small enough to hold in memory as two tensors, ``x`` (float32 samples,
or what they are stored as: token ids) and ``y`` (int64 class labels). A subclass only says
how to load them (:meth:`_load`); this class turns them into ``TensorDataset``s, data
loaders and the deterministic subsets that the feature extractors are fitted on.

The training order is a function of ``(seed, epoch)`` alone (:class:`EpochShuffleSampler`), and
the training loader can be checkpointed inside an epoch (:class:`ResumableLoader`), so a run
resumed anywhere, also from a checkpoint saved at a signal mid-epoch, sees the same batches as
one that never stopped. No loader draws from the global torch random stream, which belongs to
the training latents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from torch import Tensor
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    SequentialSampler,
    TensorDataset,
    default_collate,
)

from gan_je.checks import non_negative_int, positive_int
from gan_je.data._checks import capped_workers
from gan_je.data.kinds import kind_of
from gan_je.seeding import stream_seed

#: The ``setup`` stages that need only the validation split.
VAL_ONLY_STAGES = ("validate", "test")
#: Every stage Lightning passes to ``setup`` (``None``: all of them).
STAGES = ("fit", *VAL_ONLY_STAGES, "predict")


class EpochShuffleSampler(DistributedSampler):
    """A shuffle whose order for epoch ``e`` depends on ``(seed, e)`` and nothing else.

    The permutation of epoch ``e`` is drawn by a NumPy generator seeded with
    ``gan_je.seeding.stream_seed(seed, "shuffle", e)``, so two runs with the same seed see the same
    batches in every epoch, a resumed run sees the batches the uninterrupted run would have,
    and, unlike ``seed + e``, seed ``s`` at epoch ``e + 1`` is not seed ``s + 1`` at epoch ``e``.
    No torch random stream is touched.

    Call :meth:`set_epoch` before each epoch (Lightning's fit loop does, for any sampler that
    has it; being a ``DistributedSampler`` also keeps Lightning from replacing it under DDP).
    Process ``rank`` of ``num_replicas`` takes every ``num_replicas``-th index of the
    permutation, starting at ``rank``; the tail that does not divide evenly among the
    processes is dropped (a different tail each epoch), so no sample is repeated.

    Args:
        dataset: the data set to index (only its length is used).
        seed: an int >= 0.
        num_replicas: the number of processes sharing the data (1 without DDP).
        rank: this process's index in ``range(num_replicas)``.
    """

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        seed = non_negative_int("seed", seed)
        num_replicas = positive_int("num_replicas", num_replicas)
        rank = non_negative_int("rank", rank)
        if rank >= num_replicas:
            raise ValueError(f"rank must be in range(num_replicas={num_replicas}), got {rank}")
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self._start = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration yield the order of ``epoch`` (an int >= 0)."""
        self.epoch = non_negative_int("epoch", epoch)

    def start_next_at(self, position: int) -> None:
        """Make the next iteration (only that one) skip the first ``position`` indices of this
        process's order: how :class:`ResumableLoader` continues an epoch."""
        self._start = non_negative_int("position", position)

    def __iter__(self) -> Iterator[int]:
        """The indices of this process for the current epoch, in order."""
        rng = np.random.default_rng(stream_seed(self.seed, "shuffle", self.epoch))
        order = rng.permutation(len(self.dataset))[: self.total_size]  # type: ignore[arg-type]
        start, self._start = self._start, 0
        return iter(order[self.rank :: self.num_replicas][start:].tolist())


class ResumableLoader(DataLoader):
    """The training ``DataLoader``, checkpointed by Lightning inside an epoch.

    Its state (``state_dict``, which Lightning saves with the fit loop in every checkpoint) is
    the epoch and the number of batches handed out in it. A loader given that state
    (``load_state_dict``, before the resumed run iterates) starts its next iteration of that
    epoch after those batches, so training resumed from a checkpoint saved mid-epoch (at
    SIGTERM, or by ``val_check_interval``) sees exactly the batches the uninterrupted run saw.
    For an epoch-end checkpoint the next iteration is another epoch and starts at its first
    batch. The skipped batches are not even indexed with an :class:`EpochShuffleSampler`;
    with another sampler whose order is fixed (Lightning puts a ``SequentialSampler`` in for
    ``overfit_batches``) they are drawn and dropped.
    """

    def __init__(self, dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self._epoch, self._batches = 0, 0
        self._resume: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, int]:
        """``{"epoch": e, "batches": b}``: ``b`` batches of epoch ``e`` handed out so far (or
        the loaded state, while the iteration it applies to has not begun)."""
        if self._resume is not None:
            return {"epoch": self._resume[0], "batches": self._resume[1]}
        return {"epoch": self._epoch, "batches": self._batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue after ``state["batches"]`` batches if the next iteration is of
        ``state["epoch"]``."""
        epoch, batches = state["epoch"], state["batches"]
        self._resume = (non_negative_int("epoch", epoch), non_negative_int("batches", batches))

    def __iter__(self) -> Iterator[Any]:
        # a generator: the epoch is read at the first batch, after Lightning's set_epoch
        epoch, skipped = getattr(self.sampler, "epoch", 0), 0
        if self._resume is not None and self._resume[0] == epoch:
            skipped = self._resume[1]
        self._resume = None
        self._epoch, self._batches = epoch, skipped
        to_drop = skipped
        if isinstance(self.sampler, EpochShuffleSampler):
            self.sampler.start_next_at(skipped * self.batch_size)
            to_drop = 0
        for batch in super().__iter__():
            if to_drop:
                to_drop -= 1
                continue
            self._batches += 1
            yield batch


class ArrayDataModule(L.LightningDataModule):
    """A ``LightningDataModule`` over in-memory ``(x, y int64)`` tensors.

    Args:
        batch_size: samples per batch, for training and validation.
        num_workers: data loader worker processes (0 loads in the main process; the data is
            already in memory, so 0 is usually fastest).
        seed: seeds the training shuffle (see :class:`EpochShuffleSampler`).
        data_seed: seeds everything about the data itself (the train/val split, sampled
            synthetic data, the subsets of :meth:`train_tensor`); ``None`` uses ``seed``. Fix
            it to keep one validation set across runs with different ``seed``.
        pin_memory: pin batches in page-locked memory (faster copies to a GPU).

    :meth:`setup` fills ``train_set`` and ``val_set``; it is idempotent per split (a split
    already loaded is kept). Subclasses set their :attr:`kind` of sample, implement
    :meth:`_load`, and override :attr:`sample_shape` and :attr:`n_classes` where the
    constructor arguments already tell them. A subclass whose splits are separate files
    sets ``separate_splits = True`` and implements :meth:`_load_split`, so that
    ``setup("validate")`` reads only the validation split. A subclass that stores ``x`` in
    another form than its samples (token ids for one-hot sequences,
    :class:`gan_je.data.tokens.TokenDataModule`) sets :attr:`stored_dtype` and overrides
    :meth:`as_samples`, which the loaders and :meth:`train_tensor` apply.
    """

    #: What one sample is: a kind of :mod:`gan_je.data.kinds` (``"points"``: vectors ``(d,)``).
    kind = "points"
    #: Whether :meth:`_load_split` can load one split without the other.
    separate_splits = False
    #: The dtype ``x`` is stored in (in ``train_set`` and ``val_set``).
    stored_dtype: ClassVar[torch.dtype] = torch.float32

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        data_seed: int | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.batch_size = positive_int("batch_size", batch_size)
        self.num_workers = capped_workers(num_workers)
        self.seed = non_negative_int("seed", seed)
        self.data_seed = (
            self.seed if data_seed is None else non_negative_int("data_seed", data_seed)
        )
        self.pin_memory = bool(pin_memory)
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return ``x_train, y_train, x_val, y_val``; called by :meth:`setup`."""
        raise NotImplementedError(f"{type(self).__name__} must implement _load()")

    def _load_split(self, split: str) -> tuple[Tensor, Tensor]:
        """Return ``x, y`` of ``split`` ("train" or "val"); only if ``separate_splits``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _load_split()")

    def setup(self, stage: str | None = None) -> None:
        """Load the splits ``stage`` needs into ``train_set`` and ``val_set``.

        ``"validate"`` and ``"test"`` need only ``val_set``; ``"fit"``, ``"predict"`` and
        ``None`` need both. A split already loaded is kept, so calling it again is cheap. A
        module that reads both splits at once (``separate_splits`` false) loads both for any
        stage.
        """
        if stage is not None and stage not in STAGES:
            raise ValueError(f"stage must be None or one of {', '.join(STAGES)}; got {stage!r}")
        needed = ["val"] if stage in VAL_ONLY_STAGES else ["train", "val"]
        missing = [split for split in needed if self._split(split) is None]
        if not missing:
            return
        if self.separate_splits:
            loaded = {split: self._load_split(split) for split in missing}
        else:
            x_train, y_train, x_val, y_val = self._load()
            loaded = {"train": (x_train, y_train), "val": (x_val, y_val)}
        for split, (x, y) in loaded.items():
            if self._split(split) is None:
                x = x.to(self.stored_dtype).contiguous()
                setattr(self, f"{split}_set", TensorDataset(x, _as_y(y)))

    def as_samples(self, x: Tensor) -> Tensor:
        """The samples ``(B, *sample_shape)`` that stored ``x`` (rows of ``train_set`` or
        ``val_set``) stand for: ``x`` itself here, what every loader batch and
        :meth:`train_tensor` go through."""
        return x

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample ``x``, e.g. ``(1, 28, 28)`` for an image or ``(2,)`` for a point."""
        dataset = self.val_set if self.val_set is not None else self.train_set
        if dataset is None:
            raise RuntimeError(_setup_message(self, "sample_shape"))
        return tuple(dataset.tensors[0].shape[1:])

    @property
    def data_spec(self) -> dict[str, Any]:
        """What a model needs to know about the samples, without the data.

        ``{"kind": ..., "sample_shape": [...]}`` (:attr:`kind`, :mod:`gan_je.data.kinds`) in
        plain Python types (lists, not tuples or tensors), so it can be stored in a checkpoint
        and read back with ``torch.load(weights_only=True)``; checked against the kind (a
        subclass adds the fields its kind needs). Available after :meth:`setup`, and before
        it where the constructor arguments fix the shape.
        """
        spec = {"kind": self.kind, "sample_shape": [int(n) for n in self.sample_shape]}
        return kind_of(spec).spec

    @property
    def n_classes(self) -> int:
        """Number of classes; labels ``y`` are in ``range(n_classes)``."""
        datasets = [d for d in (self.train_set, self.val_set) if d is not None]
        if not datasets:
            raise RuntimeError(_setup_message(self, "n_classes"))
        return max(int(d.tensors[1].max()) for d in datasets) + 1

    def train_dataloader(self) -> DataLoader:
        """Batches of ``(x, y)`` in an order fixed by ``(seed, epoch)``; the last, partial
        batch is dropped.

        The sampler is an :class:`EpochShuffleSampler`, sharded over the processes under DDP.
        """
        train_set = self._require("train", "train_dataloader()")
        distributed = dist.is_available() and dist.is_initialized()
        replicas, rank = (dist.get_world_size(), dist.get_rank()) if distributed else (1, 0)
        sampler = EpochShuffleSampler(train_set, self.seed, num_replicas=replicas, rank=rank)
        if len(sampler) < self.batch_size:
            per_process = f" per process ({replicas} processes)" if replicas > 1 else ""
            raise ValueError(
                f"batch_size={self.batch_size} is larger than the {len(sampler)} training "
                f"samples{per_process}, so no full batch can be drawn; lower batch_size"
            )
        return self._loader(train_set, sampler=sampler, drop_last=True, loader=ResumableLoader)

    def val_dataloader(self) -> DataLoader:
        """Batches of the validation set in a fixed order, the last one possibly smaller.

        Under DDP each process gets every ``world_size``-th sample and no sample twice
        (Lightning's default sampler would pad the shards with repeats, which a k-NN
        estimate would see as duplicates), so the processes together see the set once.
        """
        val_set = self._require("val", "val_dataloader()")
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self._loader(val_set, shuffle=False, drop_last=False)
        shards = UnrepeatedDistributedSamplerWrapper(
            SequentialSampler(val_set),
            num_replicas=dist.get_world_size(),
            rank=dist.get_rank(),
            shuffle=False,
        )
        return self._loader(val_set, sampler=shards, drop_last=False)

    def train_tensor(self, max_n: int | None = None) -> Tensor:
        """Training samples (:meth:`as_samples`): all, or a subset of ``max_n`` seeded by
        ``data_seed``.

        Used to fit feature maps (e.g. PCA). Where samples are stored as they are, the full
        set is returned without a copy: do not modify it in place.
        """
        self._require("train", "train_tensor()")
        return self.as_samples(self.stored("train", max_n))

    def val_tensor(self, max_n: int | None = None) -> Tensor:
        """Validation samples (:meth:`as_samples`): all of them, or a seeded subset of
        ``max_n``."""
        self._require("val", "val_tensor()")
        return self.as_samples(self.stored("val", max_n))

    def stored(self, split: str, max_n: int | None = None) -> Tensor:
        """``x`` of ``split`` ("train" or "val") as stored (token ids for one-hot sequences):
        all of it, without a copy (do not modify it), or the subset of ``max_n`` seeded by
        ``data_seed`` that :meth:`train_tensor` / :meth:`val_tensor` make samples of. Its
        length is the split's size, learnt without making a single sample."""
        if split not in ("train", "val"):
            raise ValueError(f"split must be train or val, got {split!r}")
        x = self._require(split, f"stored({split!r})").tensors[0]
        if max_n is None or positive_int("max_n", max_n) >= len(x):
            return x
        generator = torch.Generator().manual_seed(self.data_seed)
        keep = torch.randperm(len(x), generator=generator)[:max_n]
        return x[keep.sort().values]

    def sample_batches(
        self, split: str, max_n: int | None = None, batch_size: int = 1024
    ) -> Iterator[Tensor]:
        """The samples of :meth:`train_tensor` / :meth:`val_tensor` (``split`` "train" or
        "val", ``max_n``) in order, ``batch_size`` at a time, each batch made only when it
        is reached: the way to go through many samples that would not fit in memory at once
        (10,000 one-hot sequences over 5,000 tokens take 4 GB)."""
        batch_size = positive_int("batch_size", batch_size)
        for part in self.stored(split, max_n).split(batch_size):
            yield self.as_samples(part)

    def _loader(
        self, dataset: TensorDataset, loader: type[DataLoader] = DataLoader, **kwargs: Any
    ) -> DataLoader:
        # Each loader has its own generator: iterating a loader draws a worker base seed, which
        # would otherwise come from (and shift) the global torch stream of the training latents.
        return loader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            generator=torch.Generator().manual_seed(self.seed),
            collate_fn=partial(_collate_samples, self.as_samples),
            **kwargs,
        )

    def _split(self, split: str) -> TensorDataset | None:
        return self.train_set if split == "train" else self.val_set

    def _require(self, split: str, what: str) -> TensorDataset:
        dataset = self._split(split)
        if dataset is None:
            raise RuntimeError(_setup_message(self, what, split))
        return dataset


def _setup_message(dm: ArrayDataModule, what: str, split: str | None = None) -> str:
    """Why ``what`` cannot run yet: no data is loaded, or only the validation split."""
    if split == "train" and dm.val_set is not None:
        return (
            f"{type(dm).__name__}.{what} needs the training split, which setup('validate') "
            "and setup('test') do not load: call prepare_data() and then setup('fit') first"
        )
    return f"{type(dm).__name__}.{what} needs the data: call prepare_data() and then setup() first"


def split(x: Tensor, y: Tensor, n_val: int, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Shuffle ``(x, y)`` with ``seed`` and return ``x_train, y_train, x_val, y_val``.

    The validation set is the first ``n_val`` samples of the shuffled order, so the same seed
    always gives the same split and a different seed (almost surely) a different one.
    """
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def _collate_samples(as_samples: Callable[[Tensor], Tensor], rows: list[Any]) -> list[Tensor]:
    """A batch ``[samples, y]`` of ``(x, y)`` rows: stacked, then ``x`` made samples."""
    x, y = default_collate(rows)
    return [as_samples(x), y]


def _as_y(y: Tensor) -> Tensor:
    return y.to(torch.int64).contiguous()
