"""The installed package: a wheel carries the configs and runs from any directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info")


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_a_wheel_install_trains_from_another_directory(tmp_path):
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    source = tmp_path / "source"  # a copy: building writes build/ next to the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    for name in ("gan_je", "conf"):
        shutil.copytree(ROOT / name, source / name, ignore=IGNORED)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)], source
    )
    (wheel,) = wheels.glob("gan_je-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".yaml")}
    configs = {
        f"gan_je/conf/{path.relative_to(ROOT / 'conf')}" for path in ROOT.glob("conf/**/*.yaml")
    }
    assert shipped == configs and "gan_je/conf/train.yaml" in shipped
    _run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], tmp_path)

    # the wheel's copy, not this checkout (PYTHONPATH comes before the editable install)
    env = os.environ | {"PYTHONPATH": str(site), "WANDB_MODE": "offline"}
    code = "import gan_je, gan_je.conf; print(gan_je.__file__); print(gan_je.conf.__file__)"
    found = _run([sys.executable, "-c", code], elsewhere, env).split()
    assert all(Path(path).is_relative_to(site) for path in found), found  # not this checkout
    run_dir = elsewhere / "run"
    command = [sys.executable, "-m", "gan_je.train", "experiment=ring", "debug=limit"]
    command += ["logger=none", "callbacks=none", f"hydra.run.dir={run_dir}"]
    _run(command, elsewhere, env)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["g_steps"] == 10
