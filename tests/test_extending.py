"""Networks from a package of one's own (docs/howto.md, "Replace the networks from your own
package"): the contract gan_je checks when it builds them, each failure one sentence naming
the argument, attribute or shape, and the howto's own files and commands run from a folder
outside gan_je, its config file found through ``hydra.searchpath``."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from gan_je import parts
from gan_je.errors import ConfigError
from gan_je.models import contract
from gan_je.train import build

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Replace the networks from your own package"
QUIET = ["logger=none", "callbacks=none", "trainer.enable_progress_bar=false"]
QUIET += ["trainer.enable_model_summary=false", "trainer.accelerator=cpu"]
TINY = ["data.n_train=2048", "data.n_val=500", "trainer.max_epochs=1"]
TINY += ["trainer.limit_train_batches=2", "estimator.quality=false", "estimator.copying=false"]
TINY += ["estimator.jsd_classifier=false", "estimator.standard_errors=0"]


def howto_section() -> str:
    text = (ROOT / "docs" / "howto.md").read_text()
    start = text.index(SECTION)
    return text[start : text.index("\n## ", start + len(SECTION))]


def howto_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", howto_section(), flags=re.DOTALL)


def write_howto_files(folder: Path) -> None:
    """The section's Python and YAML files, each named by its first line ``# <path>``."""
    for block in howto_blocks("python") + howto_blocks("yaml"):
        name = block.splitlines()[0].removeprefix("# ")
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(block)


@pytest.fixture
def my_gans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The howto's package, importable in this test (its classes registered); afterwards
    neither imported nor registered, so that another test's ``my_gans`` is its own."""
    write_howto_files(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(parts, "REGISTERED", set(parts.REGISTERED))
    sys.modules.pop("my_gans", None)
    __import__("my_gans")
    yield tmp_path
    sys.modules.pop("my_gans", None)


def test_the_howto_quotes_the_files_it_names():
    blocks = howto_blocks("python") + howto_blocks("yaml")
    assert [block.splitlines()[0] for block in blocks] == [
        "# my_gans/__init__.py",
        "# conf/model/wide.yaml",
    ]
    assert yaml.safe_load(howto_blocks("yaml")[0])["generator"]["_target_"] == (
        "my_gans.WideGenerator"
    )


def test_replacing_only_the_class_names_the_key_and_the_class(my_gans, train_config):
    """``model.generator._target_=my_gans.WideGenerator`` keeps ``model=mlp``'s ``hidden``:
    the refusal names that key and the class, and does not blame the data."""
    cfg = train_config("experiment=ring", "model.generator._target_=my_gans.WideGenerator")
    with pytest.raises(ConfigError) as refusal:
        build(cfg)
    message = str(refusal.value)
    assert message.startswith(
        "model.generator: my_gans.WideGenerator takes no argument 'hidden', which the config "
        "sets (model.generator.hidden): remove it with ~model.generator.hidden"
    ), message
    assert "data" not in message


def test_the_howtos_networks_build_for_the_ring(my_gans, train_config):
    node = "{_target_:my_gans.WideGenerator,_partial_:true,latent_dim:16,width:512}"
    cfg = train_config("experiment=ring", "~model.generator", f"+model.generator={node}")
    _, module = build(cfg)
    assert type(module.generator).__qualname__ == "WideGenerator"
    assert module.sample(3, seed=0).shape == (3, 2)


# ------------------------------------------------------------------ the contract, broken


@parts.register
class NoBounded(nn.Module):
    def __init__(self, sample_shape, latent_dim=4):
        super().__init__()
        self.latent_dim, self.net = latent_dim, nn.Linear(latent_dim, 2)

    def forward(self, z):
        return self.net(z)


@parts.register
class NoLatentDim(nn.Module):
    def __init__(self, sample_shape, bounded=False):
        super().__init__()
        self.net = nn.Linear(4, 2)

    def forward(self, z):
        return self.net(z)


@parts.register
class WrongSampleShape(NoBounded):
    def __init__(self, sample_shape, bounded=False):
        super().__init__(sample_shape, latent_dim=4)
        self.net = nn.Linear(4, 3)


@parts.register
class LogitColumn(nn.Module):
    def __init__(self, sample_shape):
        super().__init__()
        self.net = nn.Linear(2, 1)

    def forward(self, x):
        return self.net(x)  # (B, 1), not (B,)


@pytest.mark.parametrize(
    ("network", "message"),
    [
        ("generator=NoBounded", r"model\.generator: tests\.test_extending\.NoBounded must take "
         r"the argument "
         r"'bounded', which gan_je passes to every generator"),
        ("generator=NoLatentDim", r"model\.generator: tests\.test_extending\.NoLatentDim must "
         r"have an int attribute latent_dim >= 1 .*, got None"),
        ("generator=WrongSampleShape", r"model\.generator: tests\.test_extending\."
         r"WrongSampleShape maps an input of shape \(2, 4\) to \(2, 3\), where gan_je needs a "
         r"tensor of shape \(2, 2\)"),
        ("discriminator=LogitColumn", r"model\.discriminator: tests\.test_extending\."
         r"LogitColumn maps an input of shape \(2, 2\) to \(2, 1\), where gan_je needs a "
         r"tensor of shape \(2,\)"),
    ],
)  # fmt: skip
def test_a_network_breaking_the_contract_is_refused_naming_what_is_missing(
    train_config, network, message
):
    role, name = network.split("=")
    node = f"{{_target_:tests.test_extending.{name},_partial_:true}}"
    cfg = train_config("experiment=ring", f"~model.{role}", f"+model.{role}={node}")
    with pytest.raises(ConfigError, match=rf"^{message}.*docs/howto\.md"):
        build(cfg)


def test_the_contract_check_changes_no_state_and_draws_nothing(train_config, monkeypatch):
    """The forward passes of the check neither move batch-norm statistics nor draw from
    torch's random stream (a run's reproducibility depends on both)."""
    cfg = train_config("data=digits", "model=dcgan", "model.generator.width=8")
    _, module = build(cfg)
    norms = [m for m in module.generator.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(int(m.num_batches_tracked) == 0 for m in norms)
    assert all(torch.equal(m.running_mean, torch.zeros_like(m.running_mean)) for m in norms)
    torch.manual_seed(0)
    module.build_networks(module.hparams.data_spec)  # checked
    checked = torch.rand(1)
    for name in ("check_generator", "check_discriminator"):
        monkeypatch.setattr(contract, name, lambda *args, **kwargs: None)
    torch.manual_seed(0)
    module.build_networks(module.hparams.data_spec)  # unchecked: the same draws
    assert torch.equal(torch.rand(1), checked)


# ------------------------------------------------------------------ the howto's commands


@pytest.mark.slow
def test_the_howtos_commands_train_from_a_folder_outside_gan_je(tmp_path):
    write_howto_files(tmp_path)
    commands = [
        line
        for block in howto_blocks("bash")
        for line in block.splitlines()
        if line.startswith("python -m gan_je.train")
    ]
    assert len(commands) == 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    env["WANDB_MODE"] = "offline"
    for i, command in enumerate(commands):
        args = shlex.split(command.replace("$PWD", str(tmp_path)))
        run = tmp_path / f"run{i}"
        args = [sys.executable, *args[1:], *QUIET, *TINY, f"hydra.run.dir={run}"]
        result = subprocess.run(
            args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600
        )
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["g_steps"] == 2
        recorded = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
        assert recorded["model"]["generator"]["_target_"] == "my_gans.WideGenerator"
        assert recorded["model"]["generator"]["width"] == 512
