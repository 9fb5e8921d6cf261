"""Lightning callbacks: sample pictures, the run record (metrics.csv, summary.json, curves).

Both act after each validation (``on_validation_end``, so the epoch's ``val/`` metrics are
logged) and only on global rank 0; the sanity check is skipped.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import torch
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from rich.console import Console

from gan_je import sampling, seeding
from gan_je.atomic_files import write_atomically
from gan_je.checkpoints import confined_callback_state, last_checkpoint
from gan_je.checks import (
    choice,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from gan_je.class_scores import ClassScorer, fit_class_scorer
from gan_je.data.kinds import kind_of
from gan_je.errors import ConfigError, RecordError
from gan_je.estimators._inputs import check_base
from gan_je.features import Classifier
from gan_je.loggers import send_picture, send_summary
from gan_je.metrics_csv import read_metrics, write_metrics
from gan_je.modes import DigitClassifier, StackedModeCounter
from gan_je.pictures import plot_curves
from gan_je.progress import validation_line
from gan_je.resolvers import check_tags
from gan_je.sequence_measures import check_enough_sequences, measure_against_data

LOWER_IS_BETTER = "val/jsd"
log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    """A logged value as a JSON-friendly number."""
    if isinstance(value, torch.Tensor):
        value = value.item()
    return float(value) if isinstance(value, int | float) else value


def _active(trainer: Trainer) -> bool:
    return trainer.is_global_zero and not trainer.sanity_checking


def without_progress_bars(callbacks: list[Callback], enabled: bool | None) -> list[Callback]:
    """``callbacks`` without their progress bars when the trainer's ``enable_progress_bar``
    is false (``None``: Lightning's default, true), saying so in one log line: the default
    callbacks hold one (``callbacks.progress``), with which Lightning refuses the trainer."""
    if enabled is None or enabled:
        return callbacks
    bars = [c for c in callbacks if isinstance(c, ProgressBar)]
    if bars:
        names = ", ".join(type(bar).__name__ for bar in bars)
        log.info("trainer.enable_progress_bar=false: the callback %s is left out", names)
    return [c for c in callbacks if not isinstance(c, ProgressBar)]


class TerminalProgressBar(RichProgressBar):
    """Lightning's rich progress bar where its console is a terminal (or a notebook); elsewhere
    (output piped to a file) it draws nothing, where it would print one wrapped block at the
    end: the run record's line per validation in the log says how training goes there.

    While it draws, the log's console lines (Hydra's handler writes to the stdout it found at
    start-up) go through the streams rich redirects, so they appear above the bar instead of
    inside it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        console = Console(**(kwargs.get("console_kwargs") or {}))
        if not (console.is_terminal or console.is_jupyter):
            self.disable()
        self._moved: list[tuple[logging.StreamHandler, Any]] = []

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_start(trainer, pl_module)  # the bar starts: sys.stdout is rich's now
        if not self.is_enabled:
            return
        redirected = {id(sys.__stdout__): sys.stdout, id(sys.__stderr__): sys.stderr}
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and id(handler.stream) in redirected:
                self._moved.append((handler, handler.setStream(redirected[id(handler.stream)])))

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)
        while self._moved:
            handler, stream = self._moved.pop()
            handler.setStream(stream)


class SamplePictures(Callback):
    """After each validation, writes ``samples/epoch<E>-g<step>.png`` in ``output_dir``, the
    picture the data's kind of sample draws (:mod:`gan_je.data.kinds`): of the fixed preview
    latents' samples (a grid of images, say), or, for a kind that compares (2-D points), of
    ``n_points`` generated samples beside as many real validation ones, and beside it the
    files of the kind's ``companion_formats`` (a token sequence's decoded ``.txt``). The kind
    also sends it to the loggers (an image for W&B and TensorBoard, a token sequence's text
    too). Kinds without a picture get none."""

    def __init__(self, output_dir: str, every_n_epochs: int = 1, n_points: int = 2000) -> None:
        self.folder = Path(output_dir) / "samples"
        self.every_n_epochs = positive_int("every_n_epochs", every_n_epochs)
        self.n_points = positive_int("n_points", n_points)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not _active(trainer) or trainer.current_epoch % self.every_n_epochs:
            return
        kind = kind_of(pl_module.hparams.data_spec)
        if not kind.has_picture:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"epoch{trainer.current_epoch:03d}-g{pl_module.g_step:06d}.png"
        real = None
        if kind.pictures_preview:
            fake = pl_module.preview().float().cpu()
        else:
            seed = seeding.stream_seed(pl_module.seed, "pictures")
            fake = pl_module.sample(self.n_points, seed=seed).float().cpu()
            real = trainer.datamodule.val_tensor()[: self.n_points].float().cpu()
        title = f"generator step {pl_module.g_step}"
        kind.picture(fake, path, title, real=real)
        for file_format in kind.companion_formats:
            kind.write(fake, path.with_suffix(f".{file_format}"), file_format, title, strip=False)
        kind.send(trainer, "samples", path, fake, pl_module.g_step)


