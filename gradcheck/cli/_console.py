"""What every subcommand shares: the console, and the options of a run of claims."""

from __future__ import annotations

import os

from rich.console import Console

from .._profiles import PROFILES

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
