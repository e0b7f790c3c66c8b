"""The layers of docs/architecture.md, enforced: every import under gradcheck/ (function-level
imports included) goes to the importer's own layer or a layer below it, and no module above 400
lines."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "gradcheck"

#: Bottom to top; a module's layer is its first path component below gradcheck/.
LAYERS = [
    {"_x64", "_files", "_profiles", "_environment", "sharding"},
    {"symbolic"},
    {"models"},
    {"oracles"},
    {"_check"},
    {"catalogue"},
    {"render"},
    {"experiments", "bench"},
    {"cli", "pytest_plugin", "__init__"},  # entry points, and the public API they may use
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules():
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path):
    """(line, absolute dotted name) of every import in the file, relative ones resolved."""
    here = _dotted(path)
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if node.module is None or mod == "gradcheck":  # from . import x: x is the module
                for a in node.names:
                    yield node.lineno, f"{mod}.{a.name}"
            else:
                yield node.lineno, mod


def _layer(dotted: list[str]) -> str:
    return dotted[1] if len(dotted) > 1 else "__init__"


def test_every_module_is_in_a_layer():
    unknown = sorted({_layer(_dotted(p)) for p in _modules()} - set(RANK))
    assert not unknown, f"modules outside every layer of docs/architecture.md: {unknown}"


def test_imports_run_down_the_layers():
    bad = []
    for path in _modules():
        src = _layer(_dotted(path))
        for line, name in _imports(path):
            parts = name.split(".")
            if parts[0] == "proofs":
                if path != PKG / "catalogue" / "_load.py":
                    bad.append(f"{path.relative_to(ROOT)}:{line} imports {name} (only catalogue/_load.py may)")
                continue
            if parts[0] != "gradcheck":
                continue
            dst = _layer(parts) if len(parts) > 1 else "__init__"
            if src in RANK and dst in RANK and RANK[dst] > RANK[src]:
                bad.append(f"{path.relative_to(ROOT)}:{line} ({src}) imports {name} ({dst}, a layer above)")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    # the test above must be able to fail: a leaf importing the engine is caught
    fake = tmp_path / "gradcheck"
    fake.mkdir()
    (fake / "_x64.py").write_text("def f():\n    from ._check import check\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PKG", fake)
    with pytest.raises(AssertionError, match="_x64.py:2"):
        test_imports_run_down_the_layers()


@pytest.mark.parametrize("folder", ["gradcheck", "proofs"])
def test_no_module_above_400_lines(folder):
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / folder).rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, f"modules above 400 lines: {long}"
