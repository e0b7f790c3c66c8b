"""Catalogues: which modules of claims are loaded, and loading them.

A catalogue is any importable module or package whose modules declare claims with
:func:`~gradcheck.catalogue.claim`.  Loading one imports it and every public submodule (names
not starting with ``_``; a private module is imported by its parent, as ``proofs.chain`` imports
``proofs.chain._window``), so that its claims register themselves.

Which catalogues, in order of precedence (:func:`resolve`):

1. named where the run is started: ``--catalogue MODULE`` (repeatable) on the command line, the
   ini option ``gradcheck_catalogues`` in pytest;
2. ``catalogues = [...]`` in the ``[tool.gradcheck]`` table of the nearest ``pyproject.toml``
   (from the current folder upward; the first one found decides);
3. the installed catalogues (:func:`default_catalogues`): every entry point of the group
   ``gradcheck.catalogues``.  ``proofs``, the catalogue of the notes, is declared there by this
   project's ``pyproject.toml``; nothing under ``gradcheck/`` imports it by name.

Named catalogues are exactly the ones loaded: the installed ones join only when named too.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

__all__ = [
    "ENTRY_POINT_GROUP",
    "CatalogueError",
    "default_catalogues",
    "from_pyproject",
    "resolve",
    "load",
    "load_catalogue",
    "loaded",
    "within",
]

#: The importlib.metadata entry-point group under which installed packages declare catalogues;
#: an entry point's value is the catalogue's module (``name = "package.module"``).
ENTRY_POINT_GROUP = "gradcheck.catalogues"

#: Every catalogue loaded in this process, with the public submodules it imported.
_LOADED: dict[str, tuple[str, ...]] = {}

#: Installed catalogues by ``sys.path``: entry points are read again when the path changes.
_INSTALLED: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}


class CatalogueError(ValueError):
    """A catalogue that cannot be found or loaded; the message names it and where it was named."""


def within(module: str, catalogues: Iterable[str]) -> bool:
    """Whether ``module`` is one of ``catalogues`` or inside one of them."""
    return any(module == c or module.startswith(c + ".") for c in catalogues)


def loaded() -> tuple[str, ...]:
    """The catalogues loaded in this process so far."""
    return tuple(_LOADED)


def _installed() -> tuple[tuple[str, str], ...]:
    key = tuple(sys.path)
    if key not in _INSTALLED:
        found: dict[str, str] = {}
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
            module = ep.value.split(":", 1)[0].strip()
            dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
            found.setdefault(module, f"entry point {ep.name!r} of {dist} (group {ENTRY_POINT_GROUP})")
        _INSTALLED.clear()
        _INSTALLED[key] = tuple(found.items())
    return _INSTALLED[key]


def default_catalogues() -> tuple[str, ...]:
    """The installed catalogues: the modules of the entry points of :data:`ENTRY_POINT_GROUP`."""
    return tuple(m for m, _ in _installed())


def _toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # a dependency on Python 3.10 (pyproject.toml)
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise CatalogueError(f"{path} is not valid TOML: {e}") from None


def from_pyproject(start: str | Path | None = None) -> tuple[list[str], Path] | None:
    """``[tool.gradcheck] catalogues`` of the nearest ``pyproject.toml`` above ``start`` (default: the
    current folder), with that file; ``None`` when the nearest one has no such key, or there is none."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        path = folder / "pyproject.toml"
        if path.is_file():
            table = _toml(path).get("tool", {}).get("gradcheck")
            if table is None or "catalogues" not in table:
                return None
            names = table["catalogues"]
            if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
                raise CatalogueError(
                    f"{path}: [tool.gradcheck] catalogues must be a list of module names, got {names!r}"
                )
            return [n.strip() for n in names], path
    return None


def resolve(
    named: Sequence[str] | None = None, named_by: str = "--catalogue", start: str | Path | None = None
) -> tuple[list[tuple[str, str]], bool]:
    """The catalogues of a run as (module, where it was named) pairs, and whether they were named.

    ``named``: what the command line or the ini file gives (``named_by`` says which), first;
    then ``[tool.gradcheck] catalogues`` of the nearest ``pyproject.toml`` above ``start``;
    then the installed catalogues (not named: the second value is False).
    """
    if isinstance(named, str):
        raise TypeError(f"{named_by} takes module names, got the string {named!r}")
    if named:
        return [(m, f"{named_by} {m}") for m in dict.fromkeys(named)], True
    config = from_pyproject(start)
    if config is not None:
        names, path = config
        return [(m, f"[tool.gradcheck] catalogues in {path}") for m in dict.fromkeys(names)], True
    return list(_installed()), False


def _load_one(module: str, named_by: str) -> None:
    if module in _LOADED and module in sys.modules:
        return
    if not module or not all(part.isidentifier() for part in module.split(".")):
        raise CatalogueError(f"{named_by}: {module!r} is not a module name (write it as Python imports it: pkg.module)")
    try:
        root = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise CatalogueError(
                f"{named_by}: could not import module {module!r} (no module named {e.name!r} on sys.path)"
            ) from None
        raise CatalogueError(f"{named_by}: importing module {module!r} failed: {_last_line()}") from None
    except Exception:
        raise CatalogueError(f"{named_by}: importing module {module!r} failed: {_last_line()}") from None
    names = [module]
    if hasattr(root, "__path__"):  # a package: its public submodules, recursively
        for info in pkgutil.walk_packages(root.__path__, prefix=module + ".", onerror=lambda name: None):
            if any(part.startswith("_") for part in info.name[len(module) + 1 :].split(".")):
                continue
            try:
                importlib.import_module(info.name)
            except Exception:
                raise CatalogueError(f"{named_by}: importing module {info.name!r} failed: {_last_line()}") from None
            names.append(info.name)
    _LOADED[module] = tuple(names)


def _last_line() -> str:
    return traceback.format_exc().strip().splitlines()[-1]


def load(catalogues: Sequence[str] | Sequence[tuple[str, str]] | None = None) -> tuple[str, ...]:
    """Import ``catalogues`` (module names, or (module, where it was named) pairs; ``None``: the
    installed catalogues) and their public submodules; return their module names.

    Raises :class:`CatalogueError` naming the module, and where it was named, when one cannot be
    imported (or its claims clash with another module's).
    """
    if catalogues is None:
        pairs = list(_installed())
    elif isinstance(catalogues, str):
        raise TypeError(f"catalogues must be a sequence of module names, got the string {catalogues!r}")
    else:
        pairs = [c if isinstance(c, tuple) else (c, f"catalogue {c}") for c in catalogues]
    for module, named_by in pairs:
        _load_one(module, named_by)
    return tuple(m for m, _ in pairs)


def load_catalogue(catalogues: Sequence[str] | None = None) -> tuple[str, ...]:
    """Load ``catalogues`` (default: the installed ones) so that their claims register; see :func:`load`."""
    return load(catalogues)
