"""Issue 29, commands and checkpoint reading: each user-caused failure of ``generate``,
``evaluate``, ``report`` and of loading a checkpoint is one sentence (a
:class:`gan_je.errors.GanJeError`) before any work, never a traceback or a silent wrong
result. Rows of docs/reliability.md, section "Commands and estimators"."""

from __future__ import annotations

import csv
import functools
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from gan_je import checks, sampling
from gan_je.checkpoints import load_sampler
from gan_je.checks import available_memory, check_fits_in_memory
from gan_je.errors import CheckpointError, ConfigError
from gan_je.evaluate import evaluate
from gan_je.generate import run as generate
from gan_je.module import GANModule
from gan_je.report import main as report_main
from gan_je.report import report
from gan_je.train import build
from tests.test_report import _job

CONF = Path(__file__).resolve().parents[1] / "conf"


def _app_config(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


def test_memory_check_names_the_setting_and_the_largest_count_that_fits():
    check_fits_in_memory("n", 1000, 8, available=8000)  # exactly fits
    with pytest.raises(ConfigError, match=r"n=1001 needs .* at most n=1000 fits"):
        check_fits_in_memory("n", 1001, 8, available=8000)


def test_available_memory_is_a_plausible_number_of_bytes():
    assert 2**20 < available_memory() < 2**50


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of an untrained ring run, built once (no training: the module as
    ``gan_je.train`` builds it, saved with the fields ``on_save_checkpoint`` adds)."""
    folder = tmp_path_factory.mktemp("untrained")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                *(f"paths.root_dir={folder}", f"paths.output_dir={folder}/run"),
                *("experiment=ring", "data.n_train=256", "data.n_val=128", "logger=none"),
            ],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    _, module = build(cfg, run_config=OmegaConf.to_container(cfg, resolve=True))
    state = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(state)
    torch.save(state, folder / "last.ckpt")
    return folder / "last.ckpt"


@pytest.fixture
def checkpoint(untrained_checkpoint, tmp_path) -> Path:
    """A copy of :func:`untrained_checkpoint` in this test's own run folder."""
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    shutil.copyfile(untrained_checkpoint, path)
    return path


def _edited(checkpoint: Path, edit) -> Path:
    """A copy of ``checkpoint`` changed by ``edit(state)``, beside it."""
    state = torch.load(checkpoint, weights_only=True)
    edit(state)
    path = checkpoint.with_name("edited.ckpt")
    torch.save(state, path)
    return path


def _set(field: str, value):
    def edit(state):
        if field == "centers":
            state["hyper_parameters"]["data_spec"]["centers"] = value
        else:
            state[field] = value

    return edit


def _weight(name: str, change):
    def edit(state):
        state["state_dict"][name] = change(state["state_dict"][name])

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("g_step", "12"), "g_step must be a whole number"),
        (_set("centers", "ring"), "needs centers as a list of rows of 2 finite numbers"),
        (_set("centers", [[0.0, "x"]]), "needs centers as a list of rows of 2 finite numbers"),
        (_set("state_dict", ["weights"]), "state_dict must map names to tensors"),
        (_weight("generator.net.0.weight", lambda w: w.tolist()), "must map names to tensors"),
        (
            _weight("generator.net.0.weight", lambda w: w.long()),
            "generator.net.0.weight holds torch.int64",
        ),
        (_weight("generator.net.2.bias", lambda w: w * math.nan), "generator.net.2.bias holds NaN"),
        (
            _weight("generator.net.4.bias", lambda w: w + math.inf),
            "generator.net.4.bias holds NaN or inf",
        ),
    ],
)
def test_a_checkpoint_with_fields_of_the_wrong_type_is_refused_naming_the_field(
    checkpoint, edit, message
):
    """generate (load_sampler) and evaluate (load_module) refuse it in one sentence: no
    traceback, no NaN samples written, no int weights cast silently."""
    edited = _edited(checkpoint, edit)
    for load in (load_sampler, GANModule.load_from_checkpoint):
        with pytest.raises(CheckpointError, match=re.escape(message)):
            load(edited)
    out = checkpoint.with_name("never.png")
    with pytest.raises(CheckpointError, match=re.escape(message)):
        generate(_app_config("generate", f"ckpt_path={edited}", f"out={out}"))
    assert not out.exists()


