"""The second audit's run-directory cases: a run directory belongs to one run, a checkpoint's
callback state is data, records heal and never vanish, secrets stay out of what a sweep
writes, and the start-up failures around the run directory end in one sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from gan_je import resolvers, run_directory
from gan_je.checkpoints import AtomicCheckpointIO, confined_callback_state
from gan_je.errors import ConfigError, RecordError
from gan_je.metrics_csv import read_metrics
from gan_je.redaction import REDACTED, public_overrides, redact_sweep_config
from gan_je.train import train
from tests.conftest import CONF

RING = ["experiment=ring", "data.n_train=2048", "data.n_val=500", "debug=limit"]
RING += ["logger=none", "~callbacks.progress", "trainer.enable_progress_bar=false"]
RING += ["trainer.enable_model_summary=false", "trainer.accelerator=cpu"]


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _command(*overrides: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """``python -m gan_je.train`` with ``overrides``; the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "gan_je.train", *overrides],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"WANDB_MODE": "offline", "WANDB_SILENT": "1"} | (env or {}),
        cwd=cwd,
    )


def _one_sentence(result: subprocess.CompletedProcess, start: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"gan_je.train: {start}"), result.stderr


# ------------------------------------------------------------ checkpoint callback state
def test_callback_state_naming_files_outside_the_checkpoint_folder_is_not_confined(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    folder.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (folder / "link.ckpt").symlink_to(tmp_path / "elsewhere")
    inside = str(folder / "best-g000005.ckpt")
    assert confined_callback_state(
        {"best_model_path": inside, "best_k_models": {inside: 1}}, folder
    )
    assert confined_callback_state({"best_model_path": "", "last_model_path": ""}, folder)
    for outside in (
        f"{folder}/../../victim",  # lexically below the folder, resolved outside
        str(tmp_path / "victim.ckpt"),
        str(folder / "link.ckpt"),  # a symlink out of the folder
        str(folder / "notes.txt"),  # not a checkpoint file
    ):
        assert not confined_callback_state({"best_model_path": outside}, folder), outside
        assert not confined_callback_state({"best_k_models": {outside: 0.1}}, folder), outside
        assert not confined_callback_state({"kth_best_model_path": outside}, folder), outside


def test_the_checkpoint_writer_removes_checkpoint_files_only(tmp_path):
    folder = tmp_path / "old.ckpt"
    folder.mkdir()
    (folder / "keep").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "a.ckpt").write_bytes(b"x")
    io = AtomicCheckpointIO()
    for path in (folder, tmp_path / "notes.txt", tmp_path / "a.ckpt"):
        io.remove_checkpoint(path)
    assert (folder / "keep").exists() and (tmp_path / "notes.txt").exists()
    assert not (tmp_path / "a.ckpt").exists()


@pytest.mark.slow
def test_a_crafted_checkpoint_deletes_nothing_outside_the_run(train_config, tmp_path):
    """A checkpoint whose ModelCheckpoint states name ``<run>/checkpoints/../../victim``, a
    folder, and ``../../victim.ckpt``, a file (Lightning would remove that "previous best",
    recursively, at its next save). The file is what only the callback-state guard saves:
    the checkpoint writer itself would remove a ``.ckpt`` file wherever it lies."""
    cfg = train_config(*RING)
    train(cfg)
    run = Path(cfg.paths.output_dir)
    victim = tmp_path / "victim"
    (victim / "inside").mkdir(parents=True)
    (victim / "inside" / "data.txt").write_text("precious")
    (tmp_path / "victim.ckpt").write_text("precious too")
    folder, file = f"{run}/checkpoints/../../victim", f"{run}/checkpoints/../../victim.ckpt"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    for state in checkpoint["callbacks"].values():
        if "best_model_path" in state:
            state |= {"best_model_path": file, "kth_best_model_path": folder}
            state["best_k_models"] = {folder: torch.tensor(9.0)}
    evil = run / "checkpoints" / "evil.ckpt"
    torch.save(checkpoint, evil)
    summary = train(train_config(*RING, f"ckpt_path={evil}", "trainer.max_epochs=4"))
    assert summary["status"] == "finished" and summary["validations"] == 4
    assert (victim / "inside" / "data.txt").read_text() == "precious"
    assert (tmp_path / "victim.ckpt").read_text() == "precious too"
    best = sorted(p.name for p in (run / "checkpoints").glob("best-*.ckpt"))
    assert len(best) >= 1  # the best checkpoint is tracked afresh


