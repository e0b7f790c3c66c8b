"""The one entry point that loads the catalogue: the only module of ``gradcheck`` that imports ``proofs``.

``proofs`` is built from the engine (it imports :mod:`gradcheck.catalogue`), so it is imported
when the registry is first asked for, never when the engine is imported.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["load_catalogue"]


def load_catalogue() -> None:
    """Import every module of ``proofs`` so that its claims register themselves."""
    import proofs  # at call time: proofs imports the catalogue, which must be whole first

    for mod in pkgutil.iter_modules(proofs.__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"proofs.{mod.name}")
