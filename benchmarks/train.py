"""Training speed: Lightning's overhead and the validation metric's share, as Markdown tables.

    python benchmarks/train.py              # the CPU tables (a few minutes on 2 CPU cores)
    python benchmarks/train.py overhead     # or: validation, precision (needs a GPU)
    python benchmarks/train.py --dry-run precision   # its code on the CPU, a few steps

overhead: generator steps per second of ``GANModule`` (``DCGAN_2016``: the 2016 DCGAN with the
non-saturating loss, the default before the recipes of benchmarks/recipes.py; mnist5k, batch
64) under ``lightning.Trainer`` against a plain PyTorch loop doing
the same steps on the same networks, optimisers and data loader (one discriminator step
with fresh latents, then one generator step with the discriminator frozen). Target: at most
10 % overhead.

validation: the share of each epoch's wall time spent in validation (generating the
validation samples, PCA features, the k-NN metric) with ``DCGAN_2016``. Target: under
10 %.

precision: the overhead comparison on one GPU in fp32, ``16-mixed`` and ``bf16-mixed``
(the plain loop under ``torch.autocast``, with a ``GradScaler`` for float16, as Lightning's
mixed-precision plugin does). Run by ``benchmarks/gpu.sh``.
"""

from __future__ import annotations

import sys
import time
import traceback

import lightning
import torch
from common import MeasurementError, run_sections, train_config

from gan_je.tables import markdown_table
from gan_je.train import build

#: the configuration every table here is measured in: the default run before issue 33
DCGAN_2016 = ("model=dcgan", "loss=nonsaturating")


class StepClock(lightning.Callback):
    """Wall time of training batches ``warmup .. warmup + steps`` (the timed window)."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps
        self.start = self.seconds = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.g_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.g_step == self.warmup + self.steps:
            self.seconds = time.perf_counter() - self.start


PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")
RUN_DIR = "/tmp/gan_je_bench/run"


def lightning_steps_per_second(
    warmup: int,
    steps: int,
    progress_bar: bool,
    accelerator: str = "cpu",
    precision: str = "32-true",
    overrides: tuple[str, ...] = (),
) -> float:
    """Generator steps per second of ``GANModule`` under ``lightning.Trainer``, with
    ``DCGAN_2016`` and ``overrides``."""
    lightning.seed_everything(0, workers=True)
    datamodule, module = build(train_config(RUN_DIR, "logger=none", *DCGAN_2016, *overrides))
    clock = StepClock(warmup, steps)
    callbacks = [clock]
    if progress_bar:
        callbacks.append(lightning.pytorch.callbacks.RichProgressBar())
    trainer = lightning.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=-1,
        max_steps=2 * (warmup + steps),  # global_step counts D and G steps
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(module, datamodule=datamodule)
    return steps / clock.seconds


def plain_steps_per_second(
    warmup: int,
    steps: int,
    accelerator: str = "cpu",
    precision: str = "32-true",
    overrides: tuple[str, ...] = (),
) -> float:
    """The same steps in a hand-written loop (no Lightning), at Lightning's ``precision``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    lightning.seed_everything(0, workers=True)
    datamodule, module = build(train_config(RUN_DIR, "logger=none", *DCGAN_2016, *overrides))
    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    module.to(device)
    generator, discriminator, loss = module.generator, module.discriminator, module.loss
    (opt_g, opt_d), _ = module.configure_optimizers()
    latent_dim = generator.latent_dim
    mixed = precision != "32-true"
    # Lightning runs 16-mixed as bf16 on CPU, and scales the losses of float16 only
    half = precision == "16-mixed" and device.type == "cuda"
    amp_dtype = torch.float16 if half else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=half)

    def step(optimizer: torch.optim.Optimizer, loss_value: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss_value).backward()
        scaler.step(optimizer)
        scaler.update()

    done, start = 0, 0.0
    while done < warmup + steps:
        for real, _ in datamodule.train_dataloader():
            if done == warmup:
                start = time.perf_counter()
            real = real.to(device, non_blocking=True)
            n = real.shape[0]
            with torch.autocast(device.type, dtype=amp_dtype, enabled=mixed):
                with torch.no_grad():
                    fake = generator(torch.randn(n, latent_dim, device=device))
                d_loss = loss.discriminator_loss(discriminator(real), discriminator(fake))
                d_loss = d_loss + loss.penalty(discriminator, real, fake, d_step=done)
                step(opt_d, d_loss)
                discriminator.requires_grad_(False)
                fake = generator(torch.randn(n, latent_dim, device=device))
                g_loss = loss.generator_loss(discriminator(fake))
                step(opt_g, g_loss)
                discriminator.requires_grad_(True)
            torch.isfinite(d_loss) and torch.isfinite(g_loss)  # the module's divergence check
            done += 1
            if done == warmup + steps:
                break
    return steps / (time.perf_counter() - start)