# ------------------------------------------------------------ one run per directory
def _ring_run(train_config, *extra: str) -> Path:
    cfg = train_config(*RING, *extra)
    train(cfg)
    return Path(cfg.paths.output_dir)


@pytest.mark.slow
def test_a_fresh_run_into_a_run_directory_is_refused_and_overwrite_replaces_it(train_config):
    run = _ring_run(train_config)
    (run / "notes.txt").write_text("mine")
    before = _snapshot(run)
    with pytest.raises(ConfigError, match=r"already holds a run \(summary.json, metrics.csv"):
        train(train_config(*RING))
    assert _snapshot(run) == before  # nothing touched, the lock file included
    summary = train(train_config(*RING, "overwrite=true", "trainer.max_epochs=1"))
    assert summary["validations"] == 1
    assert len(read_metrics(run / "metrics.csv")) == 1
    assert (run / "notes.txt").read_text() == "mine"  # not a file gan_je writes


def test_a_fresh_run_into_a_foreign_folder_with_records_is_refused(train_config):
    cfg = train_config(*RING)
    run = Path(cfg.paths.output_dir)
    run.mkdir()
    (run / "summary.json").write_text('{"tool": "another"}\n')
    (run / "train.log").write_text("another tool's log\n")
    before = _snapshot(run)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg)
    assert _snapshot(run) == before


def test_a_start_that_failed_before_training_may_be_started_again(train_config):
    with pytest.raises(ConfigError):
        train(train_config(*RING, "model.optimizer_g.lr=-1"))
    assert train(train_config(*RING, "trainer.max_epochs=1"))["status"] == "finished"


