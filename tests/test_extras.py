"""Optional dependencies: each feature whose extra is missing says, in one sentence, which
extra to install (the missing package simulated by ``sys.modules[name] = None``), and the lean
core imports without any of them."""

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from omegaconf import OmegaConf

from gan_je import slurm
from gan_je.commands import build_from_config
from gan_je.errors import ConfigError
from gan_je.extras import HYDRA_PLUGINS, TARGETS, MissingExtraError, check_hydra_plugins, require

ROOT = Path(__file__).resolve().parents[1]
#: every module an extra provides, as gan_je imports it
OPTIONAL = [
    "faiss",
    "torch_fidelity",
    "tensorboard",
    "tensorboardX",
    "submitit",
    "optuna",
    "sqlalchemy",
    *sorted({module for module, _ in HYDRA_PLUGINS.values()}),
]


def _one_sentence(info: pytest.ExceptionInfo, feature: str, extra: str) -> None:
    message = str(info.value)
    assert message.startswith(f"{feature} needs the optional package ") and "\n" not in message
    assert message.endswith(f"pip install 'gan_je[{extra}]'")
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ImportError)


def test_require_returns_the_module():
    import math

    assert require("math", "none", "maths") is math


def test_a_missing_module_names_the_extra_in_one_sentence():
    with pytest.raises(MissingExtraError) as info:
        require("no_such_module_for_gan_je", "fast", "backend='fast'")
    _one_sentence(info, "backend='fast'", "fast")


@pytest.mark.parametrize(("choice", "needed"), sorted(HYDRA_PLUGINS.items()))
def test_a_missing_hydra_plugin_is_named_before_hydra_composes(monkeypatch, choice, needed):
    module, extra = needed
    override = "=".join(choice)
    check_hydra_plugins(["-m", override, "seed=0,1"])  # installed here: nothing to say
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError) as info:
        check_hydra_plugins(["-m", "seed=0,1", override])
    _one_sentence(info, override, extra)
    assert module in str(info.value)
    check_hydra_plugins(["-m", "seed=0,1", "hydra/launcher=basic", "loss=hinge"])  # none needed


def test_the_tensorboard_logger_names_its_extra(monkeypatch, train_config):
    (target,) = TARGETS
    for option in ("tensorboard", "many"):
        node = train_config(f"logger={option}").logger.tensorboard
        assert node._target_ == target
        monkeypatch.setitem(sys.modules, "tensorboard", None)
        with pytest.raises(MissingExtraError) as info:
            build_from_config(node, "logger")
        _one_sentence(info, "logger TensorBoardLogger", "tensorboard")
        monkeypatch.delitem(sys.modules, "tensorboard")


def test_the_inception_estimator_names_its_extra_or_the_missing_weights(monkeypatch, train_config):
    """Without torch-fidelity torchmetrics' FID refuses to start (simulated here, whether it is
    installed or not); with it, what can still be missing is the network for the weights."""
    failure = ModuleNotFoundError("FrechetInceptionDistance needs torch-fidelity")

    def fid(**kwargs):
        raise failure

    monkeypatch.setattr("torchmetrics.image.fid.FrechetInceptionDistance", fid)
    config = train_config("estimator=inception").estimator
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)
    with pytest.raises(MissingExtraError) as info:
        build_from_config(config, "estimator")
    _one_sentence(info, "estimator=inception", "inception")
    monkeypatch.setitem(sys.modules, "torch_fidelity", ModuleType("torch_fidelity"))
    failure = OSError("no network")
    with pytest.raises(ConfigError, match=r"Inception weights .* \(no network\)") as info:
        build_from_config(config, "estimator")
    assert not isinstance(info.value, MissingExtraError)


def test_the_slurm_queue_poller_names_its_extra_only_for_slurm_sweeps(monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit.slurm.slurm", None)
    callback = slurm.QueuePolling()
    callback.on_multirun_start(OmegaConf.create({"hydra": {"launcher": {"_target_": "x.Basic"}}}))
    cluster = OmegaConf.create({"hydra": {"launcher": {"_target_": "x.SlurmLauncher"}}})
    with pytest.raises(MissingExtraError) as info:
        callback.on_multirun_start(cluster)
    _one_sentence(info, "hydra/launcher=slurm", "slurm")


def test_the_extras_of_pyproject_are_the_documented_ones():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    named = {extra for _, extra in [*HYDRA_PLUGINS.values(), *TARGETS.values()]}
    # estimator.backend=faiss, estimator=inception, data=text's default corpus, data=spoken_digits
    named |= {"faiss", "inception", "text", "audio"}
    assert set(extras) == named | {"all", "dev"}
    assert extras["all"] == [f"gan_je[{','.join(e for e in extras if e not in ('all', 'dev'))}]"]
    core = " ".join(project["dependencies"]).lower()
    optional = {requirement for extra in named for requirement in extras[extra]}
    packages = ("faiss", "fidelity", "optuna", "submitit", "tensorboard", "joblib", "fortune")
    packages += ("espeakng",)
    for package in (*packages, "prdc"):
        assert package not in core, package
        assert any(package in requirement for requirement in optional) or package == "prdc"
    makefile = (ROOT / "Makefile").read_text()
    assert 'pip install --quiet -e ".[dev,all]"' in makefile  # make install, and so CI


@pytest.mark.slow
def test_the_core_imports_without_any_extra_and_train_names_a_missing_plugin():
    """The entry points import with every optional module missing, and ``python -m
    gan_je.train`` names the missing plugin's extra in one line before Hydra composes."""
    # torch_fidelity stays importable: torchmetrics (a core dependency) imports it by itself
    # whenever its distribution is installed, which blocking the module cannot hide; without
    # it installed torchmetrics goes without (and test_the_inception_estimator_... covers us)
    missing = [module for module in OPTIONAL if module != "torch_fidelity"]
    blocked = f"import sys; sys.modules.update(dict.fromkeys({missing!r}))"
    imports = "import gan_je.train, gan_je.evaluate, gan_je.generate, gan_je.report"
    code = f"{blocked}; {imports}; print('imported')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "imported", result.stderr
    code = (
        f"{blocked}; import runpy; sys.argv[1:] = ['-m', 'hydra/launcher=joblib']; "
        f"runpy.run_module('gan_je.train', run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("gan_je.train: hydra/launcher=joblib needs the optional package ")
    assert line.endswith("pip install 'gan_je[joblib]'")