class StackedModes(Callback):
    """The stacked-MNIST mode counts (:mod:`gan_je.modes`) of the generator after each
    validation: ``val/modes_covered`` (of 1,000), ``val/mode_kl`` and ``val/high_quality`` of
    ``n_samples`` images drawn from fixed, seeded latents, and ``val/counter_accuracy``, the
    counter's accuracy on the held-out digits.

    The counter's digit classifier is fitted once per trainer call on the data module's
    training digits (``data=stacked_mnist``), cached in ``cache_dir``.
    """

    def __init__(
        self,
        n_samples: int = 26_000,
        epochs: int = 10,
        threshold: float = 0.9,
        cache_dir: str | None = None,
    ) -> None:
        self.n_samples = positive_int("n_samples", n_samples)
        self.counter = StackedModeCounter(epochs=epochs, threshold=threshold, cache_dir=cache_dir)
        self.accuracy: float | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        digits = getattr(trainer.datamodule, "digits", None)
        if not digits:
            raise ConfigError(
                "callbacks.stacked_modes counts the modes of stacked MNIST: use "
                "data=stacked_mnist (or experiment=stacked_mnist), or drop the callback"
            )
        self.counter.fit(*digits["train"])
        self.accuracy = self.counter.accuracy(*digits["val"])

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        seed = seeding.stream_seed(pl_module.seed, "modes")
        counts = self.counter(pl_module.sample(self.n_samples, seed=seed).float().cpu())
        counts["counter_accuracy"] = self.accuracy
        pl_module.log_dict({f"val/{key}": value for key, value in counts.items()})


