"""What users of lightning-hydra-template try first: the debug options, Lightning's gradient
clipping (refused, naming gan_je's own), ``--cfg job --resolve``, ``model.compile``, console
scripts with Hydra's tab completion, and a ``--help`` that does not wait for torch."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

import gan_je
from gan_je.errors import ConfigError
from gan_je.module import GANModule
from gan_je.train import build, train

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
QUIET = ["logger=none", "callbacks=none", "trainer.enable_progress_bar=false"]
QUIET += ["trainer.enable_model_summary=false", "trainer.accelerator=cpu"]
SMALL_RING = ["experiment=ring", "data.n_train=2048", "data.n_val=500"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def test_debug_default_is_one_cpu_epoch_with_anomaly_detection_and_debug_logs():
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", ["experiment=ring", "debug=default"], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    assert cfg.trainer.max_epochs == 1 and cfg.trainer.accelerator == "cpu"
    assert cfg.trainer.devices == 1 and cfg.trainer.detect_anomaly is True
    assert cfg.data.num_workers == 0
    loggers = cfg.hydra.job_logging.loggers
    assert loggers.gan_je.level == "DEBUG" and loggers.lightning.level == "DEBUG"


@pytest.mark.slow
def test_debug_overfit_trains_on_three_batches_and_still_validates(train_config):
    cfg = train_config(*SMALL_RING, "debug=overfit", "trainer.max_epochs=2", *QUIET)
    assert cfg.trainer.detect_anomaly is True  # built on debug=default
    summary = train(cfg)
    assert summary["g_steps"] == 2 * 3 and summary["validations"] == 2  # 3 batches an epoch
    assert 0 <= summary["final"]["val/jsd"] <= 0.7


@pytest.mark.slow
def test_debug_profiler_writes_lightnings_simple_profile_into_the_run_directory(train_config):
    cfg = train_config(*SMALL_RING, "debug=profiler", "trainer.limit_train_batches=2", *QUIET)
    train(cfg)
    profile = (Path(cfg.paths.output_dir) / "fit-profile.txt").read_text()
    assert "run_training_batch" in profile


@pytest.mark.parametrize("setting", ["gradient_clip_val=1.0", "gradient_clip_algorithm=value"])
def test_lightnings_gradient_clipping_is_refused_naming_model_grad_clip(train_config, setting):
    cfg = train_config(*SMALL_RING, f"++trainer.{setting}", *QUIET)
    with pytest.raises(ConfigError, match=rf"^trainer\.{setting}.* use model\.grad_clip="):
        build(cfg)


def test_sweep_tags_resolve_in_place():
    """``--cfg job --resolve`` resolves the config in place (``OmegaConf.resolve``), which
    cannot store a Python list where the W&B tags' resolver stands."""
    cfg = OmegaConf.create({"tags": "${gan_je.sweep:tags}", "group": "${gan_je.sweep:group}"})
    OmegaConf.resolve(cfg)
    assert OmegaConf.to_container(cfg) == {"tags": [], "group": None}


def test_cfg_job_resolve_prints_the_resolved_config(tmp_path):
    command = [sys.executable, "-m", "gan_je.train", "--cfg", "job", "--resolve"]
    result = subprocess.run(
        [*command, "experiment=ring"], capture_output=True, text=True, cwd=tmp_path, env=ENV
    )
    assert result.returncode == 0, result.stderr
    printed = OmegaConf.create(result.stdout)
    assert printed.logger.wandb.tags == [] and printed.paths.root_dir == str(tmp_path)
    assert "${" not in result.stdout


def test_model_compile_compiles_both_networks_in_place(train_config):
    """The networks are compiled in place: the state dict keys are the plain networks'
    (no ``_orig_mod.``), so checkpoints load into uncompiled networks."""
    _, plain = build(train_config(*SMALL_RING, *QUIET))
    _, compiled = build(train_config(*SMALL_RING, "model.compile=true", *QUIET, run="compiled"))
    assert plain.generator._compiled_call_impl is None
    for network in (compiled.generator, compiled.discriminator):
        assert network._compiled_call_impl is not None
    assert list(compiled.state_dict()) == list(plain.state_dict())


