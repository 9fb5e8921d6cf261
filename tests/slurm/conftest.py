"""A one-node SLURM cluster for the tests marked ``slurm``: started once per session with
``tests/slurm/cluster.sh`` (and stopped after, if this session started it); the tests skip,
saying how to enable them, where SLURM or root is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CLUSTER = Path(__file__).with_name("cluster.sh")
ENABLE = (
    "as root: apt-get install slurm-wlm munge (Debian); the tests then start a one-node "
    "cluster with tests/slurm/cluster.sh"
)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[str]:
    """The cluster's ``SLURM_CONF``, also set in ``os.environ`` for the session."""
    if shutil.which("sbatch") is None or shutil.which("slurmctld") is None:
        pytest.skip(f"needs SLURM: {ENABLE}")
    if os.geteuid() != 0:
        pytest.skip(f"starting the test cluster needs root: {ENABLE}")
    started = subprocess.run(["bash", str(CLUSTER), "start"], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(f"tests/slurm/cluster.sh start failed: {started.stderr}")
    conf = started.stdout.split("SLURM_CONF=")[1].split()[0]
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    yield conf
    if previous is None:
        os.environ.pop("SLURM_CONF")
    else:
        os.environ["SLURM_CONF"] = previous
    if "already running" not in started.stdout:
        subprocess.run(["bash", str(CLUSTER), "stop"], check=True)