class ClassScores(Callback):
    """The class scores (:mod:`gan_je.class_scores`) of the generator after each validation:
    ``val/inception_score``, ``val/class_kl`` (nats), ``val/classes_covered`` and
    ``val/frechet_distance`` (from the training split, in the classifier's features) of
    ``n_samples`` samples drawn from fixed, seeded latents; beside them the ceiling
    ``val/inception_score_real`` (and ``class_kl_real``, ``classes_covered_real``: the
    histogram's own bias at this size; ``frechet_distance_real``: the floor, the Fréchet
    distance's own bias at this size) of as many held-out real samples (a seeded subset) and
    ``val/classifier_accuracy`` on every held-out sample, which say how far the classifier
    can be trusted. Where the held-out split is smaller than ``n_samples``, that many of
    each are scored (the class KL and the Fréchet distance are biased by the size: compared
    only at equal sizes). The Fréchet distance needs more samples than ``embedding``.

    The classifier is trained for ``epochs`` once per trainer call on the data module's
    labelled training samples, cached in ``cache_dir``. Any labelled data serves (spoken
    digits, MNIST digits). ``network`` chooses it: ``kind`` is
    :class:`gan_je.features.Classifier`, its network chosen by the data's kind of sample
    (log-mel and convolutions for waveforms, two strided convolutions pooled to 2 x 2 for
    images); ``digit`` is :class:`gan_je.modes.DigitClassifier` (the layout of the
    stacked-MNIST mode counter's network, which keeps the digit's layout, with its own
    ``embedding`` width and cache), for images only.
    """

    NETWORKS: ClassVar[dict[str, type[Classifier]]] = {
        "kind": Classifier,
        "digit": DigitClassifier,
    }

    def __init__(
        self,
        n_samples: int = 1000,
        epochs: int = 20,
        embedding: int = 64,
        seed: int = 0,
        cache_dir: str | None = None,
        network: str = "kind",
    ) -> None:
        self.n_samples = positive_int("n_samples", n_samples)
        self.network = network
        if network not in self.NETWORKS:
            raise ConfigError(
                f"callbacks.class_scores.network must be one of {', '.join(self.NETWORKS)} "
                f"(the classifier of the data's kind, or the digit classifier), got {network!r}"
            )
        classifier = self.NETWORKS[network](
            embedding=positive_int("embedding", embedding),
            epochs=positive_int("epochs", epochs),
            seed=non_negative_int("seed", seed),
            cache_dir=cache_dir,
        )
        self.scorer = ClassScorer(classifier)
        self.n_scored = self.n_samples  # at most the held-out split's size, set in setup
        self.real: dict[str, float] = {}  # the held-out values, measured once in setup

    def check_kind(self, kind: str) -> None:
        """Refuse, as a :class:`~gan_je.errors.ConfigError`, the digit network for samples
        other than images."""
        if self.network == "digit" and kind != "image":
            raise ConfigError(
                f"callbacks.class_scores.network=digit classifies images, but the data's "
                f"samples are of kind {kind!r}; use network=kind"
            )

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        data = trainer.datamodule
        if getattr(data, "train_set", None) is None and hasattr(data, "setup"):
            data.setup("fit")  # trainer.validate: the classifier learns from the training split
        self.check_kind(data.data_spec["kind"])
        self.n_scored = min(self.n_samples, len(data.val_set))
        if self.n_scored < self.n_samples:
            log.warning(
                "class scores of %d generated and as many held-out samples (the held-out "
                "split's size), not n_samples=%d: the scores are compared at equal sizes",
                self.n_scored,
                self.n_samples,
            )
        real, accuracy = fit_class_scorer(self.scorer, data, self.n_scored)
        if not self.scorer.has_distance(self.n_scored):
            log.warning(
                "class scores: no Fréchet distance for %d samples, which (and the training "
                "split) must outnumber the classifier's %d features (embedding)",
                self.n_scored,
                self.scorer.classifier.embedding,
            )
        self.real = {f"{key}_real": value for key, value in real.items()}
        self.real["classifier_accuracy"] = accuracy

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        seed = seeding.stream_seed(pl_module.seed, "modes")
        scores = self.scorer.scores(pl_module.sample(self.n_scored, seed=seed).float().cpu())
        pl_module.log_dict({f"val/{key}": value for key, value in (scores | self.real).items()})


class SequenceMeasures(Callback):
    """The exact measures of token sequences (:mod:`gan_je.sequence_measures`) after each
    validation, logged as ``val/<key>``: NLL-oracle and the oracle's entropy per token where
    the data module has an ``oracle``, NLL-test, the generator's entropy per token, the
    exact JSD and the per-token KL divergences both ways where the generator has
    ``log_prob``, and the n-gram JSDs ``js_<n>`` with their real floor ``js_<n>_real``
    always.

    ``n_samples`` generated sequences (from the validation stream of ``seed``, ``None``: the
    module's seed, so the first are those the metric compares) are measured against as many
    held-out ones (``val_ids``), the floor against as many training ones (``train_ids``),
    both seeded subsets. The generated ones are drawn in chunks and kept as ids (one-hot,
    1,000 sequences over 5,000 tokens take 400 MB).
    """

    def __init__(
        self, n_samples: int = 1000, orders: list[int] | None = None, seed: int | None = None
    ) -> None:
        self.n_samples = positive_int("n_samples", n_samples)
        self.orders = [positive_int("n-gram order", n) for n in (orders or [1, 2, 3, 4])]
        self.seed = None if seed is None else seeding.check_seed(seed)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Refuse, before the first epoch, data that are not token sequences with both
        splits, or splits smaller than ``n_samples``."""
        data = trainer.datamodule
        spec = pl_module.hparams.get("data_spec") or {}
        if spec.get("kind") != "tokens" or not all(
            hasattr(data, f"{split}_ids") for split in ("train", "val")
        ):
            raise ConfigError(
                f"callbacks.sequence_measures measures token sequences: it needs a token data "
                f"module with train_ids and val_ids (data=oracle or data=text), not "
                f"{type(data).__name__}; drop the callback"
            )
        check_enough_sequences(
            data, self.n_samples, "callbacks.sequence_measures.n_samples", ("train", "val")
        )

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Measure on rank 0 alone (every rank would draw the same sequences) and give the
        values to every rank, which logs them, so that monitors see them everywhere."""
        if trainer.sanity_checking:
            return
        values = self.measure(trainer, pl_module) if trainer.is_global_zero else None
        values = trainer.strategy.broadcast(values, src=0)
        pl_module.log_dict({f"val/{key}": value.float() for key, value in values.items()})

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, torch.Tensor]:
        """The measures of ``n_samples`` sequences of ``pl_module``'s generator."""
        seed = pl_module.seed if self.seed is None else self.seed
        generator = pl_module.sampler
        latents = sampling.seeded(seeding.stream_seed(seed, "validation", 0))
        shape = kind_of(pl_module.hparams.data_spec).sample_shape
        fake = sampling.token_ids(generator, self.n_samples, shape, latents)
        was_training = generator.training
        generator.eval()  # log_prob as sampled: eval mode
        try:
            values = measure_against_data(
                fake,
                trainer.datamodule,
                generator,
                self.orders,
                seeding.stream_seed(seed, "subsample"),
            )
        finally:
            generator.train(was_training)
        return values


