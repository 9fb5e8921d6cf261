"""Data-parallel training of a module whose networks are stepped one at a time (a GAN).

torch's ``DistributedDataParallel`` expects every parameter of the module it wraps to receive
a gradient in every backward pass. A GAN's discriminator step leaves the generator without
gradients (and the generator step freezes the discriminator), so a DDP-wrapped GAN fails with
"Expected to have finished reduction in the prior iteration ... parameters that were not
used" unless ``find_unused_parameters=True``, which walks the autograd graph on every step.

:class:`GANDDPStrategy` does the arithmetic of DDP without the wrapper: it broadcasts rank 0's
parameters and buffers at the start (and buffers such as batch-norm statistics again before
each validation), and after every ``manual_backward`` averages the gradients of the
parameters that take part in this step (those with ``requires_grad``: Lightning's
``toggle_optimizer`` freezes the other network) with one all-reduce of a flat buffer. Every
process then applies the same optimizer step to the same weights, so they stay identical.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import _sync_module_states
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor, nn


def average_gradients(parameters: list[nn.Parameter]) -> None:
    """Replace each parameter's gradient by its mean over all processes (in place)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads or not dist.is_initialized() or dist.get_world_size() == 1:
        return
    flat = torch.cat([grad.reshape(-1) for grad in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for grad, part in zip(grads, torch.split(flat, [g.numel() for g in grads]), strict=True):
        grad.copy_(part.view_as(grad))


class GANDDPStrategy(DDPStrategy):
    """DDP for :class:`gan_je.module.GANModule` without ``find_unused_parameters``
    (see the module docstring). Takes :class:`lightning.pytorch.strategies.DDPStrategy`'s
    arguments (``process_group_backend``, ``start_method``, ...)."""

    def configure_ddp(self) -> None:
        """Instead of wrapping the module: start every process from rank 0's weights."""
        _sync_module_states(self.model)

    def post_backward(self, closure_loss: Tensor) -> None:
        trainable = [p for p in self.lightning_module.parameters() if p.requires_grad]
        average_gradients(trainable)
        super().post_backward(closure_loss)

    def on_validation_start(self) -> None:
        """Rank 0's buffers (batch-norm statistics) everywhere, so every process samples
        from the same generator."""
        if dist.is_initialized():
            _sync_module_states(self.model)
        super().on_validation_start()
