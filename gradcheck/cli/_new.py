"""``gradcheck new claim NAME``: a module of claims to start from, which passes ``verify`` as written.

The file is written whole (a temporary file in the same folder, then a hard link to the final
name, which fails if the name exists), so an existing file is never overwritten, even by a
second command racing this one.
"""

from __future__ import annotations

import contextlib
import keyword
import os
import re
import tempfile
from pathlib import Path

__all__ = ["TEMPLATE", "add_parser", "write_new"]

#: The module ``gradcheck new claim NAME`` writes; ``{name}`` is NAME.
TEMPLATE = '''"""{name}: derivations of my own, verified by gradcheck.

gradcheck verify --catalogue {name}     # run the claims of this module
gradcheck report --catalogue {name} --out report   # report.tex/.pdf, report.md, results.json
"""

import jax
import sympy as sp

from gradcheck import Derivation, Settings, Step, claim, evidence

x = sp.Symbol("x", real=True)


# The id of a claim is <module>.<function>: this one is {name}.softplus_derivative.
@claim(
    title="The derivative of the softplus is the logistic sigmoid",
    statement=r"$\\frac{{d}}{{dx}} \\log(1 + e^{{x}}) = \\frac{{1}}{{1 + e^{{-x}}}}$ for every real $x$",
    # free text, or BibTeX keys of the file given to `gradcheck report --bib refs.bib`
    sources=("Dugas et al. 2001, Incorporating second-order functional knowledge",),
    expected=("proved", "verified"),
)
def softplus_derivative() -> Derivation:
    """The derive half: symbolic only, every formula computed by SymPy."""
    softplus = sp.log(1 + sp.exp(x))
    derived = sp.diff(softplus, x)  # the derivation: SymPy differentiates
    stated = 1 / (1 + sp.exp(-x))  # what the paper states
    return Derivation(
        statement=sp.Eq(sp.Derivative(softplus, x), stated),
        steps=[Step(sp.Derivative(softplus, x), derived, "sympy.diff of the definition")],
        objects={{"derived": derived, "stated": stated}},
    )


@softplus_derivative.verifier
def _(d: Derivation, s: Settings):
    """The verify half: each finding establishes a verdict (or fails, saying what failed)."""
    # the identity: the derived form minus the stated one simplifies to 0 ("proved")
    yield evidence.identity(d["derived"], d["stated"], "sympy.diff(log(1 + exp(x))) = 1/(1 + exp(-x))")
    # the check: JAX's softplus and its derivative against the SymPy form ("verified")
    yield evidence.checked(
        jax.nn.softplus,
        lambda x: sp.log(1 + sp.exp(x)),
        "jax.nn.softplus and its derivative agree with log(1 + exp(x))",
        s,
        shapes=[()],
        domain=(-30.0, 30.0),
    )
'''

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "new",
        help="write a module of claims to start from",
        description="Write NAME.py, a module with one claim (a SymPy derivation, an identity and a "
        "check against JAX) that `gradcheck verify --catalogue NAME` passes as written. An existing "
        "file is never overwritten.",
    )
    p.add_argument("kind", choices=["claim"], help="what to write (a module of claims)")
    p.add_argument("name", metavar="NAME", help="the module's name, e.g. mypaper (writes mypaper.py)")
    p.add_argument("--dir", default=".", metavar="DIR", help="folder to write NAME.py into (default: here)")
    p.set_defaults(func=cmd_new)


def write_new(name: str, folder: str | os.PathLike[str] = ".") -> Path:
    """Write ``folder/name.py`` from :data:`TEMPLATE`; a ValueError names a bad NAME, FileExistsError a taken file."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ValueError(
            f"NAME must be a module name in lowercase letters, digits and _ (it becomes the claims' topic), got {name!r}"
        )
    target = Path(folder) / f"{name}.py"
    if not target.parent.is_dir():
        raise ValueError(f"--dir must be an existing folder, got {str(target.parent)!r}")
    if target.exists():
        raise FileExistsError(f"{target} exists; not overwriting it (choose another NAME or remove the file)")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(TEMPLATE.format(name=name))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, target)  # atomic, and fails where the name exists: never an overwrite
        except FileExistsError:
            raise FileExistsError(
                f"{target} exists; not overwriting it (choose another NAME or remove the file)"
            ) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return target


def cmd_new(args) -> int:
    target = write_new(args.name, args.dir)
    hint = "" if Path(args.dir).resolve() == Path.cwd().resolve() else f" (from {args.dir})"
    print(f"wrote {target}; run its claims with: gradcheck verify --catalogue {args.name}{hint}")
    return 0
