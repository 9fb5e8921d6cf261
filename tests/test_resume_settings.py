"""A run resumes from its directory alone (issue 30): ``resume=true hydra.run.dir=<run>``
continues with the run's recorded settings, the safe overrides typed now on top, the others
refused in one sentence; a refused resume writes nothing there; the hint printed after a
stop is a command that works."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from gan_je import run_directory
from gan_je.errors import ConfigError
from gan_je.metrics_csv import read_metrics
from gan_je.run_settings import (
    continued_settings,
    given_settings,
    is_safe_on_resume,
    recorded_settings,
    resume_command,
    settings_to_resume,
)
from gan_je.train import train
from tests.test_reliability_runs import RING, _snapshot

REPO = Path(__file__).resolve().parents[1]


def _resumed(train_config, run: Path, *overrides: str):
    """The settings ``python -m gan_je.train <overrides>`` would resume ``run`` with."""
    return settings_to_resume(recorded_settings(run), given_settings(train_config(*overrides)))


@pytest.fixture
def ring_record(train_config) -> Path:
    """A run directory holding the record of a ring run (``experiment=ring``, Adam 1e-3,
    ``logger=none``), as ``gan_je.train`` writes it before training."""
    cfg = train_config("experiment=ring", "logger=none", "trainer.max_epochs=2", "seed=7")
    run = Path(cfg.paths.output_dir)
    run_directory.write_hydra_record(run, cfg)
    return run


# ------------------------------------------------------------ the settings, composed only
def test_a_resume_takes_the_runs_recorded_settings_not_the_default_config(
    train_config, ring_record
):
    settings = _resumed(train_config, ring_record, "resume=true")
    config = settings.config
    assert config.data._target_ == "gan_je.data.Ring"  # not the default mnist5k
    assert (
        config.model.generator._target_ == train_config("experiment=ring").model.generator._target_
    )
    assert config.model.optimizer_g.lr == 1e-3 and config.seed == 7
    assert config.trainer.max_epochs == 2 and not config.logger
    assert config.resume is True  # this start's own
    assert settings.choices["experiment"] == "ring" and settings.choices["data"] == "ring"
    assert settings.overrides[-1] == "resume=true"
    assert "experiment=ring" in settings.overrides and "seed=7" in settings.overrides


def test_safe_overrides_apply_on_resume(train_config, ring_record):
    config = _resumed(
        train_config,
        ring_record,
        "resume=true",
        "trainer.max_epochs=5",
        "data.num_workers=2",
        "logger=csv",
        "trainer.accelerator=cpu",
    ).config
    assert config.trainer.max_epochs == 5 and config.data.num_workers == 2
    assert config.trainer.accelerator == "cpu"
    assert list(config.logger) == ["csv"]
    assert config.data._target_ == "gan_je.data.Ring" and config.seed == 7


def test_a_group_choice_on_resume_is_refused_rather_than_undoing_the_experiment(
    train_config, ring_record
):
    """``trainer=cpu`` composes the trainer node from the defaults: taken on resume, it would
    put back ``max_epochs: 35`` where the ring experiment recorded 40."""
    recorded = _resumed(train_config, ring_record, "resume=true").config.trainer.max_epochs
    assert recorded != train_config("trainer=cpu").trainer.max_epochs  # the trap is there
    with pytest.raises(ConfigError, match=r"resume: trainer=cpu differs .* but logger and paths"):
        _resumed(train_config, ring_record, "resume=true", "trainer=cpu")


def _tamper(run: Path, **nodes) -> None:
    """Set top-level ``nodes`` in ``run``'s recorded ``.hydra/config.yaml``, as someone who
    shares a run directory could."""
    record = run / ".hydra" / "config.yaml"
    config = OmegaConf.load(record)
    for key, value in nodes.items():
        OmegaConf.update(config, key, value, force_add=True)
    record.write_text(OmegaConf.to_yaml(config))


def test_a_recorded_target_the_command_line_does_not_name_is_refused(train_config, ring_record):
    victim = ring_record.parent / "victim"
    victim.mkdir()
    _tamper(ring_record, **{"callbacks.tidy": {"_target_": "shutil.rmtree", "path": str(victim)}})
    with pytest.raises(ConfigError, match=r"recorded settings name _target_ shutil\.rmtree"):
        continued_settings(train_config("resume=true"), ring_record)
    assert victim.is_dir()


def test_recorded_imports_run_only_when_the_command_line_repeats_them(train_config, ring_record):
    _tamper(ring_record, imports=["json"])
    with pytest.raises(ConfigError, match=r"import json; .* add imports=\[json\]"):
        continued_settings(train_config("resume=true"), ring_record)
    config = continued_settings(train_config("resume=true", "imports=[json]"), ring_record).config
    assert list(config.imports) == ["json"]
    assert config.data._target_ == "gan_je.data.Ring"  # gan_je's own targets pass


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.optimizer_g.lr=0.01",
            "resume: model.optimizer_g.lr=0.01 differs from the run's recorded "
            "model.optimizer_g.lr=0.001; a resumed run keeps its settings",
        ),
        ("seed=8", "resume: seed=8 differs from the run's recorded seed=7"),
        ("trainer.precision=16-mixed", "trainer.precision=16-mixed differs from the run's"),
        ("+lr=0.1", r"resume: \+lr=0.1 is not among the run's recorded settings"),
        (
            "experiment=grid",
            "resume: experiment=grid differs from the run's recorded experiment=ring",
        ),
        ("model=dcgan", r"resume: model=dcgan differs from the run's recorded model=mlp \(a"),
        ("trainer=gpu", r"trainer=gpu differs .* every config group but logger and paths"),
        ("~callbacks.best_checkpoint", r"~callbacks\.best_checkpoint (is not among|differs)"),
    ],
)
def test_other_overrides_are_refused_naming_the_key(train_config, ring_record, override, message):
    with pytest.raises(ConfigError, match=message):
        _resumed(train_config, ring_record, "resume=true", override)


def test_overrides_equal_to_the_recorded_ones_pass(train_config, ring_record):
    equal = ("experiment=ring", "model=mlp", "model.optimizer_g.lr=1e-3", "seed=7")
    settings = _resumed(train_config, ring_record, "resume=true", *equal)
    assert settings.config.model.optimizer_g.lr == 1e-3
    assert settings.config.data._target_ == "gan_je.data.Ring"


def test_which_settings_are_safe_on_resume():
    for safe in ("trainer.max_epochs", "logger.wandb.project", "callbacks.progress", "resume"):
        assert is_safe_on_resume(safe), safe
    for unsafe in ("trainer.precision", "model.optimizer_g.lr", "seed", "trainer.max_epochsx"):
        assert not is_safe_on_resume(unsafe), unsafe
    with pytest.raises(ValueError, match="non-empty string"):
        is_safe_on_resume("")


def test_a_directory_without_a_record_has_no_recorded_settings(tmp_path):
    assert recorded_settings(tmp_path) is None
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("[1, 2]\n")
    with pytest.raises(ConfigError, match="holds no settings"):
        recorded_settings(tmp_path)


@pytest.mark.parametrize(
    "name", ["run", "a b", "it's", "x,y=z", "$HOME", "runs~old", "josé", "a\\b", "end\\", "q\\'"]
)
def test_the_resume_command_names_the_directory_for_the_shell_and_hydra(tmp_path, name):
    words = shlex.split(resume_command(tmp_path / name))
    assert words[:4] == ["python", "-m", "gan_je.train", "resume=true"]
    (override,) = OverridesParser.create().parse_overrides(words[4:])
    assert (override.key_or_group, override.value()) == ("hydra.run.dir", str(tmp_path / name))


# ------------------------------------------------------------ real runs
@pytest.mark.slow
def test_a_ring_run_resumes_with_resume_true_alone_and_more_epochs(train_config):
    cfg = train_config(*RING)  # 2 epochs of 5 generator steps
    assert train(cfg)["g_steps"] == 10
    run = Path(cfg.paths.output_dir)
    summary = train(train_config("resume=true", "trainer.max_epochs=3"))
    assert (summary["status"], summary["g_steps"], summary["validations"]) == ("finished", 15, 3)
    assert [row["g_step"] for row in read_metrics(run / "metrics.csv")] == [5, 10, 15]
    last = run / "checkpoints" / "last.ckpt"
    summary = train(train_config(f"ckpt_path={last}", "trainer.max_epochs=4"))
    assert (summary["g_steps"], summary["validations"]) == (20, 4)
    recorded = OmegaConf.load(run / ".hydra" / "config.yaml")
    assert recorded.data._target_ == "gan_je.data.Ring" and recorded.trainer.max_epochs == 4
    choices = OmegaConf.load(run / ".hydra" / "hydra.yaml").hydra.runtime.choices
    assert choices.experiment == "ring"  # a third resume still knows what the run is
    assert "experiment=ring" in summary["overrides"]


def _train_command(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gan_je.train", *overrides],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=os.environ | {"WANDB_MODE": "offline", "WANDB_SILENT": "1"},
    )


@pytest.mark.slow
def test_a_refused_resume_leaves_every_file_of_the_run_byte_for_byte(train_config, tmp_path):
    """A wrong override, a missing checkpoint, a checkpoint of other networks: each ends in
    one sentence, and every file (``summary.json``, ``train.log`` and ``.hydra/`` included)
    stays as it was; only the lock file names the last process that held the directory."""
    run = Path(train_config(*RING).paths.output_dir)
    train(train_config(*RING))
    other = Path(train_config(*RING, "model.generator.hidden=64", run="other").paths.output_dir)
    train(train_config(*RING, "model.generator.hidden=64", run="other"))
    (run / "train.log").write_text("the first run's log\n")  # as Hydra writes one
    last = run / "checkpoints" / "last.ckpt"
    refusals = {
        "resume: model.optimizer_g.lr=0.01 differs": ["model.optimizer_g.lr=0.01"],
        f"{last} holds other networks than this config builds": [],
        f"resume=true found no {last}": [],
    }
    for start, overrides in refusals.items():
        if "other networks" in start:
            shutil.copyfile(other / "checkpoints" / "last.ckpt", last)
        if "found no" in start:
            last.unlink()
        before = _snapshot(run)
        before.pop(run_directory.LOCK)
        result = _train_command("resume=true", f"hydra.run.dir={run}", *overrides)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"gan_je.train: {start}")
        after = _snapshot(run)
        after.pop(run_directory.LOCK)
        assert after == before, start


@pytest.mark.slow
def test_the_hint_printed_after_a_stop_continues_the_run_to_its_end(tmp_path):
    run = tmp_path / "run"
    stop = "+callbacks.stop={_target_:tests.test_train.SignalAtStep,g_step:3}"
    # the stopping callback is the user's code: named through its package, as a resume needs
    first = _train_command(*RING, stop, "imports=[tests.test_train]", f"hydra.run.dir={run}")
    assert first.returncode == 1, first.stderr
    hint = first.stderr.strip().splitlines()[-1].split("continue from its checkpoint with ")[1]
    assert hint == resume_command(run) and hint.endswith(" 'imports=[tests.test_train]'")
    words = shlex.split(hint)
    assert words[:3] == ["python", "-m", "gan_je.train"]
    resumed = _train_command(*words[3:])
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["g_steps"], summary["validations"]) == ("finished", 10, 2)
    assert [row["g_step"] for row in read_metrics(run / "metrics.csv")] == [5, 10]
