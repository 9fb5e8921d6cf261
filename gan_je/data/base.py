"""The base of every data module: in-memory tensors, seeded loaders and seeded subsets.

Every data set here is small enough to hold in memory as two tensors, ``x`` (float32) and
``y`` (int64 class labels). A subclass only says how to load them (:meth:`_load`); this class
turns them into ``TensorDataset``s, data loaders and the deterministic subsets that the
feature extractors are fitted on.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper
from torch import Tensor
from torch.utils.data import DataLoader, SequentialSampler, TensorDataset

from gan_je.checks import non_negative_int, positive_int


class ArrayDataModule(L.LightningDataModule):
    """A ``LightningDataModule`` over in-memory ``(x float32, y int64)`` tensors.

    Args:
        batch_size: samples per batch, for training and validation.
        num_workers: data loader worker processes (0 loads in the main process; the data is
            already in memory, so 0 is usually fastest).
        seed: seeds the training shuffle.
        data_seed: seeds everything about the data itself (the train/val split, sampled
            synthetic data, the subsets of :meth:`train_tensor`); ``None`` uses ``seed``. Fix
            it to keep one validation set across runs with different ``seed``.
        pin_memory: pin batches in page-locked memory (faster copies to a GPU).

    After :meth:`setup` (idempotent: later calls return at once) the module has ``train_set``
    and ``val_set``. Subclasses implement :meth:`_load`, and override :attr:`sample_shape` and
    :attr:`n_classes` where the constructor arguments already tell them.
    """

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
        self.num_workers = non_negative_int("num_workers", num_workers)
        self.seed = non_negative_int("seed", seed)
        self.data_seed = (
            self.seed if data_seed is None else non_negative_int("data_seed", data_seed)
        )
        self.pin_memory = bool(pin_memory)
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None

    def _load(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return ``x_train, y_train, x_val, y_val``; called once, by :meth:`setup`."""
        raise NotImplementedError(f"{type(self).__name__} must implement _load()")

    def setup(self, stage: str | None = None) -> None:
        """Load the data into ``train_set`` and ``val_set``, once; ``stage`` is ignored."""
        if self.train_set is not None:
            return
        x_train, y_train, x_val, y_val = self._load()
        self.train_set = TensorDataset(_as_x(x_train), _as_y(y_train))
        self.val_set = TensorDataset(_as_x(x_val), _as_y(y_val))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample ``x``, e.g. ``(1, 28, 28)`` for an image or ``(2,)`` for a point."""
        return tuple(self._require_setup("sample_shape")[0].tensors[0].shape[1:])

    @property
    def is_image(self) -> bool:
        """Whether samples are ``(C, H, W)`` images (in [-1, 1]) rather than vectors."""
        return len(self.sample_shape) == 3

    @property
    def n_classes(self) -> int:
        """Number of classes; labels ``y`` are in ``range(n_classes)``."""
        train_set, val_set = self._require_setup("n_classes")
        return int(max(train_set.tensors[1].max(), val_set.tensors[1].max())) + 1

    def train_dataloader(self) -> DataLoader:
        """Batches of ``(x, y)`` shuffled with ``seed``; the last, partial batch is dropped."""
        train_set, _ = self._require_setup("train_dataloader()")
        if len(train_set) < self.batch_size:
            raise ValueError(
                f"batch_size={self.batch_size} is larger than the {len(train_set)} training "
                f"samples, so no full batch can be drawn; lower batch_size"
            )
        generator = torch.Generator().manual_seed(self.seed)
        return self._loader(train_set, shuffle=True, drop_last=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        """Batches of the validation set in a fixed order, the last one possibly smaller.

        Under DDP each process gets every ``world_size``-th sample and no sample twice
        (Lightning's default sampler would pad the shards with repeats, which a k-NN
        estimate would see as duplicates), so the processes together see the set once.
        """
        _, val_set = self._require_setup("val_dataloader()")
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
        """Training samples ``x``: all, or a subset of ``max_n`` seeded by ``data_seed``.

        Used to fit feature maps (e.g. PCA). The full set is returned without a copy: do not
        modify it in place.
        """
        train_set, _ = self._require_setup("train_tensor()")
        return self._subset(train_set.tensors[0], max_n)

    def val_tensor(self, max_n: int | None = None) -> Tensor:
        """Validation samples ``x``: all of them, or a seeded subset of ``max_n``."""
        _, val_set = self._require_setup("val_tensor()")
        return self._subset(val_set.tensors[0], max_n)

    def _subset(self, x: Tensor, max_n: int | None) -> Tensor:
        if max_n is None or positive_int("max_n", max_n) >= len(x):
            return x
        generator = torch.Generator().manual_seed(self.data_seed)
        keep = torch.randperm(len(x), generator=generator)[:max_n]
        return x[keep.sort().values]

    def _loader(self, dataset: TensorDataset, **kwargs: object) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            **kwargs,
        )

    def _require_setup(self, what: str) -> tuple[TensorDataset, TensorDataset]:
        if self.train_set is None or self.val_set is None:
            raise RuntimeError(
                f"{type(self).__name__}.{what} needs the data: "
                "call prepare_data() and then setup() first"
            )
        return self.train_set, self.val_set


def split(x: Tensor, y: Tensor, n_val: int, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Shuffle ``(x, y)`` with ``seed`` and return ``x_train, y_train, x_val, y_val``.

    The validation set is the first ``n_val`` samples of the shuffled order, so the same seed
    always gives the same split and a different seed (almost surely) a different one.
    """
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def _as_x(x: Tensor) -> Tensor:
    return x.to(torch.float32).contiguous()


def _as_y(y: Tensor) -> Tensor:
    return y.to(torch.int64).contiguous()
