"""Checkpoint files written atomically, like the run record (:mod:`gan_je.records`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from gan_je.errors import CheckpointError
from gan_je.records import replaced_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO for local files, but a checkpoint replaces its file in one
    step (temporary file, fsync, ``os.replace``): a crash or a full disk while saving leaves
    the previous checkpoint whole, never a truncated one under the final name."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        try:
            with replaced_atomically(path) as file:
                torch.save(checkpoint, file)
        except (OSError, RuntimeError) as err:  # torch reports a full disk as RuntimeError
            free = shutil.disk_usage(Path(path).parent).free / 2**20
            raise CheckpointError(
                f"cannot write the checkpoint {path} ({free:.1f} MiB free there; "
                f"{' '.join(str(err).split())[:200]}); the previous one is kept whole"
            ) from err
