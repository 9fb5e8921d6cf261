"""What the benchmark scripts share: the section command line and the
training config composed as ``python -m gan_je.train`` would."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import gan_je  # noqa: F401  (registers the resolvers the configs use)

CONF = Path(__file__).resolve().parents[1] / "conf"


def train_config(output_dir: str | Path, *overrides: str) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, the run directory at ``output_dir``."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[
                f"paths.root_dir={output_dir}",
                f"paths.output_dir={output_dir}",
                *overrides,
            ],
        )


def run_sections(description: str, sections: dict[str, Callable[[], str]], banner: str) -> None:
    """Parse ``[section ...]`` from the command line (default: all), print ``banner`` and
    each chosen section's table under a ``##`` heading."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("sections", nargs="*", help=f"any of {list(sections)} (default: all)")
    args = parser.parse_args()
    unknown = set(args.sections) - set(sections)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {list(sections)}")
    print(banner)
    for name in args.sections or list(sections):
        print(f"\n## {name}\n\n{sections[name]()}", flush=True)
