"""The package is layered: a module imports only from its own subpackage or from lower layers (no upward imports),
so that environments, data and models never depend on agents, training or the command line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "wam"

#: Subpackages from the bottom up; a module may import from its own layer and the layers before it.
LAYERS = [
    {"constants", "losses", "io"},
    {"envs"},
    {"data"},
    {"models"},
    {"agents"},
    {"evaluation"},
    {"training"},
    {"bench"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def wam_imports(path: Path) -> list[tuple[int, str]]:
    """(line, first-level subpackage) of every ``wam.<subpackage>`` import in a file, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "wam" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def test_every_subpackage_has_a_layer():
    subpackages = {p.stem for p in SRC.iterdir() if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert subpackages - {"__init__"} == set(RANK), "add new subpackages to LAYERS"


@pytest.mark.parametrize("package", sorted(RANK))
def test_no_module_imports_from_a_higher_layer(package):
    root = SRC / package
    files = sorted(root.rglob("*.py")) if root.is_dir() else [SRC / f"{package}.py"]
    upward = [
        f"{path.relative_to(SRC)}:{line} imports wam.{target}"
        for path in files
        for line, target in wam_imports(path)
        if RANK.get(target, -1) > RANK[package]
    ]
    assert not upward, "upward imports (move the shared piece down a layer): " + "; ".join(upward)
