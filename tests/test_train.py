"""The training program end to end: fast_dev_run everywhere, a real short run, resume,
W&B offline, the start-up and divergence errors, the run record."""

from __future__ import annotations

import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import lightning
import pytest
import torch
from hydra.utils import instantiate

from gan_je import losses, run_directory
from gan_je.checkpoints import read_checkpoint
from gan_je.errors import ConfigError, DivergenceError, StoppedBySignalError
from gan_je.metrics_csv import read_metrics
from gan_je.train import build, train

QUIET = ["logger=none", "callbacks=none", "trainer.enable_progress_bar=false"]
QUIET += ["trainer.enable_model_summary=false", "trainer.accelerator=cpu"]
SMALL_RING = ["data.n_train=2048", "data.n_val=500"]
# val/jsd without the quality, copying, classifier-JSD and standard-error metrics
JSD_ONLY = ["estimator.quality=false", "estimator.standard_errors=0"]
JSD_ONLY += ["estimator.copying=false", "estimator.jsd_classifier=false"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "data"),
    [
        ("mlp", "ring"),
        ("mlp", "grid"),
        ("mlp", "digits"),
        ("mlp", "mnist5k"),
        ("dcgan", "digits"),
        ("dcgan", "mnist5k"),
    ],
)
def test_fast_dev_run_for_every_sensible_model_and_data(train_config, model, data):
    cfg = train_config(f"model={model}", f"data={data}", "debug=fdr", *QUIET)
    _check_one_batch_run(cfg, train(cfg))


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["nonsaturating", "minimax", "hinge", "wgan_gp", "lsgan"])
def test_fast_dev_run_for_every_loss(train_config, loss):
    """With the default callbacks (checkpoints, pictures, the collapse monitor) too."""
    quiet = [item for item in QUIET if item != "callbacks=none"] + ["~callbacks.progress"]
    cfg = train_config("experiment=ring", f"loss={loss}", "debug=fdr", *SMALL_RING, *quiet)
    _check_one_batch_run(cfg, train(cfg))
    assert len(list((Path(cfg.paths.output_dir) / "samples").glob("*.png"))) == 1


def _check_one_batch_run(cfg, summary: dict) -> None:
    """What a fast_dev_run leaves: one generator step and one validation, recorded alike in
    summary.json and metrics.csv; every metric key of the design, finite, with
    H(S,L) = log 2 + a weighted mean of H(P_real) and H(P_fake); no checkpoint (fast_dev_run
    saves none, and a signal did not come); the run directory's lock released."""
    run = Path(cfg.paths.output_dir)
    assert json.loads((run / "summary.json").read_text()) == summary
    assert summary["status"] == "finished"
    assert summary["g_steps"] == summary["validations"] == summary["best_g_step"] == 1
    final = summary["final"]
    keys = ["entropy_real", "entropy_fake", "entropy_mixture", "joint_entropy", "jsd"]
    values = [final[f"val/{key}"] for key in [*keys, "jsd_sliced"]]
    assert all(math.isfinite(value) for value in values), final
    real, fake, joint = (
        final[f"val/{key}"] for key in ("entropy_real", "entropy_fake", "joint_entropy")
    )
    assert min(real, fake) - 1e-6 <= joint - math.log(2) <= max(real, fake) + 1e-6
    (row,) = read_metrics(run / "metrics.csv")
    assert row["g_step"] == 1 and row["val/jsd"] == pytest.approx(final["val/jsd"], rel=1e-6)
    assert not (run / "checkpoints").exists()
    assert _lock_is_free(run)


def _lock_is_free(run: Path) -> bool:
    """Whether no process holds the run directory's lock (another process could take it)."""
    with open(run / run_directory.LOCK) as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
    return True


