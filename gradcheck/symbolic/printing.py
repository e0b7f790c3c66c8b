r"""A claim as a paper shows it: its statement and derivation steps as LaTeX or Markdown.

Everything mathematical is printed from the SymPy objects of the claim's
:class:`~gradcheck.symbolic.Derivation` by :class:`LatexPrinter` (the notes' notation, see
:mod:`gradcheck.symbolic._printer`); the only hand-written text is prose (titles, notes), escaped
by the helpers of :mod:`gradcheck.symbolic._prose`.

This module sits below the catalogue: a claim is taken duck-typed, as any object with ``id``,
``title``, ``statement`` (prose), ``seeds``, ``expected`` and ``derivation(**params)`` (and,
optionally, the ``derive`` function whose parameters are checked before deriving).  Turning a
claim id into a claim belongs to the layers above (``gradcheck.render.claim_latex`` accepts ids).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

import sympy as sp

from ._printer import LEIBNIZ_FUNCTIONS, LatexPrinter, latex
from ._prose import ascii_math, md_prose, md_text, plain_prose, split_math, tex_code, tex_heading, tex_prose, tex_text
from ._unicode import unicode_prose
from .derivation import Derivation, Step

__all__ = [
    "LEIBNIZ_FUNCTIONS",
    "LatexPrinter",
    "latex",
    "label",
    "claim_latex",
    "claim_markdown",
    "tex_text",
    "tex_prose",
    "tex_heading",
    "tex_code",
    "plain_prose",
    "unicode_prose",
    "split_math",
    "ascii_math",
    "md_text",
    "md_prose",
]

_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_CLAIM_FIELDS = ("id", "title", "statement", "seeds", "expected", "derivation")


def _check_claim(claim) -> None:
    missing = [f for f in _CLAIM_FIELDS if not hasattr(claim, f)]
    if missing:
        raise TypeError(
            f"claim must be a Claim (an object with {', '.join(_CLAIM_FIELDS)}), got "
            f"{type(claim).__name__} without {', '.join(missing)}"
        )


def label(claim, suffix: str = "") -> str:
    """The LaTeX label of a claim: ``claim:softmax.jacobian`` (``:steps`` for its derivation)."""
    if not _ID.match(claim.id):
        raise ValueError(f"claim id {claim.id!r} cannot be a LaTeX label: use lowercase letters, digits, '_' and '.'")
    return f"claim:{claim.id}" + (f":{suffix}" if suffix else "")


def _derivation(claim, params: Mapping[str, Any]) -> Derivation:
    derive = getattr(claim, "derive", None)
    if callable(derive):  # unknown parameters are refused before any (possibly slow) derivation
        sig = inspect.signature(derive)
        takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        unknown = [k for k in params if k not in sig.parameters and not takes_any]
        if unknown:
            known = [k for k, p in sig.parameters.items() if p.kind is not p.VAR_KEYWORD] or "none"
            raise TypeError(f"{claim.id}: unknown parameter(s) {unknown}; its derivation takes {known}")
    d = claim.derivation(**params)
    if not isinstance(d, Derivation):
        raise TypeError(f"{claim.id}: derive() must return a Derivation, got {type(d).__name__}")
    return d


def _relations(claim, d: Derivation) -> list:
    stmt = d.statement
    items = list(stmt) if isinstance(stmt, (list, tuple)) else [stmt]
    if not items:
        raise ValueError(f"{claim.id}: the derivation's statement is empty")
    for s in items:
        if isinstance(s, (bool, sp.logic.boolalg.BooleanAtom)):
            raise ValueError(
                f"{claim.id}: the statement evaluated to {s}: build the relation with "
                "evaluate=False (sp.Eq(a, b, evaluate=False)) so that it can be shown"
            )
        if isinstance(s, str) or not isinstance(s, (sp.Basic, sp.MatrixBase)):
            raise TypeError(
                f"{claim.id}: the statement must be SymPy relation(s), not {type(s).__name__}; "
                "LaTeX is printed from SymPy objects, never typed in"
            )
    return items


_REL_OPS = {"==": "=", "!=": r"\neq", "<": "<", ">": ">", "<=": r"\leq", ">=": r"\geq"}


def _relation_parts(r) -> tuple[str, str, str]:
    """(lhs, operator, rhs) of a relation; ('', '', expr) for anything else."""
    if isinstance(r, sp.core.relational.Relational):
        return latex(r.lhs), _REL_OPS[r.rel_op], latex(r.rhs)
    return "", "", latex(r)


def _step_parts(claim, s: Step) -> tuple[str, str, str]:
    if not isinstance(s, Step):
        raise TypeError(f"{claim.id}: derivation steps must be Step objects, got {type(s).__name__}")
    rhs = rf"\text{{{tex_text(s.rhs)}}}" if isinstance(s.rhs, str) else None
    if s.lhs is None:
        return ("", "", rhs) if rhs else _relation_parts(s.rhs)
    return latex(s.lhs), "=", rhs or latex(s.rhs)


def _aligned(parts: tuple[str, str, str]) -> str:
    lhs, op, rhs = parts
    return f"{lhs} &{op} {rhs}" if op else f"&{rhs}"


def _inline(parts: tuple[str, str, str]) -> str:
    return " ".join(p for p in parts if p)


def claim_latex(claim, steps: bool = False, **params) -> str:
    r"""The claim as LaTeX.

    ``steps=False``: the statement, as the body of an ``equation`` (several relations become one
    ``aligned`` block), ending in ``\label{claim:<id>}``.  ``steps=True``: the derivation, as
    the body of an ``align``, one aligned line per :class:`Step` with its note as
    ``\intertext``, the last line labelled ``claim:<id>:steps``.  Both need ``amsmath``.
    ``params`` are passed to the claim's ``derive`` (e.g. ``depth=4``).
    """
    _check_claim(claim)
    lab = label(claim)
    d = _derivation(claim, params)
    if not steps:
        rels = _relations(claim, d)
        if len(rels) == 1:
            body = latex(rels[0])
        else:
            rows = " \\\\\n".join(_aligned(_relation_parts(r)) for r in rels)
            body = f"\\begin{{aligned}}\n{rows}\n\\end{{aligned}}"
        return f"{body}\n\\label{{{lab}}}"
    if not d.steps:
        raise ValueError(
            f"{claim.id}: its derivation has no steps to show; claim_latex({claim.id!r}) gives the statement"
        )
    lines = []
    for i, s in enumerate(d.steps):
        line = _aligned(_step_parts(claim, s))
        note = f"\\intertext{{{tex_prose(s.note)}}}\n" if s.note else ""
        end = f" \\label{{{label(claim, 'steps')}}}" if i == len(d.steps) - 1 else " \\notag \\\\"
        lines.append(note + line + end)
    return "\n".join(lines)


def claim_markdown(claim, *, sources_md: str | None = None, **params) -> str:
    """The claim as Markdown (GitHub math): title, prose statement, statement, derivation steps.
    ``sources_md``: the sources as the report cites them (default: each as written, as code)."""
    _check_claim(claim)
    d = _derivation(claim, params)
    rels = _relations(claim, d)
    out = [f"### `{claim.id}`: {md_prose(claim.title)}", ""]
    if claim.statement:
        out += [md_prose(claim.statement), ""]
    if len(rels) == 1:
        out += ["$$", latex(rels[0]), "$$", ""]
    else:
        body = " \\\\\n".join(_aligned(_relation_parts(r)) for r in rels)
        out += ["$$", "\\begin{aligned}", body, "\\end{aligned}", "$$", ""]
    if d.steps:
        out += ["Derivation (as SymPy computed it):", ""]
        for i, s in enumerate(d.steps, 1):
            math_ = _inline(_step_parts(claim, s))
            note = f" ({md_prose(s.note)})" if s.note else ""
            out.append(f"{i}. ${math_}${note}")
        out.append("")
    if sources_md is None:
        sources_md = ", ".join(f"`{s}`" for s in claim.seeds)  # the duck-typed field (_CLAIM_FIELDS)
    out += [f"Source notes: {sources_md}. Expected verdict: {', '.join(claim.expected)}.", ""]
    return "\n".join(out)
