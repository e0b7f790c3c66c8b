"""The ``gradcheck`` command.

Subcommands live in their own modules; each exposes ``add_parser(subparsers)`` that adds its
parser and sets ``func`` (a callable taking the parsed args and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

#: Modules that contribute subcommands, in the order ``--help`` lists them.
COMMANDS = (
    "gradcheck.cli._catalogue",  # list, verify
    "gradcheck.cli._report",  # latex, report
    "gradcheck.cli._bench",  # bench
    "gradcheck.cli._experiment",  # experiment
    "gradcheck.cli._accuracy",  # accuracy
    "gradcheck.cli._new",  # new
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradcheck",
        description="Verify the mathematics of backpropagation: SymPy derivations, JAX autodiff, high-precision truth.",
    )
    parser.add_argument("--version", action="version", version=f"gradcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (KeyError, ValueError, TypeError, FileNotFoundError, FileExistsError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"gradcheck {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
