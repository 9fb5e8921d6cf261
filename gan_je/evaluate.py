"""``python -m gan_je.evaluate ckpt_path=<file>``: every metric of a trained generator.

The run is rebuilt from the checkpoint's config (:mod:`gan_je.checkpoints`), so the samples
are compared in the run's own feature space with the run's own estimator settings: the
entropies and JSD with their standard errors, precision/recall, density/coverage, the
Fréchet distance, data copying (generated and held-out samples against training samples of
the same number), mode coverage for the 2-D mixtures, the exact measures of token sequences
(:mod:`gan_je.sequence_measures`: NLL-oracle, NLL-test, exact entropies and JSD, n-gram JSDs
and their real floor), and the mode counts of stacked MNIST (:mod:`gan_je.modes`; with
``baseline=true`` also those of real training images, the ceiling), and for a run with the
``class_scores`` callback (or any labelled data with ``class_scores_network=kind|digit``) the
class scores (:mod:`gan_je.class_scores`: Inception score, class KL, classes covered, and the
Fréchet distance from the training split in the classifier's features, ``frechet_distance``,
not the metric's ``frechet`` in the run's own features) beside those of as many real
held-out samples (``<key>_real``) and the classifier's held-out accuracy. Each evaluation is one
record beside the checkpoint, ``evaluations/<checkpoint>-<features>-<split>-<digest>.json``,
keyed by its settings: the same settings replace their record, others add one
(:mod:`gan_je.evaluation_records`).

Both sets have the same size by default (``equal_sizes=true``): ``min(n_samples, split
size)`` generated samples against a seeded subset of as many real ones. With unequal sizes
the ``jsd`` estimate is I(S; L) with the source label L no longer uniform: a weighted JSD,
at most the label entropy H(pi) (:func:`jsd_cap`), which total separation reaches, so a
small real set makes a bad generator look good (1,000 generated against 40 real samples
told apart perfectly: 0.1635 nats, at the cap, against log 2 = 0.693 for equal sizes).
``equal_sizes=false`` keeps ``n_samples`` generated samples against the whole split, and the
table and the record then say so and show the cap.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

from gan_je import CONFIG_PATH
from gan_je.checks import check_writable, is_int
from gan_je.commands import build_from_config, import_packages, resolve_device, run_command
from gan_je.errors import ConfigError
from gan_je.evaluation_records import record_name, records_folder, write_record
from gan_je.tables import markdown_table

if TYPE_CHECKING:
    from torch import Tensor

    from gan_je.class_scores import ClassScorer
    from gan_je.modes import StackedModeCounter
    from gan_je.module import GANModule

log = logging.getLogger(__name__)

#: Random halvings behind every standard error ``evaluate`` reports (see
#: :mod:`gan_je.estimators.resampling`).
EVALUATE_HALVINGS = 4


def jsd_cap(n_real: int, n_generated: int, base: float = math.e) -> float:
    """The most I(S; L) can be when ``n_real`` real and ``n_generated`` generated samples are
    pooled: the entropy of the source label, H(pi) = -pi log pi - (1 - pi) log(1 - pi) with
    pi = n_real / (n_real + n_generated), in log base ``base``; log 2 (in that base) for
    equal sizes. Reached when the two sets are told apart perfectly (Ross's k-NN estimate
    then reads psi(N) - sum_l pi_l psi(N_l), above H(pi) by O(1 / N_l): 0.1635 against
    0.1630 for 40 and 1,000 samples).

    Raises ``ValueError`` for counts below 1 or a base that is not a finite number > 0
    other than 1.
    """
    from gan_je.estimators import label_entropy
    from gan_je.estimators._inputs import check_base

    for name, value in (("n_real", n_real), ("n_generated", n_generated)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return label_entropy(n_real, n_generated) / math.log(check_base(base))


def compare(
    module: GANModule,
    real: Tensor | Iterable[Tensor],
    fake: Tensor | Iterable[Tensor],
    train: Tensor | Iterable[Tensor] | None = None,
) -> dict[str, float]:
    """The module's metrics (and mode coverage where it has it) of ``fake`` against
    ``real``, on every sample given; with ``train`` (training samples, ``real`` then being
    held out) also the data-copying statistic where the metric reports it. Each set is a
    tensor ``(n, *sample_shape)`` or batches of one (an iterable of tensors, read once),
    so that sets too large for memory go through in pieces."""
    metric = module.metric.cpu()
    metric.max_samples = None  # every sample the caller chose
    if getattr(metric, "standard_errors", 0):
        # a one-off: more halvings than training's, steadier errors (one halving reads 0
        # whenever the two halves of a share happen to agree)
        metric.standard_errors = EVALUATE_HALVINGS
    metric.reset_all()
    for batch in _batches(real):
        metric.update(batch, real=True)
    for batch in _batches(fake):
        metric.update(batch, real=False)
    if train is not None and metric.wants_training_samples():
        for batch in _batches(train):
            metric.update_training(batch)
    values = metric.compute()
    metric.reset_all()
    return {key: float(value) for key, value in values.items()}


def _batches(samples: Tensor | Iterable[Tensor]) -> Iterable[Tensor]:
    """A tensor as one batch; batches as they are."""
    from torch import Tensor

    return [samples] if isinstance(samples, Tensor) else samples


def mode_counter(
    module: GANModule, datamodule: Any, cache_dir: str | Path
) -> StackedModeCounter | None:
    """For stacked MNIST (a data module with ``digits``), its mode counter with the run's
    settings (``callbacks.stacked_modes``: epochs, threshold), fitted on the training digits
    and cached in ``cache_dir``; ``None`` for other data."""
    digits = getattr(datamodule, "digits", None)
    if not digits:
        return None
    from gan_je.modes import StackedModeCounter

    run_callbacks = (module.hparams.get("run_config") or {}).get("callbacks") or {}
    settings = run_callbacks.get("stacked_modes") or {}
    counter = StackedModeCounter(
        epochs=settings.get("epochs", 10),
        threshold=settings.get("threshold", 0.9),
        cache_dir=str(cache_dir),
    )
    return counter.fit(*digits["train"])


def class_scorer(
    module: GANModule, cache_dir: str | Path, network: str | None = None
) -> ClassScorer | None:
    """For a run with ``callbacks.class_scores``, the callback's class scorer with the run's
    settings (epochs, embedding, seed, network), its classifier cached in ``cache_dir``;
    ``None`` for other runs. A ``network`` (``kind`` or ``digit``) replaces the run's, and
    gives class scores with the callback's defaults to a run without the callback."""
    run_callbacks = (module.hparams.get("run_config") or {}).get("callbacks") or {}
    settings = run_callbacks.get("class_scores")
    if settings is None and network is None:
        return None
    from gan_je.callbacks import ClassScores
    from gan_je.data.kinds import kind_of

    settings = {k: v for k, v in (settings or {}).items() if k not in ("_target_", "cache_dir")}
    if network is not None:
        settings["network"] = network
    callback = ClassScores(**settings, cache_dir=str(cache_dir))
    callback.check_kind(kind_of(module.hparams.data_spec).name)
    return callback.scorer


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate as configured; return the record written (:mod:`gan_je.evaluation_records`)."""
    # torch and Lightning only here, where an evaluation starts, so that --help answers at once
    import torch

    from gan_je.checkpoints import checkpoint_file, load_data
    from gan_je.data.kinds import kind_of
    from gan_je.module import GANModule
    from gan_je.sampling import batches, check_draw_fits, chunk_rows, seeded, set_temperature

    if cfg.split not in ("val", "test", "train"):
        raise ConfigError(
            f"split must be val (= test, the held-out split) or train, got {cfg.split}"
        )
    if not is_int(cfg.n_samples) or cfg.n_samples < 2:
        raise ConfigError(f"n_samples must be a whole number of at least 2, got {cfg.n_samples!r}")
    if not isinstance(cfg.equal_sizes, bool):
        raise ConfigError(f"equal_sizes must be true or false, got {cfg.equal_sizes!r}")
    from gan_je.callbacks import ClassScores

    if cfg.get("class_scores_network") not in (None, *ClassScores.NETWORKS):
        raise ConfigError(
            f"class_scores_network must be null (the run's own) or one of "
            f"{', '.join(ClassScores.NETWORKS)}, got {cfg.class_scores_network!r}"
        )
    if not is_int(cfg.batch_size) or cfg.batch_size < 1:
        raise ConfigError(
            f"batch_size must be a whole number of at least 1, got {cfg.batch_size!r}"
        )
    folder = records_folder(checkpoint_file(cfg.ckpt_path))
    hint = "copy the checkpoint into a folder you can write and evaluate it there"
    check_writable(folder / "<settings>.json", hint)
    start = time.perf_counter()
    import_packages(cfg.get("imports"))
    module = GANModule.load_from_checkpoint(cfg.ckpt_path, resolve_device(cfg.device)).eval()
    set_temperature(module.sampler, cfg.get("temperature"))
    held_out = cfg.split in ("val", "test")  # torchvision's test split is the val set
    features = cfg.get("estimator", {}).get("features")
    copying = held_out and module.metric.wants_training_samples()
    kind = kind_of(module.hparams.data_spec)
    tokens = kind.name == "tokens"  # the real floor: train ids
    scorer = class_scorer(
        module, Path(cfg.paths.log_dir) / ".feature_cache", cfg.get("class_scores_network")
    )
    needs_train = not held_out or cfg.baseline or bool(features) or copying or tokens
    needs_train = needs_train or scorer is not None  # its classifier learns the training labels
    datamodule = load_data(module, "fit" if needs_train else "validate")
    if features:  # compare in another feature space than the run's own
        module.metric.features = build_from_config(features, "features")
        module.metric.features_fit_samples = None  # fitted on every training sample
        module.fit_features(datamodule, again=True)
    split = "val" if held_out else "train"
    n_real = n_generated = len(datamodule.stored(split))  # its size, no sample made
    if cfg.equal_sizes:  # as many of each: min(n_samples, split size), real ones seeded
        n_real = n_generated = min(cfg.n_samples, n_real)
    else:
        n_generated = cfg.n_samples
    if tokens and held_out:  # the real floor: as many training sequences as generated ones
        from gan_je.sequence_measures import check_enough_sequences

        check_enough_sequences(datamodule, n_generated, "n_samples (equal_sizes=false)", ["train"])
    # held whole: the metric's features of both sets (no wider than the samples for the
    # feature maps here), the generated samples for the mode counter, ids for token sequences
    check_draw_fits(
        "n_samples", n_generated, kind.sample_shape[:1] if tokens else kind.sample_shape
    )
    # every set goes to the metric in pieces of sampling.CHUNK_BYTES (at V = 5,000 one
    # sequence takes 400 KB: 10,000 of them 4 GB); generated token sequences are kept as ids
    chunk = min(cfg.batch_size, chunk_rows(kind.sample_shape))
    counter = mode_counter(module, datamodule, Path(cfg.paths.log_dir) / ".feature_cache")
    kept: list[Tensor] = []  # what the exact measures or the mode counter read afterwards

    def generated() -> Iterator[Tensor]:
        latents = seeded(cfg.seed)
        for batch in batches(
            module.sampler, n_generated, latents, cfg.batch_size, "generating", chunk
        ):
            batch = batch.float().cpu()
            if tokens or counter is not None or scorer is not None:
                kept.append(batch.argmax(dim=-1) if tokens else batch)
            yield batch

    base = getattr(module.metric, "base", math.e)  # nats for a metric without a base
    run_estimator = (module.hparams.get("run_config") or {}).get("estimator") or {}
    # the features compared in, as plain values: the config given here, else the run's own
    compared_in = OmegaConf.to_container(features, resolve=True) if features else None
    metrics = compare(
        module,
        datamodule.sample_batches(split, n_real, chunk),
        generated(),
        datamodule.sample_batches("train", n_real, chunk) if copying else None,
    )
    fake = torch.cat(kept) if kept else None  # ids of token sequences, else the samples
    result: dict[str, Any] = {
        "ckpt_path": str(Path(cfg.ckpt_path).resolve()),
        "g_step": module.g_step,
        "split": cfg.split,
        "seed": cfg.seed,
        "baseline": cfg.baseline,
        "temperature": cfg.get("temperature"),
        "class_scores_network": cfg.get("class_scores_network"),
        "n_real": n_real,
        "n_generated": n_generated,
        "equal_sizes": n_real == n_generated,
        "jsd_cap": jsd_cap(n_real, n_generated, base),
        "ema": module.ema is not None,
        "features": compared_in or run_estimator.get("features"),
        "metrics": metrics,
    }
    if tokens:  # the exact measures beside the k-NN ones
        from gan_je.sequence_measures import measure_against_data

        exact = measure_against_data(fake, datamodule, module.sampler, seed=cfg.seed, split=split)
        result["metrics"] |= {key: float(value) for key, value in exact.items()}
    if not result["equal_sizes"]:
        log.warning(
            "%d generated against %d real samples: jsd is a weighted JSD, at most H(pi) = "
            "%.4g, not log 2; equal_sizes=true compares as many of each",
            n_generated,
            n_real,
            result["jsd_cap"],
        )
    if counter is not None:
        result["metrics"] |= counter(fake)
        result["counter_accuracy"] = counter.accuracy(*datamodule.digits["val"])
    if scorer is not None:  # beside the scores of as many real held-out samples: the ceiling
        from gan_je.class_scores import fit_class_scorer

        n_scored = min(n_generated, len(datamodule.val_set))
        real, accuracy = fit_class_scorer(scorer, datamodule, n_scored)
        result["metrics"] |= scorer.scores(fake, n_distance=n_scored)  # at equal sizes
        if n_scored < n_generated and "frechet_distance" in real:
            log.info(
                "frechet_distance of the first %d generated samples, as many as the held-out "
                "ones of frechet_distance_real; the other class scores of all %d",
                n_scored,
                n_generated,
            )
        result["metrics"] |= {f"{key}_real": value for key, value in real.items()}
        result["metrics"]["classifier_accuracy"] = accuracy
    if cfg.baseline:
        n_train = n_real if held_out else None
        train = datamodule.sample_batches("train", n_train, chunk)
        result["baseline_train_vs_split"] = compare(
            module, datamodule.sample_batches(split, n_real, chunk), train
        )
        if counter is not None:  # as many real images as generated ones: the same KL bias
            train_images = datamodule.train_tensor(n_train)[:n_generated]
            result["baseline_train_vs_split"] |= counter(train_images)
    result["seconds"] = round(time.perf_counter() - start, 2)
    write_record(folder, result)
    if cfg.get("logger"):
        logger = build_from_config(cfg.logger, "logger")
        logger.log_metrics({f"eval/{k}": v for k, v in result["metrics"].items()})
        logger.finalize("success")
    return result


#: Under the table whenever it holds standard errors: what they cover.
SE_NOTE = (
    "`_se`: standard error from random halves of the samples, the sampling error only; the "
    "estimators' bias, which grows with dimension and depends on the distribution, is not "
    'in it (docs/estimators.md, "What an error bar covers").'
)


def table(result: dict[str, Any]) -> str:
    """The result as a Markdown table: one row per metric; when the generated and real sets
    differ in size, a ``jsd_cap`` row (H(pi), the most ``jsd`` can be) and a line saying so
    under it; when it holds standard errors, a line saying what they cover."""
    columns = {"generated": result["metrics"]}
    if "baseline_train_vs_split" in result:
        columns["real train (ceiling)"] = result["baseline_train_vs_split"]
    rows = [
        [key, *(values.get(key, float("nan")) for values in columns.values())]
        for key in result["metrics"]
    ]
    notes = []
    if not result["equal_sizes"]:
        rows.append(["jsd_cap", result["jsd_cap"], *[None] * (len(columns) - 1)])
        notes.append(
            f"Sizes differ ({result['n_generated']} generated, {result['n_real']} real): jsd "
            f"is a weighted JSD, at most jsd_cap = H(pi) = {result['jsd_cap']:.4g} (log 2 for "
            f"equal sizes); equal_sizes=true compares as many of each."
        )
    if any(key.endswith("_se") for key in result["metrics"]):
        notes.append(SE_NOTE)
    return "\n\n".join([markdown_table(["metric", *columns], rows), *notes])


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    result = run_command("evaluate", lambda: evaluate(cfg))
    print(
        f"{result['n_generated']} generated vs {result['n_real']} real ({result['split']}), "
        f"generator step {result['g_step']}, {result['seconds']} s\n\n{table(result)}"
    )
    log.info("written: %s", records_folder(cfg.ckpt_path) / record_name(result))


if __name__ == "__main__":
    main()