def test_options_that_change_the_step_run(train_config):
    cfg = train_config(
        "data=digits",
        "loss.r1_weight=1.0",
        "model.grad_clip=1.0",
        "model.ema_decay=0.9",
        "model.scheduler_g={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:1}",
        "trainer.precision=bf16-mixed",
        "debug=limit",
        "estimator=gaussian",
        *QUIET,
    )
    summary = train(cfg)
    assert summary["status"] == "finished" and summary["g_steps"] == 10
    assert "val/frechet" in summary["final"]


@pytest.mark.slow
def test_a_short_ring_run_learns(train_config):
    """The JSD between generated and real ring samples falls well below its first value
    (the ring's modes widened to sigma = 0.05 so that 1,000 steps suffice). Only val/jsd is
    computed: the other validation metrics cost two thirds of the validation time and draw
    from their own seeded streams, so the run's JSD curve is the same without them."""
    cfg = train_config(
        "experiment=ring",
        "data.std=0.05",
        "data.n_train=6400",
        "data.n_val=1000",
        "trainer.max_epochs=40",
        *JSD_ONLY,
        *QUIET,
    )
    summary = train(cfg)
    rows = (Path(cfg.paths.output_dir) / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    jsd = [float(row.split(",")[header.index("val/jsd")]) for row in rows[1:]]
    assert len(jsd) == 40
    assert summary["final"]["val/jsd"] < 0.6 * jsd[0], jsd


@pytest.mark.slow
def test_the_run_record_and_checkpoints(train_config):
    cfg = train_config("experiment=ring", "debug=limit", "logger=csv", *SMALL_RING)
    summary = train(cfg)
    run = Path(cfg.paths.output_dir)
    written = json.loads((run / "summary.json").read_text())
    assert written["status"] == "finished" and written["g_steps"] == summary["g_steps"] == 10
    assert set(written) >= {"final", "best", "best_g_step", "overrides", "wall_time_s"}
    keys = {"entropy_real", "entropy_fake", "entropy_mixture", "joint_entropy", "jsd"}
    assert {f"val/{key}" for key in keys | {"jsd_sliced"}} <= set(written["final"])
    assert written["best"]["val/jsd"] <= written["final"]["val/jsd"]
    assert "experiment=ring" in written["overrides"]
    assert len((run / "metrics.csv").read_text().splitlines()) == 3  # header + 2 validations
    assert (run / "curves.png").stat().st_size > 0
    assert len(list((run / "samples").glob("*.png"))) == 2
    last = read_checkpoint(run / "checkpoints" / "last.ckpt")
    (best_path,) = (run / "checkpoints").glob("best-*.ckpt")
    best = read_checkpoint(best_path)
    assert last["g_step"] == 10 and best_path.name == f"best-g{best['g_step']:06d}.ckpt"
    assert best["g_step"] == written["best_g_step"]
    for checkpoint in (last, best):  # Lightning counts every optimiser step: n_critic D, one G
        assert checkpoint["global_step"] == checkpoint["g_step"] * (cfg.loss.n_critic + 1)


@pytest.mark.slow
def test_resume_continues_the_generator_step(train_config):
    cfg = train_config("experiment=ring", "debug=limit", *SMALL_RING, "logger=none")
    assert train(cfg)["g_steps"] == 10
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["g_step"] == 10 and checkpoint["global_step"] == 20  # G and D steps
    assert checkpoint["hyper_parameters"]["run_config"]["data"]["_target_"] == "gan_je.data.Ring"

    resumed = train_config(
        "experiment=ring",
        "debug=limit",
        *SMALL_RING,
        "logger=none",
        "resume=true",
        "trainer.max_epochs=3",
    )
    summary = train(resumed)
    assert summary["g_steps"] == 15
    assert summary["validations"] == 3  # the record continues the interrupted run's rows


RECORDED = ["logger=none", "~callbacks.progress", "trainer.enable_progress_bar=false"]
RECORDED += ["trainer.enable_model_summary=false", "trainer.accelerator=cpu"]


def _state(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_a_resumed_run_equals_the_uninterrupted_one(train_config):
    """2 epochs, then resume=true to 3, ends bit for bit where 3 epochs in one go end: the
    shuffle order depends on (seed, epoch) and every random stream is restored."""
    ring = ["experiment=ring", *SMALL_RING, *RECORDED, "trainer.limit_train_batches=6"]
    full = train_config(*ring, "trainer.max_epochs=3", "model.ema_decay=0.9", run="full")
    train(full)
    cut = train_config(*ring, "trainer.max_epochs=2", "model.ema_decay=0.9", run="cut")
    train(cut)
    resumed = train_config(
        *ring, "trainer.max_epochs=3", "model.ema_decay=0.9", "resume=true", run="cut"
    )
    assert train(resumed)["validations"] == 3
    expected, got = _state(Path(full.paths.output_dir)), _state(Path(cut.paths.output_dir))
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    rows = [read_metrics(Path(c.paths.output_dir) / "metrics.csv") for c in (full, cut)]
    assert [row["val/jsd"] for row in rows[0]] == [row["val/jsd"] for row in rows[1]]


class SignalAtStep(lightning.Callback):
    """Sends this process ``signum`` after generator step ``g_step``, as SLURM would."""

    def __init__(self, g_step: int, signum: int = signal.SIGTERM) -> None:
        self.g_step, self.signum = g_step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.g_step == self.g_step:
            os.kill(os.getpid(), self.signum)


class TimeLimitWarningAtSetup(lightning.Callback):
    """Sends this process SIGUSR1 while the trainer sets up, before training begins."""

    def setup(self, trainer, pl_module, stage):
        os.kill(os.getpid(), signal.SIGUSR1)


@pytest.mark.slow
def test_a_time_limit_warning_before_training_stops_it_after_its_first_batch(tmp_path):
    """SIGUSR1 before fit would end an unprepared process (its default action); the run
    notes it and stops, with its checkpoint, after the first generator step."""
    command = [sys.executable, "-m", "gan_je.train", "experiment=ring", *QUIET]
    command += ["data.n_train=2048", "data.n_val=300", f"hydra.run.dir={tmp_path / 'run'}"]
    command += ["+callbacks.warn={_target_:tests.test_train.TimeLimitWarningAtSetup}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "stopped by SIGTERM at generator step 1; continue from its checkpoint with "
            f"python -m gan_je.train resume=true hydra.run.dir={tmp_path / 'run'}"
        )
    )
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt")["g_step"] == 1


@pytest.mark.parametrize(
    ("g_step", "rows_before"),
    [
        pytest.param(9, 1, id="mid-epoch", marks=pytest.mark.slow),
        pytest.param(6, 1, id="epoch-end-in-validation", marks=pytest.mark.slow),
        pytest.param(15, 2, id="mid-last-epoch", marks=pytest.mark.slow),
    ],
)
def test_a_run_stopped_by_a_signal_and_resumed_equals_the_uninterrupted_one(
    train_config, g_step, rows_before
):
    """SIGTERM after generator step 9 (the 3rd of epoch 1's 6 batches), 6 (epoch 0's last
    batch: the signal comes during its validation, which finishes first) or 15 (inside the
    last epoch) saves last.ckpt there; resume=true continues at the next batch and ends bit
    for bit where the uninterrupted run ends, with one row per validation."""
    ring = ["experiment=ring", *SMALL_RING, *RECORDED, "trainer.limit_train_batches=6"]
    ring += ["trainer.max_epochs=3", "model.ema_decay=0.9"]
    ring += ["imports=[tests.test_train]"]  # SignalAtStep's package: a resume runs its code
    full = train_config(*ring, run="full")
    train(full)
    signal_at = f"+callbacks.signal={{_target_:tests.test_train.SignalAtStep,g_step:{g_step}}}"
    with pytest.raises(StoppedBySignalError, match=f"generator step {g_step}"):
        train(train_config(*ring, signal_at, run="cut"))
    cut = train_config(*ring, "resume=true", run="cut")
    assert len(read_metrics(Path(cut.paths.output_dir) / "metrics.csv")) == rows_before
    assert train(cut)["validations"] == 3
    expected, got = _state(Path(full.paths.output_dir)), _state(Path(cut.paths.output_dir))
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    rows = [read_metrics(Path(c.paths.output_dir) / "metrics.csv") for c in (full, cut)]
    assert [(r["g_step"], r["val/jsd"]) for r in rows[0]] == [
        (r["g_step"], r["val/jsd"]) for r in rows[1]
    ]


def _latent_state_at_the_first_step(train_config, *overrides: str) -> torch.Tensor:
    states = []

    class Spy(lightning.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if not states:
                states.append(torch.get_rng_state())

    cfg = train_config("data=digits", "model=mlp", "debug=fdr", *QUIET, *overrides)
    lightning.seed_everything(cfg.seed)  # as train() does
    datamodule, module = build(cfg)
    trainer = instantiate(cfg.trainer, callbacks=[Spy()], logger=False)
    trainer.fit(module, datamodule=datamodule)
    return states[0]


@pytest.mark.slow
def test_seeds_give_their_own_latent_streams_even_with_classifier_features(train_config):
    streams = [
        _latent_state_at_the_first_step(train_config, "features=classifier", f"seed={seed}")
        for seed in (0, 0, 1)
    ]
    assert torch.equal(streams[0], streams[1])  # the second fit read the classifier cache
    assert not torch.equal(streams[0], streams[2])
    plain = _latent_state_at_the_first_step(train_config, "features=pca", "seed=0")
    assert torch.equal(plain, streams[0])  # fitting the classifier drew nothing


@pytest.mark.slow
@pytest.mark.parametrize("pack", [2, 4])
def test_dcgan_trains_with_packed_discriminator_inputs(train_config, pack):
    cfg = train_config("model=dcgan", "data=digits", f"model.pack={pack}", "debug=fdr", *QUIET)
    _check_one_batch_run(cfg, train(cfg))


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["estimator.k=0", "model.generator.hidden=128"])
def test_a_failed_resume_leaves_the_runs_records_alone(train_config, bad):
    ring = ["experiment=ring", *SMALL_RING, *RECORDED, "debug=limit"]
    cfg = train_config(*ring)
    train(cfg)
    run = Path(cfg.paths.output_dir)
    before = {name: (run / name).read_bytes() for name in ("metrics.csv", "summary.json")}
    with pytest.raises(ConfigError, match=rf"resume: {bad} differs from the run's recorded"):
        train(train_config(*ring, "resume=true", "trainer.max_epochs=3", bad))
    assert {name: (run / name).read_bytes() for name in before} == before


@pytest.mark.slow
def test_a_resume_says_what_changed_applies_new_learning_rates_and_refuses_nothing_to_do(
    train_config, caplog
):
    ring = ["experiment=ring", *SMALL_RING, *RECORDED, "debug=limit"]
    cfg = train_config(*ring)
    train(cfg)  # 2 epochs
    with pytest.raises(ConfigError, match=r"has trained 2 epochs and trainer\.max_epochs=2"):
        train(train_config(*ring, "resume=true"))
    start = f"ckpt_path={Path(cfg.paths.output_dir) / 'checkpoints' / 'last.ckpt'}"
    new = ("trainer.max_epochs=3", "model.optimizer_g.lr=0.005")  # a new run from it changes it
    new_run = train_config(*ring, start, *new, run="new")
    with caplog.at_level("WARNING"):
        train(new_run)
    assert "differ from the checkpoint's: model.optimizer_g" in caplog.text
    last = Path(new_run.paths.output_dir) / "checkpoints" / "last.ckpt"
    last = torch.load(last, weights_only=True)
    lrs = [state["param_groups"][0]["lr"] for state in last["optimizer_states"]]
    assert lrs == [0.005, 0.001]  # the new generator rate, the unchanged discriminator's


@pytest.mark.slow
def test_resuming_from_an_earlier_checkpoint_drops_the_later_rows(train_config, caplog):
    ring = ["experiment=ring", *SMALL_RING, *RECORDED, "debug=limit"]
    cfg = train_config(*ring)
    train(cfg)  # 2 epochs, generator steps 5 and 10
    run = Path(cfg.paths.output_dir)
    early = run / "early.ckpt"
    early.write_bytes((run / "checkpoints" / "last.ckpt").read_bytes())
    train(train_config(*ring, "resume=true", "trainer.max_epochs=3"))  # step 15
    assert [row["g_step"] for row in read_metrics(run / "metrics.csv")] == [5, 10, 15]
    with caplog.at_level("WARNING"):
        summary = train(train_config(*ring, f"ckpt_path={early}", "trainer.max_epochs=4"))
    assert "dropped the 1 rows" in caplog.text
    assert [row["g_step"] for row in read_metrics(run / "metrics.csv")] == [5, 10, 15, 20]
    assert summary["validations"] == 4 and summary["g_steps"] == 20


@pytest.mark.slow
def test_secret_values_are_written_nowhere_but_hydras_own_folder(tmp_path):
    """A one-job sweep, so that the sweep's own multirun.yaml is checked too, with secrets
    under secret keys and inside a dict given on the command line."""
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "gan_je.train", "-m", "experiment=ring", "debug=limit"]
    command += ["data.n_train=2048", "data.n_val=300", "~callbacks.progress"]
    command += ["+secret_password=hunter2", "+database.api_token=hunter3"]
    command += ["+db={host: h, password: hunter4}"]
    env = os.environ | {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "1"}
    result = subprocess.run(
        [*command, f"hydra.sweep.dir={sweep}"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    written = [p for p in sweep.rglob("*") if p.is_file() and ".hydra" not in p.parts]
    assert any(p.suffix == ".wandb" for p in written) and any(p.suffix == ".ckpt" for p in written)
    assert (sweep / "multirun.yaml") in written
    for path in written:
        data = path.read_bytes()
        assert not any(secret in data for secret in (b"hunter2", b"hunter3", b"hunter4")), path
    summary = json.loads((sweep / "0" / "summary.json").read_text())
    assert "+secret_password=***" in summary["overrides"]
    assert "+db={host:h,password:***}" in summary["overrides"]  # as Hydra writes a sweep's
    assert b"hunter4" in (sweep / "0" / ".hydra" / "overrides.yaml").read_bytes()
    # the same sweep again: its job finds its directory holding a run, says so, touches nothing
    job = {p: p.read_bytes() for p in (sweep / "0").rglob("*") if p.is_file()}
    again = subprocess.run(
        [*command, f"hydra.sweep.dir={sweep}"], capture_output=True, text=True, env=env, timeout=300
    )
    assert "gan_je.train: job not run: " in again.stderr and "already holds a run" in again.stderr
    assert {p: p.read_bytes() for p in (sweep / "0").rglob("*") if p.is_file()} == job
    assert b"hunter" not in (sweep / "multirun.yaml").read_bytes()


@pytest.mark.slow
def test_your_own_registered_parts_train_through_imports(train_config, tmp_path, monkeypatch):
    package = tmp_path / "my_gans"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from gan_je.models import MLPGenerator\n"
        "from gan_je.parts import register\n\n\n"
        "@register\n"
        "class WideGenerator(MLPGenerator):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = ["model.generator._target_=my_gans.WideGenerator", "debug=fdr", *QUIET]
    with pytest.raises(ConfigError, match="not a registered gan_je part"):
        train(train_config("experiment=ring", *SMALL_RING, *mine))
    cfg = train_config("experiment=ring", *SMALL_RING, *mine, "imports=[my_gans]")
    assert train(cfg)["status"] == "finished"


def test_a_run_directory_held_by_a_running_process_is_refused(train_config, lock_holder):
    cfg = train_config("experiment=ring", *SMALL_RING, *QUIET, "debug=fdr")
    run = Path(cfg.paths.output_dir)
    run.mkdir(parents=True)
    holder = lock_holder(run)
    before = (run / run_directory.LOCK).read_bytes()
    with pytest.raises(
        ConfigError, match=f"in use by a running gan_je.train .process {holder.pid}"
    ):
        train(cfg)
    assert sorted(p.name for p in run.iterdir()) == [run_directory.LOCK]  # nothing written
    assert (run / run_directory.LOCK).read_bytes() == before
    holder.kill()
    holder.wait()
    assert train(cfg)["status"] == "finished"  # the kernel released the ended process's lock
    assert _lock_is_free(run)


def test_a_lock_file_naming_a_live_unrelated_process_does_not_block_a_run(train_config):
    """A stale lock file whose process id now belongs to another live process (PID reuse):
    only a held lock counts."""
    cfg = train_config("experiment=ring", *SMALL_RING, *QUIET, "debug=fdr")
    run = Path(cfg.paths.output_dir)
    run.mkdir(parents=True)
    (run / run_directory.LOCK).write_text(f"{os.getppid()} elsewhere 2026-01-01 00:00:00\n")
    assert train(cfg)["status"] == "finished"


def test_two_runs_started_together_in_one_directory_one_is_refused(tmp_path, monkeypatch):
    """Both take the lock while record writes are slow (an NFS-like file system): exactly
    one holds it, the other is refused."""
    slow_write = run_directory.write_atomically

    def slowly(*args, **kwargs):
        time.sleep(0.3)
        slow_write(*args, **kwargs)

    monkeypatch.setattr(run_directory, "write_atomically", slowly)
    outcomes: list[str] = []

    def start() -> None:
        try:
            lock = run_directory.hold_run_directory(tmp_path)
            outcomes.append("held")
            time.sleep(1.0)
            run_directory.release_run_directory(lock)
        except ConfigError as err:
            outcomes.append(str(err))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join()
    assert outcomes[0] == "held" and "in use by a running gan_je.train" in outcomes[1], outcomes


def test_resume_auto_starts_afresh_without_a_checkpoint(train_config):
    cfg = train_config("experiment=ring", *SMALL_RING, *QUIET, "debug=fdr", "resume=auto")
    assert train(cfg)["status"] == "finished"


def test_resume_without_a_checkpoint_says_what_to_do(train_config):
    with pytest.raises(ConfigError, match=r"hydra\.run\.dir"):
        train(train_config("experiment=ring", "resume=true", *QUIET))


@pytest.mark.slow
def test_wandb_offline_run_is_written(train_config):
    cfg = train_config("experiment=ring", "debug=limit", *SMALL_RING, "callbacks=none")
    train(cfg)
    runs = list((Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0


def test_incompatible_choices_fail_before_training(train_config):
    with pytest.raises(ConfigError, match=r"model=.*use model=mlp"):
        train(train_config("model=dcgan", "data=ring", *QUIET))
    with pytest.raises(ConfigError, match="norm=layer"):
        train(train_config("model=dcgan", "loss=wgan_gp", "data=mnist5k", *QUIET))
    assert not (Path(train_config().paths.output_dir) / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        (["model=dcgan", "data=ring"], "model=dcgan cannot be used with data=ring: "),
        (["data=mnist", "paths.data_dir={tmp}/none"], "mnist not found (looked for "),
        (["data=folder", "data.path={tmp}/none"], "image folder {tmp}/none does not exist"),
        (["ckpt_path={tmp}/none.ckpt"], "ckpt_path={tmp}/none.ckpt does not exist"),
        (["ckpt_path={tmp}/empty.ckpt"], "{tmp}/empty.ckpt is not a readable PyTorch checkpoint"),
    ],
)
def test_the_command_line_reports_a_start_up_failure_in_one_sentence(tmp_path, overrides, sentence):
    overrides = [item.format(tmp=tmp_path) for item in overrides]
    (tmp_path / "empty.ckpt").touch()
    command = [sys.executable, "-m", "gan_je.train", *overrides, "logger=none"]
    result = subprocess.run(
        [*command, f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"gan_je.train: {sentence.format(tmp=tmp_path)}"), result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed"


def test_a_nan_loss_stops_with_the_step_and_keeps_the_good_checkpoint(train_config, monkeypatch):
    original = losses.NonSaturating.generator_loss
    calls = {"n": 0}

    def nan_after_one_epoch(self, fake_logits):
        calls["n"] += 1
        value = original(self, fake_logits)
        return value * float("nan") if calls["n"] > 5 else value

    monkeypatch.setattr(losses.NonSaturating, "generator_loss", nan_after_one_epoch)
    cfg = train_config("experiment=ring", "debug=limit", *SMALL_RING, "logger=none")
    with pytest.raises(DivergenceError, match="generator loss is nan at generator step 5"):
        train(cfg)
    run = Path(cfg.paths.output_dir)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "generator step 5" in summary["error"]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["g_step"] == 5


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            "model.optimizer_d.lr=0",
            r"optimizer_d\.lr \(learning rate\) must be a finite number > 0",
        ),
        ("data.n_val=3", "needs at least 4 validation samples but validation sees 3"),
        ("estimator.n_fake=3", r"estimator: n_fake must be None or at least 4, got 3"),
        ("model.max_loss=-1", r"model\.max_loss must be a finite number > 0"),
    ],
)
def test_settings_that_cannot_work_fail_before_training(train_config, bad, message):
    with pytest.raises(ConfigError, match=message):
        train(train_config("experiment=ring", *SMALL_RING, *QUIET, bad))


def test_an_exploding_loss_stops_the_run_as_diverged(train_config):
    cfg = train_config("experiment=ring", *SMALL_RING, *QUIET, "model.max_loss=1e-3")
    with pytest.raises(
        DivergenceError,
        match=r"discriminator loss is 1\.\d+ at generator step 0 \(epoch 0; limit 0\.001\)",
    ):
        train(cfg)


@pytest.mark.slow
def test_top_level_settings_nothing_reads_are_named(train_config, caplog):
    with caplog.at_level("WARNING"):
        train(train_config("experiment=ring", *SMALL_RING, *QUIET, "debug=fdr", "+lr=0.1"))
    assert "gan_je reads no top-level setting lr" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        train(train_config("experiment=ring", *SMALL_RING, *QUIET, "debug=fdr", run="run2"))
    assert "reads no top-level setting" not in caplog.text


def test_a_failure_before_training_is_recorded(train_config):
    cfg = train_config("experiment=ring", *QUIET, "+callbacks.broken._target_=gan_je.NoSuchThing")
    with pytest.raises(Exception, match="NoSuchThing"):
        train(cfg)
    summary = json.loads((Path(cfg.paths.output_dir) / "summary.json").read_text())
    assert summary["status"] == "failed" and "NoSuchThing" in summary["error"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1], ids=["TERM", "USR1"])
