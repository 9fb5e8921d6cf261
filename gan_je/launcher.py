"""A training job fitted to the Hydra launcher that started it."""

from __future__ import annotations

import logging
import os

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def share_cpus_with_joblib_jobs(cfg: DictConfig) -> None:
    """Under ``hydra/launcher=joblib`` several jobs share one machine in worker processes:
    DataLoader worker processes inside them fail (daemonic workers may not have children)
    or oversubscribe the CPUs, and each job's torch would use every core. So: no loader
    workers (the data sets are in memory anyway; ``cfg.data.num_workers`` is set to 0) and
    each job gets its share of the threads. Outside a joblib launch: nothing."""
    if not HydraConfig.initialized():
        return
    launcher = HydraConfig.get().launcher
    if "JoblibLauncher" not in str(launcher.get("_target_", "")):
        return
    if cfg.data.get("num_workers", 0) > 0:
        log.warning("hydra/launcher=joblib: data.num_workers=%s set to 0", cfg.data.num_workers)
        cfg.data.num_workers = 0
    cpus = os.cpu_count() or 1
    n_jobs = launcher.get("n_jobs") or -1
    jobs = cpus if n_jobs < 0 else min(n_jobs, cpus)
    import torch  # only here: gan_je.train --help starts without it

    torch.set_num_threads(max(1, cpus // jobs))
