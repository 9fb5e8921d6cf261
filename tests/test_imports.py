"""No import cycles in gan_je: no module imports one that imports it back, directly or through
others, counting imports inside functions and ``if TYPE_CHECKING:`` blocks, and
``from gan_je import x`` as importing ``gan_je.x``. The package root (``gan_je/__init__.py``)
is left out: every import of a submodule runs it first."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import gan_je

ROOT = Path(gan_je.__file__).parent


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the package in folder ``root``: dotted name → file."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> list[str]:
    """The dotted names one import statement in module ``name`` imports (not yet narrowed
    to modules that exist)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: from the module's package, one level up per extra dot
        package = name.split(".") if is_package else name.split(".")[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join(package + ([base] if base else []))
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the package's modules it imports anywhere in its source (module level,
    functions, ``TYPE_CHECKING`` blocks), the package root excluded."""
    names = module_names(root)
    graph: dict[str, set[str]] = {name: set() for name in names if name != root.name}
    for name in graph:
        path = names[name]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = imported(node, name, path.name == "__init__.py")
            if isinstance(node, ast.ImportFrom):  # `from a import b`: the module a.b if any
                base, members = targets[0], targets[1:]
                modules = [m for m in members if m in names]
                targets = modules if len(modules) == len(members) else [base, *modules]
            graph[name] |= {t for t in targets if t in graph and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) through each group of modules that import each other
    (the strongly connected components of ``graph`` with more than one module, Tarjan
    1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_shortest_cycle(graph, group, min(group)) for group in groups]


def _shortest_cycle(graph: dict[str, set[str]], group: set[str], start: str) -> list[str]:
    """The shortest way from ``start`` back to itself inside ``group`` (breadth first)."""
    paths = [[start]]
    while paths:
        path = paths.pop(0)
        for nxt in sorted(n for n in graph[path[-1]] if n in group):
            if nxt == start:
                return [*path, start]
            if nxt not in path:
                paths.append([*path, nxt])
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group has one


def test_gan_je_has_no_import_cycle():
    graph = import_graph(ROOT)
    assert "gan_je.checkpoints" in graph and "gan_je.module" in graph
    assert "gan_je.checkpoints" in graph["gan_je.module"]  # the graph sees real imports
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in found)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "from pkg import c\n", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_imports_inside_functions_and_type_checking_blocks_make_a_cycle(tmp_path):
    """The cycle gan_je once had: checkpoints imported module inside a function and under
    TYPE_CHECKING, module imported checkpoints inside a method."""
    root = _package(
        tmp_path,
        {
            "checkpoints.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg.module import GANModule\n"
                "def load():\n    from pkg.module import GANModule\n"
            ),
            "module.py": (
                "class GANModule:\n    def load(self):\n        from pkg import checkpoints\n"
            ),
            "c.py": "import pkg\n",
        },
    )
    assert cycles(import_graph(root)) == [["pkg.checkpoints", "pkg.module", "pkg.checkpoints"]]


def test_cycles_through_several_modules_and_relative_imports_are_found(tmp_path):
    root = _package(
        tmp_path,
        {
            "a.py": "from pkg.sub import b\n",
            "sub/__init__.py": "",
            "sub/b.py": "from ..c import name\n",
            "c.py": "def f():\n    import pkg.a\n",
            "d.py": "from pkg import a, c\n",  # imports into a cycle: not part of it
        },
    )
    graph = import_graph(root)
    assert graph["pkg.d"] == {"pkg.a", "pkg.c"} and graph["pkg.sub.b"] == {"pkg.c"}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]


@pytest.mark.slow
def test_generate_and_the_estimators_do_not_import_lightning():
    """``generate`` loads only the sampling network (docs/training.md: about 2 s saved), and
    the estimators import only torch: neither pulls in Lightning, also not through
    ``gan_je.data.kinds``."""
    code = (
        "import sys, gan_je.generate, gan_je.estimators, gan_je.data.kinds; "
        "print(sorted(m for m in ('lightning', 'wandb') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
