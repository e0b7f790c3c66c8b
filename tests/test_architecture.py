"""The layers of docs/architecture.md, enforced: every import under gradcheck/ (function-level
imports included) goes to the importer's own layer or a layer below it, nothing under gradcheck/
imports ``proofs`` (it is found as a catalogue, by its entry point), and no module above 400
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


def _imports_of_proofs(path: Path) -> list[str]:
    """Where ``path`` imports ``proofs``: import statements, and ``import_module``/``__import__``
    of a literal name (the engine finds the catalogue by its entry point, never by name)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names if n.split(".")[0] == "proofs"]
    return found


def test_nothing_under_gradcheck_imports_proofs():
    bad = [hit for path in _modules() for hit in _imports_of_proofs(path)]
    assert not bad, "\n".join(bad)


def test_the_proofs_check_sees_every_way_to_import_it(tmp_path, monkeypatch):
    fake = tmp_path / "gradcheck"
    fake.mkdir()
    (fake / "m.py").write_text(
        "import importlib\n"
        "def f():\n"
        "    from proofs import sigmoid\n"
        "    import proofs.chain\n"
        "    importlib.import_module('proofs')\n"
        "    __import__('proofs.softmax')\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    hits = _imports_of_proofs(fake / "m.py")
    assert [h.split(":")[1].split()[0] for h in hits] == ["3", "4", "5", "6"]


def test_proofs_is_declared_as_an_installed_catalogue():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="gradcheck.catalogues") if e.name == "proofs"]
    assert ep.value == "proofs"


@pytest.mark.parametrize("folder", ["gradcheck", "proofs"])
def test_no_module_above_400_lines(folder):
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted((ROOT / folder).rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, f"modules above 400 lines: {long}"
