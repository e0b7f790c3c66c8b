"""What every subcommand shares: the console, the catalogues, and the options of a run of claims."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path

from rich.console import Console

from .._profiles import PROFILES
from ..catalogue import load, resolve
from ..catalogue._load import from_pyproject

#: Columns of a console that writes to a file or a pipe (80 hid three columns of the results table).
CONSOLE_WIDTH = 140


def console() -> Console:
    """A console as wide as the terminal, or :data:`CONSOLE_WIDTH` columns ($COLUMNS) into a file or a pipe."""
    c = Console()
    return c if c.is_terminal else Console(width=int(os.environ.get("COLUMNS", CONSOLE_WIDTH)))


def add_run_options(p) -> None:
    """``--profile`` (choices read from the profiles) and ``--seed``."""
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="how many points to check (default: $HYPOTHESIS_PROFILE or 'default')",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")


def add_catalogue_option(p) -> None:
    """``--catalogue MODULE``, repeatable."""
    p.add_argument(
        "--catalogue",
        action="append",
        default=None,
        metavar="MODULE",
        help="a module or package of claims to load (repeatable; imported from the current folder "
        "as `python -m` would). Default: [tool.gradcheck] catalogues in pyproject.toml, else the "
        "installed catalogues (entry points 'gradcheck.catalogues', which include proofs). Named "
        "catalogues are the only ones loaded: name proofs too to add the built-in catalogue",
    )


def _on_path(folder: Path) -> None:
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def catalogues(args) -> tuple[list[str], bool]:
    """Load the catalogues of a command (``--catalogue``, else pyproject, else installed).

    Returns their module names and whether they were named (by ``--catalogue`` or pyproject.toml)
    rather than installed.  A module that cannot be imported is an error naming it, raised here,
    before any work.
    """
    named = getattr(args, "catalogue", None)
    if named:
        _on_path(Path.cwd())  # a module in the current folder imports, as with `python -m`
    else:
        config = from_pyproject()
        if config is not None:
            _on_path(config[1].parent)
    pairs, was_named = resolve(named, "--catalogue")
    load(pairs)
    return [m for m, _ in pairs], was_named


def docstring_title(module: str) -> str | None:
    """The first line of a module's docstring (a catalogue's title), or None."""
    doc = inspect.getdoc(importlib.import_module(module))
    line = doc.strip().splitlines()[0].strip().rstrip(".") if doc and doc.strip() else ""
    return line or None
