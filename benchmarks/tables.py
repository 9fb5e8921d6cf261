"""What the benchmark scripts share: Markdown tables and the section command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


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
