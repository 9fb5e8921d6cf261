"""How a sweep's jobs ended: each job's outcome file, the one-line summary at the end of the
sweep, the exit status, and a failing job's sentence on the console with its traceback in
its own log file (:mod:`gan_je.sweep_outcome`)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra.conf import HydraConf
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from gan_je import sweep_outcome
from gan_je.errors import ConfigError, RunDirectoryError, StoppedBySignalError
from gan_je.sweep_outcome import SweepOutcome, exit_status, read_outcomes, run_job, summary_line


@pytest.fixture
def sweep(tmp_path: Path) -> Iterator[Callable[..., None]]:
    """``job(number, train)`` runs ``train`` as job ``number`` of a sweep in ``tmp_path``
    (Hydra's job config set as a launcher sets it), between the start and the end of the
    sweep that :class:`SweepOutcome` sees."""
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    callback = SweepOutcome()
    callback.on_multirun_start(config)

    def job(number: int, train: Callable[[], dict]) -> dict | None:
        hydra = OmegaConf.structured(HydraConf)
        hydra.job.num, hydra.sweep.dir = number, str(tmp_path)
        HydraConfig.instance().set_config(OmegaConf.create({"hydra": hydra}))
        return run_job(train, tmp_path / str(number))

    job.end = lambda: callback.on_multirun_end(config)
    yield job
    HydraConfig.instance().cfg = None
    sweep_outcome._last_sweep = None


def _finishes() -> dict:
    return {"final": {"val/jsd": 0.1}}


def _fails() -> dict:
    raise ValueError("the learning rate must be positive\nsecond line")


def test_a_sweep_whose_jobs_all_fail_exits_1_and_names_their_directories(sweep, tmp_path, capsys):
    assert sweep(0, _fails) is None and sweep(1, _fails) is None
    sweep.end()
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == f"gan_je.train: sweep {tmp_path}: 2 jobs: 2 failed ({tmp_path / '0'}, " + (
        f"{tmp_path / '1'})"
    )
    assert exit_status() == 1


def test_one_failing_job_of_two_exits_1_and_is_named(sweep, tmp_path, capsys):
    assert sweep(0, _finishes) == _finishes()
    sweep(1, _fails)
    sweep.end()
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith(f"2 jobs: 1 finished, 1 failed ({tmp_path / '1'})")
    assert exit_status() == 1


def test_a_sweep_whose_jobs_all_finish_exits_0(sweep, tmp_path, capsys):
    for number in range(3):
        sweep(number, _finishes)
    sweep.end()
    assert capsys.readouterr().out.strip().endswith(f"{tmp_path}: 3 jobs: 3 finished")
    assert exit_status() == 0


def test_without_a_sweep_the_exit_status_is_0():
    sweep_outcome._last_sweep = None
    assert exit_status() == 0


def test_jobs_refused_their_directory_or_stopped_count_as_not_finished(sweep, tmp_path, capsys):
    def refused() -> dict:
        raise RunDirectoryError("another run holds it")

    def stopped() -> dict:
        raise StoppedBySignalError("SIGTERM at generator step 3")

    sweep(0, refused)
    with pytest.raises(SystemExit, match="SIGTERM at generator step 3"):
        sweep(1, stopped)
    sweep(2, _finishes)
    assert "job not run: another run holds it" in capsys.readouterr().err
    sweep.end()
    line = capsys.readouterr().out.strip()
    assert line.endswith(
        f"3 jobs: 1 finished, 1 stopped ({tmp_path / '1'}), 1 not run ({tmp_path / '0'})"
    )
    assert exit_status() == 1


def test_a_sweep_where_no_job_recorded_its_outcome_exits_1(sweep, capsys):
    sweep.end()
    assert "no job recorded how it ended" in capsys.readouterr().out
    assert exit_status() == 1


def test_an_unreadable_outcome_is_not_a_finished_job(sweep, tmp_path):
    sweep(0, _finishes)
    (tmp_path / ".jobs" / "1.json").write_text('{"status": "fini')
    (tmp_path / ".jobs" / "2.json").write_text('{"status": "finished"}')  # no output_dir
    sweep.end()
    statuses = [o["status"] for o in read_outcomes(tmp_path)]
    assert statuses == ["finished", "unreadable", "unreadable"]
    assert exit_status() == 1


def test_outcomes_of_an_earlier_sweep_in_the_same_directory_are_forgotten(tmp_path):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    (tmp_path / ".jobs").mkdir()
    (tmp_path / ".jobs" / "0.json").write_text(json.dumps({"job": 0, "status": "failed"}))
    SweepOutcome().on_multirun_start(config)
    assert read_outcomes(tmp_path) == []


def test_outcomes_are_in_job_order_and_the_summary_skips_finished_directories():
    outcomes = [
        {"job": number, "status": status, "output_dir": f"s/{number}"}
        for number, status in [(0, "finished"), (1, "failed"), (2, "not run")]
    ]
    assert (
        summary_line("s", outcomes)
        == "sweep s: 3 jobs: 1 finished, 1 failed (s/1), 1 not run (s/2)"
    )


def test_a_failing_job_logs_one_sentence_on_the_console_and_its_traceback_in_its_log(
    sweep, tmp_path
):
    """As Hydra's job logging sets it up: a console handler and the job's train.log."""
    (tmp_path / "0").mkdir()
    console_text = io.StringIO()
    console = logging.StreamHandler(console_text)
    log_file = logging.FileHandler(tmp_path / "0" / "train.log")
    root = logging.getLogger()
    root.addHandler(console)
    root.addHandler(log_file)
    try:

        def fails() -> dict:
            raise ConfigError("model=mlp cannot be used with data=ring")

        sweep(0, fails)
    finally:
        root.removeHandler(console)
        root.removeHandler(log_file)
        log_file.close()
    assert console_text.getvalue().splitlines() == [
        "job failed: ConfigError: model=mlp cannot be used with data=ring "
        f"(traceback in {tmp_path / '0' / 'train.log'})"
    ]
    logged = (tmp_path / "0" / "train.log").read_text()
    assert "Traceback (most recent call last)" in logged and 'raise ConfigError("model' in logged


@pytest.mark.slow
def test_the_command_exits_1_when_every_job_fails_and_says_why_in_one_sentence_each(tmp_path):
    """The issue's case: ``resume=true`` in a sweep with no checkpoint anywhere."""
    command = [sys.executable, "-m", "gan_je.train", "-m", "experiment=ring", "debug=fdr"]
    command += ["logger=none", "resume=true", "seed=0,1", f"hydra.sweep.dir={tmp_path}"]
    env = {key: value for key, value in os.environ.items() if key != "GAN_JE_RUN_ID"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 1, result.stderr[-3000:]
    console = result.stdout + result.stderr
    assert "Traceback" not in console, console[-3000:]
    for job in ("0", "1"):
        sentences = [line for line in console.splitlines() if "job failed:" in line]
        assert any(f"found no {tmp_path / job / 'checkpoints'}" in line for line in sentences)
        assert "Traceback" in (tmp_path / job / "train.log").read_text()
    assert f"sweep {tmp_path}: 2 jobs: 2 failed ({tmp_path / '0'}, {tmp_path / '1'})" in console
