"""The name ``conf/trainer/default.yaml`` gives the checkpoint writer
(``trainer.plugins``), which lives in :mod:`gan_je.checkpoints`; once the config names
``gan_je.checkpoints.AtomicCheckpointIO``, this module goes."""

from gan_je.checkpoints import AtomicCheckpointIO

__all__ = ["AtomicCheckpointIO"]