def test_sigterm_saves_a_checkpoint_at_the_step_and_exits_non_zero(tmp_path, signum):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "gan_je.train", "experiment=ring", "logger=none"]
    command += ["data.n_train=5120", "data.n_val=300", "~callbacks.progress"]  # 20 steps an epoch
    # no epoch-end checkpoints: the only checkpoint is the one saved at the signal
    command += ["~callbacks.last_checkpoint", "~callbacks.best_checkpoint"]
    command += ["trainer.max_epochs=100", f"hydra.run.dir={run}"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(read_metrics(run / "metrics.csv")) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)  # the first epoch's record, then a signal in the second epoch
    time.sleep(1.0)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("gan_je.train: stopped by SIGTERM at generator step"), stderr
    summary = json.loads((run / "summary.json").read_text())
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    step, epochs = saved["g_step"], saved["epoch"] + 2  # resume for one more epoch
    assert summary["status"] == "interrupted" and step == summary["g_steps"] >= 20
    assert f"generator step {step}" in last
    resumed = subprocess.run(
        [*command[:-2], f"trainer.max_epochs={epochs}", f"hydra.run.dir={run}", "resume=auto"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["g_steps"] > step
    assert read_metrics(run / "metrics.csv")[0]["g_step"] == 20  # the first epoch kept


@pytest.mark.slow
def test_a_full_disk_keeps_every_earlier_checkpoint_and_record_whole(tmp_path):
    disk = tmp_path / "disk"  # 9 MiB: one epoch's two 3.4 MB checkpoints fit, a third not
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=9m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr!r}")
    try:
        run = disk / "run"
        command = [sys.executable, "-m", "gan_je.train", "experiment=ring", "debug=limit"]
        command += ["trainer.max_epochs=3", "logger=none", "~callbacks.progress"]
        result = subprocess.run(
            [*command, f"hydra.run.dir={run}"], capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 1
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("gan_je.train: cannot write the checkpoint"), result.stderr
        checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
        assert checkpoints == ["best-g000005.ckpt", "last.ckpt"]  # no temporary left
        for name in checkpoints:
            assert torch.load(run / "checkpoints" / name, weights_only=True)["g_step"] == 5
        assert [row["g_step"] for row in read_metrics(run / "metrics.csv")] == [5, 10]
        assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
def test_kill_9_then_resume_equals_the_uninterrupted_run(tmp_path):
    command = [sys.executable, "-m", "gan_je.train", "experiment=ring", "logger=none"]
    command += ["data.n_train=5120", "data.n_val=300", "~callbacks.progress"]  # 20 steps an epoch
    command += ["trainer.max_epochs=6"]
    env = os.environ | {"WANDB_MODE": "offline"}
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run([*command, f"hydra.run.dir={full}"], env=env, check=True, timeout=300)
    process = subprocess.Popen([*command, f"hydra.run.dir={killed}"], env=env)
    deadline = time.monotonic() + 120
    while len(read_metrics(killed / "metrics.csv")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()  # SIGKILL: no handler runs, files are left as they are
    process.wait()
    assert len(read_metrics(killed / "metrics.csv")) < 6  # it was stopped early
    resume = [*command, f"hydra.run.dir={killed}", "resume=true"]
    subprocess.run(resume, env=env, check=True, timeout=300)
    expected, got = _state(full), _state(killed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    rows = [read_metrics(run / "metrics.csv") for run in (full, killed)]
    assert [row["g_step"] for row in rows[1]] == [20 * epoch for epoch in range(1, 7)]
    assert [row["val/jsd"] for row in rows[1]] == [row["val/jsd"] for row in rows[0]]


@pytest.mark.slow
def test_a_resume_names_settings_the_checkpoint_predates_unless_they_keep_their_default(
    train_config, caplog
):
    ring = ["experiment=ring", *SMALL_RING, *RECORDED, "debug=limit"]
    cfg = train_config(*ring)
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    del checkpoint["hyper_parameters"]["entropy_space"]  # as written before it existed
    torch.save(checkpoint, last)
    more = ("resume=true", "trainer.max_epochs=3")
    with caplog.at_level("WARNING"):
        train(train_config(*ring, *more))
    assert "differ from the checkpoint's" not in caplog.text  # the default: nothing changed
    torch.save(checkpoint, last)
    new = (f"ckpt_path={last}", "trainer.max_epochs=3", "model.entropy_space=discriminator")
    with caplog.at_level("WARNING"):  # a new run from the checkpoint, in another directory
        train(train_config(*ring, *new, run="new"))
    assert "differ from the checkpoint's: model.entropy_space" in caplog.text