class CheckpointOnSignal(Callback):
    """When SIGTERM stops training (what SLURM sends before pre-empting, requeueing or
    cancelling a job; Lightning finishes the batch, then raises ``SIGTERMException``), save
    ``<output_dir>/checkpoints/last.ckpt`` at that generator step, so that a resumed run
    continues from there, inside its epoch, as if it had never stopped. A signal during a
    validation lets the validation finish first (its row, checkpoints and callbacks), since
    a run cannot resume inside one.

    SIGUSR1 (SLURM's warning before a time limit, ``--signal=USR1@<seconds>``) stops and
    saves the same way and sets :attr:`time_limit`, after which ``gan_je.train`` requeues the
    job. :meth:`install` takes SIGUSR1 for the whole run (a warning that comes before
    training stops it at its first batch; one after it is noted), and, installed before
    Lightning registers its handlers, keeps Lightning's SLURM auto-requeue off (it saves from
    inside the signal handler, mid-step). :attr:`start_step` is the generator step training
    started from.
    """

    def __init__(self, output_dir: str) -> None:
        self.path = last_checkpoint(output_dir)
        self.time_limit = False
        self.start_step = 0
        self._fitting = False
        self._deferred = False
        self._previous_usr1: Any = None

    def install(self) -> None:
        """Handle SIGUSR1 from now until :meth:`restore` (main thread only)."""
        usr1 = getattr(signal, "SIGUSR1", None)
        if usr1 is not None and threading.current_thread() is threading.main_thread():
            self._previous_usr1 = signal.signal(usr1, self._time_limit_warning)

    def restore(self) -> None:
        """Put back the SIGUSR1 handler :meth:`install` replaced."""
        if self._previous_usr1 is not None:
            signal.signal(signal.SIGUSR1, self._previous_usr1)
            self._previous_usr1 = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.start_step = pl_module.g_step

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning's SIGTERM handler is in place from here on
        self._fitting = True
        if self.time_limit:  # warned before training began: stop after the first batch
            os.kill(os.getpid(), signal.SIGTERM)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._fitting = False

    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        """Hold a signal that came during a validation until the validation has ended
        (Lightning would stop after this batch, and the validation would be lost)."""
        if self._fitting and not trainer.sanity_checking and trainer.received_sigterm:
            trainer._signal_connector.received_sigterm = False  # no public setter
            self._deferred = True

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._deferred:  # Lightning stops right after the validation
            trainer._signal_connector.received_sigterm = True
            self._deferred = False

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self._fitting = False
        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.path)  # every rank calls it; rank 0 writes
            log.warning("SIGTERM at generator step %d: saved %s", pl_module.g_step, self.path)

    def _time_limit_warning(self, signum: int, frame: Any) -> None:
        """SIGUSR1: during training, stop as for SIGTERM (Lightning's handler stops after
        the batch); in any case note that the job is to be requeued."""
        self.time_limit = True
        if self._fitting:
            os.kill(os.getpid(), signal.SIGTERM)