def test_model_compile_must_be_a_bool():
    with pytest.raises(ConfigError, match=r"model\.compile must be true or false"):
        GANModule(**_descriptions(), compile="yes")


def _descriptions() -> dict:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("train", ["experiment=ring"])
    finally:
        GlobalHydra.instance().clear()
    model = OmegaConf.to_container(cfg.model, resolve=True)
    return {key: model[key] for key in GANModule.PARTS if model.get(key) is not None}


@pytest.mark.slow
def test_a_compiled_run_saves_a_checkpoint_that_loads_uncompiled(train_config):
    with_checkpoints = [item for item in QUIET if item != "callbacks=none"] + [
        "~callbacks.progress"
    ]
    cfg = train_config(
        *SMALL_RING, "model.compile=true", "debug=limit", "trainer.max_epochs=1", *with_checkpoints
    )
    train(cfg)
    path = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    keys = torch.load(path, weights_only=True)["state_dict"]
    assert keys and not any("_orig_mod" in key for key in keys)
    loaded = GANModule.load_from_checkpoint(path, compile=False)
    assert loaded.sample(5, seed=0).shape == (5, 2)


# ------------------------------------------------------------------ console scripts


def _scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_each_console_script_runs_what_python_dash_m_runs():
    """``gan-je-<x>`` calls the one function the module's ``__main__`` block calls."""
    scripts = _scripts()
    assert set(scripts) == {f"gan-je-{x}" for x in ("train", "evaluate", "generate", "report")}
    for script, target in scripts.items():
        module_name, function = target.split(":")
        assert module_name == f"gan_je.{script.removeprefix('gan-je-')}"
        assert callable(getattr(importlib.import_module(module_name), function))
        source = Path(gan_je.__file__).with_name(f"{module_name.split('.')[1]}.py").read_text()
        main_block = [
            node.body
            for node in ast.parse(source).body
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)
        ]
        assert [ast.unparse(statement) for statement in main_block[0]] == [f"{function}()"]


@pytest.mark.parametrize(("command", "line", "expected"), [
    ("train", "gan-je-train data=ri", "data=ring"),
    ("train", "gan-je-train debug=ov", "debug=overfit"),
    ("evaluate", "gan-je-evaluate spl", "split="),
])  # fmt: skip
def test_tab_completion_works_with_the_script_name(tmp_path, command, line, expected):
    """Hydra's bash completion, installed with ``eval "$(gan-je-train -sc install=bash)"``,
    completes config groups for the script (an executable named like the installed one
    that calls the entry function pyproject.toml names)."""
    module_name, function = _scripts()[f"gan-je-{command}"].split(":")
    script = tmp_path / "bin" / f"gan-je-{command}"
    script.parent.mkdir()
    call = f"import sys; sys.argv[0] = '{script.name}'; from {module_name} import {function}; "
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "{call}{function}()" "$@"\n')
    script.chmod(0o755)
    shell = (
        f'eval "$({script.name} -sc install=bash)"; COMP_LINE="{line}"; '
        "COMP_POINT=${#COMP_LINE}; COMP_WORDS=($COMP_LINE); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
        'hydra_bash_completion; echo "${COMPREPLY[@]}"'
    )
    env = {**ENV, "PATH": f"{script.parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout.split(), (result.stdout, result.stderr)


# ------------------------------------------------------------------ a quick --help

HEAVY = ("torch", "lightning", "wandb", "sklearn", "matplotlib")


@pytest.mark.parametrize("command", ["train", "evaluate", "generate", "report"])
def test_help_imports_no_heavy_package(command):
    """``python -m gan_je.<command> --help`` answers without importing torch, Lightning,
    W&B, scikit-learn or matplotlib (seconds each); what it imports is counted, not timed."""
    code = (
        "import contextlib, io, runpy, sys\n"
        f"sys.argv = ['gan_je.{command}', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        f"        runpy.run_module('gan_je.{command}', run_name='__main__')\n"
        "    except SystemExit as end:\n"
        "        assert not end.code, end.code\n"
        "assert out.getvalue().strip(), 'no help printed'\n"
        f"print(' '.join(name for name in {HEAVY!r} if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], f"--help imported {result.stdout.strip()}"