def test_generate_refuses_more_samples_than_memory_holds_before_sampling(checkpoint, monkeypatch):
    """Ring samples take 2 x 4 bytes, held twice while joined: 16 bytes each."""
    monkeypatch.setattr(checks, "available_memory", lambda: 16 * 1000)
    out = checkpoint.with_name("many.npz")
    with pytest.raises(ConfigError, match=r"n=1001 needs .* at most n=1000 fits"):
        generate(
            _app_config("generate", f"ckpt_path={checkpoint}", "n=1001", "format=npz", f"out={out}")
        )
    assert not out.exists()
    generate(
        _app_config("generate", f"ckpt_path={checkpoint}", "n=1000", "format=npz", f"out={out}")
    )
    assert np.load(out)["samples"].shape == (1000, 2)


def test_generate_into_a_folder_writes_inside_it_and_says_where(checkpoint, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    written = generate(_app_config("generate", f"ckpt_path={checkpoint}", f"out={folder}"))
    assert written == folder / "last-samples.png" and written.is_file()
    assert not folder.with_suffix(".png").exists()


def test_generate_refuses_a_file_name_of_another_format(checkpoint, tmp_path):
    for out in (tmp_path / "samples", tmp_path / "samples.jpg"):
        with pytest.raises(ConfigError, match=r"does not end in \.png \(format=png\)"):
            generate(_app_config("generate", f"ckpt_path={checkpoint}", f"out={out}"))
        assert not list(tmp_path.glob("samples*"))


def _unwritable(tmp_path: Path) -> list[Path]:
    """Files no one can write: under a file (a parent folder that cannot be created) and, on
    Linux, in sysfs (read-only even for root, who ignores a folder's permissions)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    files = [blocker / "sub" / "samples.png"]
    return files + ([Path("/sys/samples.png")] if Path("/sys/kernel").is_dir() else [])


def test_generate_refuses_an_unwritable_out_before_sampling(checkpoint, tmp_path, monkeypatch):
    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled before checking out=")

    monkeypatch.setattr("gan_je.checkpoints.load_sampler", no_sampling)  # imported when run
    for out in _unwritable(tmp_path):
        with pytest.raises(ConfigError, match=f"cannot write {re.escape(str(out))}[: ]"):
            generate(_app_config("generate", f"ckpt_path={checkpoint}", f"out={out}"))


@pytest.fixture
def no_loading(monkeypatch):
    """Loading the checkpoint fails the test: the refusal must come before any work."""

    def refuse(*args, **kwargs):
        raise AssertionError("the checkpoint was loaded before the settings were checked")

    monkeypatch.setattr(GANModule, "load_from_checkpoint", refuse)


@pytest.mark.parametrize("batch_size", [0, -3, "many"])
def test_evaluate_refuses_a_batch_size_below_one_before_loading(checkpoint, no_loading, batch_size):
    cfg = _app_config("evaluate", f"ckpt_path={checkpoint}", f"batch_size={batch_size}")
    with pytest.raises(ConfigError, match="batch_size must be a whole number of at least 1"):
        evaluate(cfg)


@pytest.mark.parametrize("blocked", ["evaluations is a file", "read-only folder"])
def test_evaluate_refuses_unwritable_evaluation_records_before_loading(
    checkpoint, no_loading, blocked
):
    if blocked == "evaluations is a file":
        checkpoint.with_name("evaluations").write_text("")
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        checkpoint.parent.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match=r"cannot write .*evaluations/.*copy the checkpoint"):
            evaluate(_app_config("evaluate", f"ckpt_path={checkpoint}"))
    finally:
        checkpoint.parent.chmod(0o755)


def test_evaluate_refuses_more_samples_than_memory_holds_before_sampling(checkpoint, monkeypatch):
    bounded = functools.partial(checks.check_fits_in_memory, available=16 * 100)
    monkeypatch.setattr(sampling, "check_fits_in_memory", bounded)  # the samples' bound only
    monkeypatch.setattr(GANModule, "sample", lambda *args, **kwargs: pytest.fail("sampled"))
    cfg = _app_config("evaluate", f"ckpt_path={checkpoint}", "n_samples=101")
    with pytest.raises(ConfigError, match=r"n_samples=101 needs .* at most n_samples=100 fits"):
        evaluate(cfg)


#: Damaged records, each with what the report says of it.
DAMAGED = [
    ("metrics.csv", "epoch,g_step,val/jsd\n0,10,abc\n", "line 2: val/jsd is 'abc', not a number"),
    ("metrics.csv", "epoch,g_step\n0,10,7,8\n", "line 2: more cells than the header"),
    ("metrics.csv", "epoch,val/jsd\n0,0.5\n", "metrics.csv has rows without a g_step"),
    ("metrics.csv", "g_step\n\x00\n", "line 2: g_step is '\\x00', not a number"),
    ("metrics.csv", b"g_step\n\xff\xfe\n", "cannot be read as a metrics table"),
    ("summary.json", '{"status": "finished", "fin', "summary.json is not readable JSON"),
    ("summary.json", '{"final": null}', "'final' is None, not a dict"),
    ("summary.json", '{"final": [0.1]}', "'final' is [0.1], not a dict"),
    ("summary.json", '{"final": {"val/jsd": "low"}}', "final['val/jsd'] is 'low'"),
    ("summary.json", "[1, 2]", "summary.json holds a list, not a summary"),
]


def test_report_names_the_jobs_with_unreadable_records_and_reports_the_others(tmp_path):
    """One finished job (tests/test_report.py's) and one job per damage of DAMAGED."""
    sweep = tmp_path / "sweep"
    _job(sweep, 0, ["seed=0"], "finished", [0.6, 0.4])
    for number, (name, text, _) in enumerate(DAMAGED, start=1):
        _job(sweep, number, [f"seed={number}"], "finished", [0.5, 0.3])
        path = sweep / str(number) / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    printed = report(sweep, tmp_path / "report")
    assert f"{len(DAMAGED) + 1} jobs (1 finished, {len(DAMAGED)} unreadable)" in printed
    for number, (name, _, message) in enumerate(DAMAGED, start=1):
        line = next(line for line in printed.splitlines() if line.startswith(f"- job {number}:"))
        assert str(sweep / str(number) / name) in line and message in line
    with open(tmp_path / "report" / "report.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert (rows[0]["status"], rows[0]["final val/jsd"]) == ("finished", "0.4")
    assert {(row["status"], row["final val/jsd"]) for row in rows[1:]} == {("unreadable", "")}


def test_report_refuses_an_out_that_is_a_file_in_one_line(tmp_path, capsys):
    _job(tmp_path / "sweep", 0, ["seed=0"], "finished", [0.6, 0.4])
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(tmp_path / "sweep"), "--out", str(taken)])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("gan_je.report: cannot write") and "is a file, not a folder" in error
    assert error.count("\n") == 1 and taken.read_text() == "mine"


def test_a_missing_checkpoint_is_named_before_anything_about_where_results_go(tmp_path):
    """A guard for the writability checks above: they come after the checkpoint is found,
    so a missing checkpoint is named as missing (not as an unwritable folder) and no folder
    is created for it."""
    missing = tmp_path / "gone" / "last.ckpt"
    for command, name in ((generate, "generate"), (evaluate, "evaluate")):
        with pytest.raises(CheckpointError, match="no checkpoint at"):
            command(_app_config(name, f"ckpt_path={missing}"))
    assert not missing.parent.exists()