# ------------------------------------------------------------ records that heal
@pytest.mark.slow
def test_a_column_added_to_metrics_csv_is_kept_on_resume(train_config):
    run = _ring_run(train_config)
    path = run / "metrics.csv"
    lines = path.read_text().splitlines()
    lines = [lines[0] + ",note"] + [f"{line},looked fine" for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    summary = train(train_config(*RING, "resume=true", "trainer.max_epochs=3"))
    assert summary["status"] == "finished"
    rows = read_metrics(path)
    assert [row["g_step"] for row in rows] == [5, 10, 15]
    assert [row.get("note") for row in rows] == ["looked fine", "looked fine", None]


@pytest.mark.slow
def test_an_unreadable_metrics_csv_stops_a_resume_and_is_left_whole(train_config):
    run = _ring_run(train_config)
    path = run / "metrics.csv"
    header, first, *rest = path.read_text().splitlines()
    assert header.startswith("epoch,g_step,") and first.startswith("0,5,")
    path.write_text("\n".join([header, "0,five," + first[4:], *rest]) + "\n")
    before = _snapshot(run)
    with pytest.raises(RecordError, match=r"metrics.csv, line 2: g_step is 'five', not a number"):
        train(train_config(*RING, "resume=true", "trainer.max_epochs=3"))
    after = _snapshot(run)
    assert after["metrics.csv"] == before["metrics.csv"]
    assert after["summary.json"] == before["summary.json"]


def test_metrics_csv_keeps_text_columns_and_names_a_broken_cell(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,g_step,val/jsd,note\n0,5,0.5,ok\n1,10,0.4,\n")
    assert read_metrics(path) == [
        {"epoch": 0.0, "g_step": 5.0, "val/jsd": 0.5, "note": "ok"},
        {"epoch": 1.0, "g_step": 10.0, "val/jsd": 0.4},
    ]
    path.write_text("epoch,g_step\n0,5,7\n")
    with pytest.raises(RecordError, match="line 2: more cells than the header"):
        read_metrics(path)
    path.write_bytes(b"epoch,g_step\n\xff\xfe,5\n")
    with pytest.raises(RecordError, match="cannot be read as a metrics table"):
        read_metrics(path)


@pytest.mark.slow
def test_a_summary_left_running_by_a_killed_run_is_corrected_by_the_next_resume(train_config):
    """kill -9 after the last checkpoint but before the run ended: ``running`` stays, and the
    resume that then has nothing to do corrects it."""
    run = _ring_run(train_config)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps(summary | {"status": "running"}))
    with pytest.raises(ConfigError, match="nothing to do"):
        train(train_config(*RING, "resume=true"))
    corrected = json.loads((run / "summary.json").read_text())
    assert corrected["status"] == "killed" and "resume=true" in corrected["error"]
    assert corrected["final"] == summary["final"]


def test_correct_killed_run_leaves_a_live_run_alone(tmp_path, lock_holder):
    holder = lock_holder(tmp_path)  # a run that took the directory over, and runs
    (tmp_path / "summary.json").write_text('{"status": "running", "final": {}}')
    assert not run_directory.correct_killed_run(tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "running"
    holder.kill()
    holder.wait()
    assert run_directory.correct_killed_run(tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "killed"
    assert not run_directory.correct_killed_run(tmp_path)  # once


@pytest.mark.slow
def test_refused_and_failed_starts_touch_neither_hydra_nor_any_record(train_config, lock_holder):
    """Hydra's .hydra/ is written once a start succeeds: a resume that fails at start-up
    leaves every file of the run as it was (train.log and the lock included: a resume's
    setting that differs from the run's is refused before the run directory is locked), and
    a second run refused by a live one touches nothing, not even train.log."""
    cfg = train_config(*RING, "trainer.max_epochs=1")
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert (run / ".hydra" / "overrides.yaml").is_file()
    (run / "train.log").write_text("the first run's log\n")  # as Hydra writes one
    before = _snapshot(run)
    failed = _command(*RING, f"hydra.run.dir={run}", "resume=true", "estimator.k=0")
    _one_sentence(failed, "resume: estimator.k=0 differs from the run's recorded estimator.k=")
    assert _snapshot(run) == before
    lock_holder(run)
    (run / "train.log").unlink()
    before = _snapshot(run)
    refused = _command(*RING, f"hydra.run.dir={run}", "resume=true", "trainer.max_epochs=2")
    _one_sentence(refused, f"{run} is in use by a running gan_je.train")
    assert _snapshot(run) == before and not (run / "train.log").exists()


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 12 MiB tmpfs (root only; skipped elsewhere)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr!r}")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
def test_a_resume_on_a_full_disk_ends_in_one_sentence_and_keeps_the_records(
    train_config, small_disk
):
    run = small_disk / "run"
    train(train_config(*RING, f"paths.output_dir={run}"))
    (small_disk / "filler").write_bytes(b"")
    with open(small_disk / "filler", "wb") as filler:  # fill the disk
        try:
            while True:
                filler.write(b"\0" * 2**16)
                filler.flush()
        except OSError:
            pass
    before = _snapshot(run)
    resume = train_config(*RING, f"paths.output_dir={run}", "resume=true", "trainer.max_epochs=3")
    with pytest.raises(RecordError, match=r"cannot write .* \(No space left on device; 0.0 MiB"):
        train(resume)
    after = _snapshot(run)
    for name in ("metrics.csv", "summary.json", "checkpoints/last.ckpt", ".hydra/config.yaml"):
        assert after[name] == before[name], name


# ------------------------------------------------------------ the run directory's path
def test_run_ids_cannot_leave_the_outputs_folder(monkeypatch):
    for bad in ("../../x", "/tmp/x", "a/../b", "a//b", ".hidden", "a b"):
        monkeypatch.setenv(resolvers.RUN_ID, bad)
        with pytest.raises(ConfigError, match="is not a run id"):
            resolvers.run_id()
    monkeypatch.setenv(resolvers.RUN_ID, "2026-12-06/04-10-00-1234ab")
    assert resolvers.run_id() == "2026-12-06/04-10-00-1234ab"


def test_run_directories_that_cannot_be_written_are_named(tmp_path):
    with pytest.raises(ConfigError, match="more than the 255 this file system allows"):
        run_directory.check_run_directory(tmp_path / ("r" * 300))
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="which is a file"):
        run_directory.check_run_directory(tmp_path / "file" / "run")
    assert run_directory.check_run_directory(tmp_path / "new" / "run") == tmp_path / "new" / "run"


@pytest.fixture
def read_only_folder(tmp_path: Path):
    """A folder this user cannot write: a read-only tmpfs for root (whom permissions do not
    stop), else a folder without write permission."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
            capture_output=True,
        )
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr!r}")
        yield folder
        subprocess.run(["umount", str(folder)], check=False)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


@pytest.mark.slow
def test_an_unwritable_run_directory_ends_the_command_in_one_sentence(tmp_path, read_only_folder):
    """End to end once: Hydra's callback refuses it before Hydra creates anything."""
    result = _command(*RING, f"hydra.run.dir={read_only_folder / 'run'}")
    _one_sentence(result, f"{read_only_folder}, where it would be made, is not writable")


def test_the_hydra_callback_refuses_run_directories_that_cannot_be_written(
    tmp_path, read_only_folder, monkeypatch
):
    """:class:`CheckRunDirectory` as Hydra calls it before a run or a sweep, on the composed
    config: each case one sentence (``SystemExit``), nothing created."""

    def refusal(*overrides: str, mode: str = "run") -> str:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
        callback = run_directory.CheckRunDirectory()
        with pytest.raises(SystemExit) as stopped:
            getattr(callback, f"on_{mode}_start")(config=cfg)
        return str(stopped.value)

    assert refusal(f"hydra.run.dir={read_only_folder}").startswith(
        "gan_je.train: the run directory is not writable for this user"
    )
    assert refusal(f"hydra.sweep.dir={tmp_path / ('r' * 300)}", mode="multirun").startswith(
        "gan_je.train: the run directory's name rrrr"
    )
    monkeypatch.setenv(resolvers.RUN_ID, "../../x")
    assert refusal(f"paths.log_dir={tmp_path}/outputs").startswith(
        "gan_je.train: hydra.run.dir: $GAN_JE_RUN_ID='../../x' is not a run id"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["read_only"]


# ------------------------------------------------------------ secrets
def test_secrets_inside_dict_overrides_are_redacted():
    overrides = [
        "+db={host: h, password: hunter2}",
        "+pool=[{token: 'a,b'}, {size: 2}]",
        "+x=choice({secret: s1},{secret: s2})",
        "data.path=http://host:80/x",
    ]
    assert public_overrides(overrides) == [
        f"+db={{host: h, password: {REDACTED}}}",
        f"+pool=[{{token: {REDACTED}}}, {{size: 2}}]",
        f"+x=choice({{secret: {REDACTED}}},{{secret: {REDACTED}}})",
        "data.path=http://host:80/x",
    ]


def test_a_sweeps_multirun_yaml_is_redacted(tmp_path):
    path = tmp_path / "multirun.yaml"
    config = {
        "hydra": {
            "overrides": {"task": ["seed=0,1", "+db={host: h, password: hunter2}"]},
            "job": {"override_dirname": "+db={host: h, password: hunter2},+token=hunter3,seed=1"},
        },
        "db": {"host": "h", "password": "hunter2"},
        "paths": {"output_dir": "${hydra:runtime.output_dir}"},
    }
    path.write_text(OmegaConf.to_yaml(config))
    assert redact_sweep_config(path)
    text = path.read_text()
    assert "hunter" not in text and "${hydra:runtime.output_dir}" in text
    assert OmegaConf.load(path).hydra.job.override_dirname == (
        f"+db={{host: h, password: {REDACTED}}},+token={REDACTED},seed=1"
    )
    assert OmegaConf.load(path).db.password == REDACTED
    assert not redact_sweep_config(path)  # nothing left to redact