def overhead_cell(plain: float, ours: float) -> str:
    """Lightning's overhead over the plain loop, from their generator steps per second."""
    return f"{100 * (plain / ours - 1):+.1f} %"


def overhead(warmup: int = 20, steps: int = 200, repeats: int = 2) -> str:
    """The best of ``repeats`` interleaved runs of each loop (this VM's speed drifts)."""
    loops = {
        "plain PyTorch loop": lambda: plain_steps_per_second(warmup, steps),
        "GANModule, no progress bar": lambda: lightning_steps_per_second(warmup, steps, False),
        "GANModule, rich bar": lambda: lightning_steps_per_second(warmup, steps, True),
    }
    best = dict.fromkeys(loops, 0.0)
    for _ in range(repeats):
        for label, run in loops.items():
            best[label] = max(best[label], run())
    plain = best.pop("plain PyTorch loop")
    rows = [["plain PyTorch loop", f"{plain:.2f}", "—"]]
    for label, ours in best.items():
        rows.append([label, f"{ours:.2f}", overhead_cell(plain, ours)])
    header = ["loop (DCGAN, mnist5k, batch 64, CPU)", "generator steps / s", "overhead"]
    return markdown_table(header, rows)


class EpochClock(lightning.Callback):
    """Per epoch: wall time of the whole epoch and of its validation."""

    def __init__(self) -> None:
        self.epochs: list[float] = []
        self.validations: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epoch_start = time.perf_counter()

    def on_validation_start(self, trainer, pl_module) -> None:
        self.validation_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        self.validations.append(time.perf_counter() - self.validation_start)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epochs.append(time.perf_counter() - self.epoch_start)


def validation(epochs: int = 3) -> str:
    lightning.seed_everything(0, workers=True)
    datamodule, module = build(train_config(RUN_DIR, "logger=none", *DCGAN_2016))
    clock = EpochClock()
    compute = module.metric.compute
    compute_seconds: list[float] = []

    def timed_compute():
        start = time.perf_counter()
        result = compute()
        compute_seconds.append(time.perf_counter() - start)
        return result

    module.metric.compute = timed_compute
    trainer = lightning.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[clock],
    )
    trainer.fit(module, datamodule=datamodule)
    rows = []
    for epoch, (total, val, metric) in enumerate(
        zip(clock.epochs, clock.validations, compute_seconds, strict=True)
    ):
        rows.append(
            [
                str(epoch),
                f"{total:.2f}",
                f"{val:.3f}",
                f"{metric:.3f}",
                f"{100 * val / total:.1f} %",
            ]
        )
    header = ["epoch", "epoch s", "validation s", "metric.compute s", "validation share"]
    return markdown_table(header, rows)


def precision(
    accelerator: str = "gpu", warmup: int = 20, steps: int = 300, overrides: tuple[str, ...] = ()
) -> str:
    """Generator steps per second of the plain loop and of ``GANModule`` (no progress bar)
    in each of :data:`PRECISIONS`, on one ``accelerator``, with ``DCGAN_2016`` and the config
    ``overrides``. A precision that fails is marked in its row and the others still run."""
    if accelerator == "gpu" and not torch.cuda.is_available():
        return "no CUDA device: precision table skipped"
    rows, failed = [], []
    for name in PRECISIONS:
        try:
            plain = plain_steps_per_second(warmup, steps, accelerator, name, overrides)
            ours = lightning_steps_per_second(warmup, steps, False, accelerator, name, overrides)
        except Exception:  # recorded in its row; the other precisions still run
            traceback.print_exc()
            failed.append(name)
            rows.append([name, "failed", "failed", "—"])
            continue
        rows.append([name, f"{plain:.1f}", f"{ours:.1f}", overhead_cell(plain, ours)])
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    where = torch.cuda.get_device_name() if accelerator == "gpu" else "CPU"
    header = ["precision", "plain loop: G steps / s", "GANModule: G steps / s", "overhead"]
    table = markdown_table(header, rows) + (
        f"\n\n{where}; the 2016 DCGAN (mnist5k, batch 64, non-saturating loss) with the overrides "
        f"{' '.join(overrides)}; {steps} timed generator steps after {warmup} warm-up ones."
    )
    if failed:
        raise MeasurementError(table, f"precision(s) {failed} failed")
    return table


SECTIONS = {"overhead": overhead, "validation": validation, "precision": precision}
#: benchmarks/gpu.sh --dry-run: the precision table's code for a few steps on the CPU.
DRY_RUNS = {
    "precision": lambda: precision("cpu", warmup=1, steps=1, overrides=("data.batch_size=4",))
}


def main() -> None:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    banner = f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}"
    run_sections(__doc__.splitlines()[0], SECTIONS, banner, DRY_RUNS)


if __name__ == "__main__":
    main()