class CheckpointPathsGuard(Callback):
    """A checkpoint is data, its callbacks' state too. Lightning restores a
    ``ModelCheckpoint``'s saved paths and later removes the "previous best" they name, folders
    included; so before it does, the saved state of each checkpoint callback is dropped
    (the callback starts its tracking afresh, and nothing is removed) unless it names only
    checkpoint files inside that callback's own folder
    (:func:`gan_je.checkpoints.confined_callback_state`). Always on in ``gan_je.train``."""

    def on_load_checkpoint(
        self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        states = checkpoint.get("callbacks")
        if not isinstance(states, dict):
            return
        for callback in trainer.checkpoint_callbacks:
            folder = getattr(callback, "dirpath", None)
            keys = {callback.state_key, getattr(callback, "_legacy_state_key", None)}
            for key in keys & states.keys():
                state = states[key]
                if folder is None or not isinstance(state, dict):
                    continue
                if not confined_callback_state(state, folder):
                    del states[key]
                    log.warning(
                        "the checkpoint's state of %s names files outside %s: not restored "
                        "(its best-checkpoint tracking starts afresh; nothing is removed)",
                        type(callback).__name__,
                        folder,
                    )


class RunRecord(Callback):
    """The run's own record in ``output_dir``, written after every validation so a running
    or crashed run can be read:

    - ``metrics.csv``: one row per validation — epoch, generator step, seconds since the
      start, every logged ``val/`` and ``train/`` value;
    - ``summary.json``: ``status`` (running / finished / failed / interrupted, with the error
      message), ``final`` and ``best`` values of every ``val/`` metric (``best`` = the
      validation with the lowest ``val/jsd``, ``best_g_step`` its step), ``g_steps``,
      ``wall_time_s``, the Hydra ``overrides``, the run's ``tags`` and the ``output_dir``;
    - ``curves.png`` at the end: entropies and JSD against generator steps, with error bands.

    The W&B run's summary gets the final and best values too (:func:`send_summary`).
    """

    def __init__(
        self, output_dir: str, overrides: list[str] | None = None, tags: Any = None
    ) -> None:
        self.output_dir = Path(output_dir)
        self.overrides = list(overrides or [])
        self.tags = check_tags(tags)
        self.rows: list[dict[str, float | str]] = []
        self.started = time.monotonic()
        self.status, self.error = "running", None
        self.fitting = False

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the record; a resumed run continues the rows up to the generator step it
        resumes from and drops, saying so, the rows recorded after it (they belong to a
        future the resumed run replaces). Columns the record does not write (a user's) are
        kept. A ``metrics.csv`` that cannot be read stops the run before anything is
        written."""
        self.started = time.monotonic()
        if not trainer.ckpt_path:
            self.rows, self.fitting = [], True
            return
        rows = read_metrics(self.output_dir / "metrics.csv")  # before the record is written
        self.fitting = True
        self.rows = [row for row in rows if row.get("g_step", 0) <= pl_module.g_step]
        if len(self.rows) < len(rows) and trainer.is_global_zero:
            log.warning(
                "resuming at generator step %d: dropped the %d rows of %s recorded after it",
                pl_module.g_step,
                len(rows) - len(self.rows),
                self.output_dir / "metrics.csv",
            )
            write_metrics(self.rows, self.output_dir / "metrics.csv")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not _active(trainer):
            return
        logged = {
            key: _plain(value)
            for key, value in trainer.callback_metrics.items()
            if key.startswith(("val/", "train/"))
        }
        row = {"epoch": trainer.current_epoch, "g_step": pl_module.g_step}
        row["time_s"] = round(time.monotonic() - self.started, 3)
        self.rows.append(row | logged)
        self._write(pl_module.g_step)
        log.info(validation_line(self.rows[-1], getattr(pl_module.metric, "base", math.e)))
        send_summary(trainer, self.summary(pl_module.g_step))

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self.status = "interrupted" if trainer.interrupted else "finished"
        self._write(pl_module.g_step)
        send_summary(trainer, self.summary(pl_module.g_step))
        if self.rows:
            plot_curves(self.rows, self.output_dir / "curves.png")
            send_picture(trainer, "curves", self.output_dir / "curves.png", pl_module.g_step)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        if trainer.is_global_zero:
            self.fail(exception, pl_module.g_step)

    def fail(self, exception: BaseException, g_steps: int = 0) -> None:
        """Record that the run stopped on ``exception``. Before training starts that is only
        a ``summary.json`` for a new run directory: a start-up failure leaves an existing
        run's records (a failed resume, say) as they were. A record that cannot be written
        (a full disk) is warned about, never raised over ``exception``."""
        stopped = isinstance(exception, KeyboardInterrupt | SIGTERMException)
        self.status = "interrupted" if stopped else "failed"
        self.error = f"{type(exception).__name__}: {exception}"
        try:
            if self.fitting:
                self._write(g_steps)
            elif (self.output_dir / "summary.json").exists():
                log.warning(
                    "start-up failed; the records in %s are left as they were", self.output_dir
                )
            else:
                write_atomically(self.output_dir / "summary.json", self._summary_text(g_steps))
        except RecordError as err:  # a full disk: the failure itself is what the user sees
            log.warning("could not record the failure: %s", err)

    def summary(self, g_steps: int) -> dict[str, Any]:
        """The summary as written to ``summary.json``."""
        val_keys = sorted({key for row in self.rows for key in row if key.startswith("val/")})
        final = {key: self.rows[-1].get(key) for key in val_keys} if self.rows else {}
        scored = [row for row in self.rows if math.isfinite(row.get(LOWER_IS_BETTER, math.nan))]
        best_row = min(scored, key=lambda row: row[LOWER_IS_BETTER]) if scored else None
        return {
            "status": self.status,
            "error": self.error,
            "final": final,
            "best": {key: best_row.get(key) for key in val_keys} if best_row else {},
            "best_g_step": best_row["g_step"] if best_row else None,
            "g_steps": g_steps,
            "validations": len(self.rows),
            "wall_time_s": round(time.monotonic() - self.started, 3),
            "overrides": self.overrides,
            "tags": self.tags,
            "output_dir": str(self.output_dir),
        }

    def _write(self, g_steps: int) -> None:
        """Both files, each replaced whole (a crash mid-write leaves the previous one)."""
        write_metrics(self.rows, self.output_dir / "metrics.csv")
        write_atomically(self.output_dir / "summary.json", self._summary_text(g_steps))

    def _summary_text(self, g_steps: int) -> str:
        return json.dumps(self.summary(g_steps), indent=2) + "\n"


def entropy_gap_nats(metrics: dict[str, Any], base: float) -> float:
    """``val/entropy_real - val/entropy_fake`` in nats. The metric logs entropies in its
    logarithm ``base`` (``estimator.base``: e for nats, 2 for bits) and
    log_b(x) = ln(x) / ln(b), so a gap in base b times ln(b) is the gap in nats: the unit of
    every entropy setting of the callbacks (``margin``, ``gain``), whatever the base."""
    base = check_base(base)  # the estimators' own check
    real, fake = _plain(metrics["val/entropy_real"]), _plain(metrics["val/entropy_fake"])
    return (real - fake) * math.log(base)


class ModeCollapseMonitor(Callback):
    """Watches ``val/entropy_fake`` against ``val/entropy_real`` (and ``val/modes_covered``
    where logged) and acts when the generator looks collapsed.

    The first ``warmup`` validations are ignored (an untrained generator's samples are all
    alike). A validation counts as collapsed when the generated entropy is more than ``margin``
    nats below the real one (in nats whatever the metric's ``base``: see
    :func:`entropy_gap_nats`), or when fewer than ``min_modes`` modes are covered while the
    generated entropy is not more than ``margin`` above the real one (a generator spread wider
    than the data that still misses modes is under-trained, not collapsed: more entropy would
    spread it further, which is what a missing-modes trigger alone did in
    ``benchmarks/mode_collapse.py``). After
    ``patience`` collapsed validations in a row it warns in the log, sets
    ``mode_collapse = true`` (and the step) in the W&B run summary and keeps the event in
    :attr:`events`, then takes ``action``: ``"none"``; ``"stop"`` (ends training);
    or ``"boost"`` (raises the entropy weight in use, ``GANModule.entropy_weight()``:
    to ``boost_start`` if it is 0, else times ``boost_factor``, at most ``max_weight``; an
    annealing schedule ends there, so the boosted weight holds until the next boost, and it
    is module state, saved in checkpoints). The
    count restarts after acting.
    """

    ACTIONS = ("none", "stop", "boost")

    def __init__(
        self,
        margin: float = 1.0,
        patience: int = 2,
        action: str = "none",
        min_modes: int | None = None,
        warmup: int = 2,
        boost_start: float = 0.1,
        boost_factor: float = 2.0,
        max_weight: float = 10.0,
    ) -> None:
        self.action = choice("action", action, self.ACTIONS)
        self.patience = positive_int("patience", patience)
        self.margin = non_negative_float("margin", margin)
        boost_start = positive_float("boost_start", boost_start)
        max_weight = positive_float("max_weight", max_weight)
        if positive_float("boost_factor", boost_factor) < 1:
            raise ValueError(f"boost_factor must be at least 1, got {boost_factor!r}")
        self.min_modes, self.warmup, self.seen = min_modes, warmup, 0
        self.boost_start, self.boost_factor, self.max_weight = boost_start, boost_factor, max_weight
        self.streak = 0
        self.events: list[dict[str, Any]] = []

    def collapsed(self, metrics: dict[str, Any], base: float = math.e) -> bool:
        """Whether one validation's metrics, entropies in logarithm ``base``, look collapsed."""
        gap = entropy_gap_nats(metrics, base)
        few_modes = (
            self.min_modes is not None
            and "val/modes_covered" in metrics
            and _plain(metrics["val/modes_covered"]) < self.min_modes
        )
        return gap > self.margin or (few_modes and gap >= -self.margin)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metrics = trainer.callback_metrics
        if trainer.sanity_checking or "val/entropy_fake" not in metrics:
            return
        self.seen += 1
        if self.seen <= self.warmup:
            return
        base = pl_module.metric.base
        self.streak = self.streak + 1 if self.collapsed(metrics, base) else 0
        if self.streak < self.patience:
            return
        self.streak = 0
        event = {"g_step": pl_module.g_step, "action": self.action}
        if self.action == "stop":
            trainer.should_stop = True
        elif self.action == "boost":
            weight = pl_module.entropy_weight()  # negative: the controller pulled it down
            weight = self.boost_start if weight <= 0 else weight * self.boost_factor
            event["entropy_weight"] = min(weight, self.max_weight)
            pl_module.hold_entropy_weight(event["entropy_weight"])
        self.events.append(event)
        modes = metrics.get("val/modes_covered")
        log.warning(
            "mode collapse suspected at generator step %d: val/entropy_fake %.3f nats below "
            "val/entropy_real (margin %.3g nats)%s for %d validations; action: %s",
            pl_module.g_step,
            entropy_gap_nats(metrics, base),
            self.margin,
            "" if modes is None else f", {_plain(modes):.0f} modes covered",
            self.patience,
            event,
        )
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.summary["mode_collapse"] = True
                    logger.experiment.summary["mode_collapse_g_step"] = pl_module.g_step

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak, "seen": self.seen, "events": self.events}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.streak, self.seen = state_dict["streak"], state_dict["seen"]
        self.events = list(state_dict["events"])


class EntropyMatching(Callback):
    """The entropy-matching controller: after each validation it moves the entropy
    regulariser's weight towards the one at which the generated samples' entropy equals the
    real samples', both measured by the metric on the same features (``val/entropy_fake``,
    ``val/entropy_real``)::

        lambda <- clip(lambda + gain * (H_real - H_fake), -max_weight, max_weight)

    with the entropy gap in nats whatever the metric's ``base`` (:func:`entropy_gap_nats`), so
    ``gain`` is the weight change per nat.

    An integral controller acting both ways: the weight grows while the generated entropy is
    too low (collapse) and falls, below zero, while it is too high (an over-dispersed
    generator, which a positive weight would spread further). The weight is module state
    (``GANModule.hold_entropy_weight``: saved in checkpoints, so a resumed run goes on with
    it) and is logged as ``train/entropy_weight``. The first ``warmup`` validations only
    measure (an untrained generator's entropy says nothing yet).
    """

    def __init__(self, gain: float = 0.05, max_weight: float = 1.0, warmup: int = 1) -> None:
        self.gain = positive_float("gain", gain)
        self.max_weight = positive_float("max_weight", max_weight)
        self.warmup = non_negative_int("warmup", warmup)
        self.seen = 0

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if getattr(pl_module, "adversarial", True) is False:
            log.warning(
                "callbacks.entropy_matching does nothing with model.adversarial=false: "
                "maximum-likelihood steps ignore the entropy weight it sets"
            )

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metrics = trainer.callback_metrics
        if trainer.sanity_checking or "val/entropy_fake" not in metrics:
            return
        gap = entropy_gap_nats(metrics, pl_module.metric.base)
        if not math.isfinite(gap):
            return
        self.seen += 1
        if self.seen <= self.warmup:
            return
        weight = pl_module.entropy_weight() + self.gain * gap
        pl_module.hold_entropy_weight(min(max(weight, -self.max_weight), self.max_weight))

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.seen = state_dict["seen"]
