r"""LaTeX, Markdown and JSON: a claim as a paper shows it, and the record of how it was checked.

Everything mathematical is printed from the SymPy objects of the claim's
:class:`~gradcheck.claims.Derivation` by :class:`LatexPrinter`; the only hand-written text is
prose (titles, notes, the verification record).  The printer departs from SymPy's default where
the notes (and textbooks) write things differently:

* the derivative of a one-argument undefined function is primed at its argument:
  ``Subs(Derivative(sigma(xi), xi), xi, z_1)`` and ``Derivative(sigma(z), z)`` print as
  ``\sigma'(z_{1})`` and ``\sigma'(z)``, not as a ``d/d\xi`` fraction with a bar;
* the derivative of a cost (``C``, ``L``, ``J``, ``E``, ``Loss``), of a function of several
  arguments, of a symbol or of an indexed entry is a partial derivative at the point:
  ``\frac{\partial C}{\partial a_{4}}``, ``\frac{\partial y_{i}}{\partial a_{j}}``;
* undefined functions take plain parentheses (``\sigma(w_{1} a_{0} + b_{1})``), indexed entries
  no braces (``y_{i}``, not ``{y}_{i}``), and a name with two subscripts (``W_1_{0,1}``, from
  ``array_symbols("W_1", ...)``) nests them (``{W_{1}}_{0,1}``) instead of a LaTeX error;
* a product shows its monomials before its sums (``\sigma(z) (1 - \sigma(z))``,
  ``y_{i} (\delta_{ij} - y_{j})``), and a sum does not open with a minus sign when a term is
  positive; a product built with ``evaluate=False`` keeps its author's order;
* a product whose factors carry layer numbers (``w_2``, ``z_3``) is printed in layer order,
  weights before the activation derivative of their layer and the cost derivative last, so the
  chain rule reads as the notes write it:
  ``\sigma'(z_{1}) w_{2} \sigma'(z_{2}) w_{3} \sigma'(z_{3}) w_{4} \sigma'(z_{4}) \frac{\partial C}{\partial a_{4}}``.

A symbol whose name is already LaTeX (``Symbol(r"\frac{\partial C}{\partial b_1}")``) prints
verbatim, as SymPy does.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import inspect
import json
import math
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter as _SympyLatexPrinter

from .catalogue import Claim, ClaimResult, Derivation, Finding, Step, get

__all__ = [
    "LatexPrinter",
    "latex",
    "label",
    "claim_latex",
    "claim_markdown",
    "reproduce_command",
    "finding_record",
    "result_record",
    "results_document",
    "package_versions",
    "verification_latex",
    "verification_markdown",
    "tex_text",
    "tex_prose",
    "plain_prose",
    "split_math",
    "LEIBNIZ_FUNCTIONS",
    "topic_intro",
    "claim_entry",
    "section_titles",
    "report_latex",
    "report_markdown",
]

#: Undefined functions whose derivatives print as partial derivatives (``\partial C/\partial a``)
#: rather than primes: costs and losses, as the notes write them.
LEIBNIZ_FUNCTIONS = frozenset({"C", "L", "J", "E", "Loss", "ell"})

_PRIMES = {1: "'", 2: "''", 3: "'''"}
_LAYER_INDEX = re.compile(r"_\{?(\d+)\}?(?:\^.*)?$")
_BIG = ("\\frac", "\\sum", "\\prod", "\\int", "\\left", "\\begin")
_WORD_NAME = re.compile(r"^[A-Za-z]{2,}(_[A-Za-z]+)+$")
_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")


def _top_level_split(name: str, sep: str) -> list[str]:
    """``name`` split at ``sep`` where it is outside braces."""
    parts, depth, cur = [], 0, []
    for ch in name:
        depth += (ch == "{") - (ch == "}")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    return parts + ["".join(cur)]


class LatexPrinter(_SympyLatexPrinter):
    """SymPy's LaTeX printer with the notation of the notes (see the module docstring)."""

    printmethod = "_gradcheck_latex"

    # -- undefined functions: sigma(z), not \sigma{\left(z \right)} ------------------------
    def _call(self, name: str, args: Sequence[Any]) -> str:
        inner = ", ".join(self._print(a) for a in args)
        if any(b in inner for b in _BIG):
            return rf"{name}\left({inner}\right)"
        return f"{name}({inner})"

    def _print_Function(self, expr, exp=None):
        if isinstance(expr, AppliedUndef):
            tex = self._call(self._hprint_Function(expr.func.__name__), expr.args)
            return tex if exp is None else f"{tex}^{{{exp}}}"
        return super()._print_Function(expr, exp)

    def _hprint_Function(self, func: str) -> str:
        # leaky_relu is a name, not leaky with subscript relu
        if _WORD_NAME.match(func):
            return r"\operatorname{%s}" % func.replace("_", r"\_")
        return super()._hprint_Function(func)

    # infinities: without these the subclass falls back to \text{Infinity}
    def _print_Infinity(self, expr):
        return r"\infty"

    def _print_NegativeInfinity(self, expr):
        return r"-\infty"

    def _print_Symbol(self, expr, style="plain"):
        # a name that holds a LaTeX command is LaTeX already: verbatim.  (SymPy would split
        # r"w_j \sigma'(z_j)" at its first "_" and print w_{j \sigma'(z_j)}, swallowing the factor.)
        if "\\" in expr.name and "{" not in expr.name:
            return expr.name
        # SymPy prints a name with braces verbatim: array_symbols("W_1", (2, 2)) names entries
        # W_1_{0,0}, a double subscript that LaTeX refuses; nest it as {W_{1}}_{0,0}
        parts = _top_level_split(expr.name, "_")
        # (a name with a backslash is LaTeX already, \prod_{i} included: printed verbatim)
        if "{" in expr.name and "\\" not in expr.name and len(parts) >= 3 and all(parts):
            tex = super()._print_Symbol(sp.Symbol(parts[0]), style)
            for k, p in enumerate(parts[1:]):
                inner = p[1:-1] if p.startswith("{") and p.endswith("}") else p
                tex = f"{tex}_{{{inner}}}" if k == 0 else f"{{{tex}}}_{{{inner}}}"
            return tex
        return super()._print_Symbol(expr, style)

    def _print_Indexed(self, expr):
        # y_{i}, not {y}_{i}: braces around the base only when it has sub/superscripts itself
        base = self._print(expr.base.label)
        if re.fullmatch(r"\\?[A-Za-z]+", base):
            return f"{base}_{{{','.join(self._print(i) for i in expr.indices)}}}"
        return super()._print_Indexed(expr)

    # -- derivatives: primes for functions of one variable, partials for costs -------------
    def _fname(self, f) -> str:
        if isinstance(f, (sp.Symbol, sp.Indexed)):
            return self._print(f)
        if isinstance(f, AppliedUndef):
            return self._hprint_Function(f.func.__name__)
        return self._print(f.func)  # \tanh

    def _primed(self, f, order: int, point) -> str:
        mark = _PRIMES.get(order, f"^{{({order})}}")
        return self._call(self._fname(f) + mark, [point])

    def _partial(self, f, variable_count, rename: Mapping | None = None) -> str:
        rename = rename or {}
        total = sum(n for _, n in variable_count)
        den = " ".join(
            rf"\partial {self._print(rename.get(x, x))}" + (f"^{{{n}}}" if n > 1 else "")
            for x, n in variable_count
        )
        num = r"\partial" + (f"^{{{total}}}" if total > 1 else "")
        return rf"\frac{{{num} {self._fname(f)}}}{{{den}}}"

    def _notes_derivative(self, d: sp.Derivative, rename: Mapping | None = None) -> str | None:
        r"""The notes' notation for a derivative, or None where SymPy's own applies.

        ``f(x)`` one-argument (sigma, tanh, an undefined f) differentiated in x: f'(x).
        A cost ``C(a, ...)``, a function of several arguments, or a plain symbol ``C``:
        \partial C / \partial a.
        """
        f = d.expr
        if isinstance(f, (sp.Symbol, sp.Indexed)):
            return self._partial(f, d.variable_count, rename)
        if not isinstance(f, sp.Function) or not all(isinstance(a, (sp.Symbol, sp.Indexed)) for a in f.args):
            return None
        if not all(x in f.args for x, _ in d.variable_count):
            return None
        undefined = isinstance(f, AppliedUndef)
        if len(f.args) == 1 and not (undefined and f.func.__name__ in LEIBNIZ_FUNCTIONS):
            order = sum(n for _, n in d.variable_count)
            point = (rename or {}).get(f.args[0], f.args[0])
            return self._primed(f, order, point)
        return self._partial(f, d.variable_count, rename) if undefined else None

    def _print_Derivative(self, expr):
        tex = self._notes_derivative(expr)
        return tex if tex is not None else super()._print_Derivative(expr)

    def _print_Subs(self, subs):
        expr, old, new = subs.args
        if isinstance(expr, sp.Derivative) and isinstance(expr.expr, sp.Function):
            f = expr.expr
            primed = len(f.args) == 1 and not (isinstance(f, AppliedUndef) and f.func.__name__ in LEIBNIZ_FUNCTIONS)
            # a partial derivative "at a_4" reads as d/da_4 only when the point is a symbol
            if primed or all(isinstance(v, sp.Symbol) for v in new):
                tex = self._notes_derivative(expr, dict(zip(old, new)))
                if tex is not None:
                    return tex
        return super()._print_Subs(subs)

    # -- sums: SymPy's order, but not opening with a minus when a term is positive ---------
    def _print_Add(self, expr, order=None):
        terms = list(self._as_ordered_terms(expr, order=order))
        if terms and terms[0].could_extract_minus_sign():
            pos = next((i for i, t in enumerate(terms) if not t.could_extract_minus_sign()), None)
            if pos is not None:  # delta_ij - y_j, not - y_j + delta_ij
                terms.insert(0, terms.pop(pos))
                return super()._print_Add(sp.Add(*terms, evaluate=False), order="none")
        return super()._print_Add(expr, order=order)

    # -- products in layer order -----------------------------------------------------------
    @staticmethod
    def _layer(factor) -> int | None:
        """The largest integer subscript among the factor's symbols (w_2 -> 2), or None."""
        idx = []
        for s in factor.free_symbols:
            m = _LAYER_INDEX.search(s.name)
            if m:
                idx.append(int(m.group(1)))
        return max(idx) if idx else None

    @staticmethod
    def _rank(factor) -> int:
        # within a layer: the weight, then the activation's derivative, then the cost's
        if factor.is_Symbol or (factor.is_Pow and factor.base.is_Symbol):
            return 0
        for node in sp.preorder_traversal(factor):
            if isinstance(node, AppliedUndef) and node.func.__name__ in LEIBNIZ_FUNCTIONS:
                return 2
        return 1

    def _print_Mul(self, expr):
        if not isinstance(expr, sp.Mul) or not expr.is_commutative:
            return super()._print_Mul(expr)
        coeff, factors = expr.as_coeff_mul()
        if not coeff.is_Integer or any(f.is_Pow and f.exp.is_negative for f in factors):
            return super()._print_Mul(expr)  # fractions: SymPy's \frac layout
        if expr.args != sp.Mul(*expr.args).args:
            # built with evaluate=False: the author's order is the one to show
            return self._join(coeff, [a for a in expr.args if a != coeff])
        factors = list(sp.Mul(*factors).as_ordered_factors()) if len(factors) > 1 else list(factors)
        layers = [self._layer(f) for f in factors]
        by_layer = len({x for x in layers if x is not None}) >= 2
        # monomials first, sums (printed in brackets) last: sigma(z) (1 - sigma(z)), y_i (delta_ij - y_j)
        keyed = sorted(
            range(len(factors)),
            key=lambda i: (
                factors[i].is_Add,
                (-1 if layers[i] is None else layers[i]) if by_layer else 0,
                self._rank(factors[i]) if by_layer else 0,
                i,
            ),
        )
        return self._join(coeff, [factors[i] for i in keyed])

    def _join(self, coeff, factors) -> str:
        parts = []
        for pos, f in enumerate(factors):
            tex = self._print(f)
            if self._needs_mul_brackets(f, first=pos == 0, last=pos == len(factors) - 1):
                tex = rf"\left({tex}\right)"
            parts.append(tex)
        head = {1: "", -1: "- "}.get(int(coeff), f"{int(coeff)} " if coeff > 0 else f"- {-int(coeff)} ")
        return head + " ".join(parts)

    # -- containers a Step may hold --------------------------------------------------------
    def _print_list(self, expr):
        return r"\left[ " + ", ".join(self._print(e) for e in expr) + r"\right]"

    def _print_str(self, expr):
        return rf"\text{{{tex_text(expr)}}}"


_PRINTER_SETTINGS = {"mul_symbol": None, "mat_delim": "(", "mat_str": "matrix"}


def latex(obj) -> str:
    """LaTeX of a SymPy object (or a list, tuple, number, bool of them) in the notes' notation."""
    if isinstance(obj, bool):
        raise TypeError("expected a SymPy object, got a Python bool: a relation built with Eq(...) "
                        "that evaluated to True/False? build it with evaluate=False")
    return LatexPrinter(_PRINTER_SETTINGS).doprint(obj)


# --- prose -------------------------------------------------------------------------------

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "%": r"\%", "_": r"\_", "^": r"\^{}", "~": r"\~{}",
    # with the default OT1 font encoding <, > and | are not in the text font
    "<": r"$<$", ">": r"$>$", "|": r"$|$",
    # what authors type in prose; anything else outside ASCII is shown as its code point
    "≤": r"$\leq$", "≥": r"$\geq$", "≠": r"$\neq$", "≈": r"$\approx$", "±": r"$\pm$",
    "×": r"$\times$", "·": r"$\cdot$", "→": r"$\to$", "∞": r"$\infty$", "σ": r"$\sigma$",
    "δ": r"$\delta$", "Σ": r"$\Sigma$", "α": r"$\alpha$", "λ": r"$\lambda$", "′": "'",
    "–": "--", "—": "---", "’": "'", "‘": "`", "“": "``", "”": "''", "…": r"\dots{}",
}


def tex_text(s: str) -> str:
    """Escape prose for LaTeX text mode (pdflatex, default fonts)."""
    out = []
    for ch in str(s):
        if ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(rf"\texttt{{U+{ord(ch):04X}}}")
    return "".join(out)


#: ``$...$`` in prose: inline math, written as LaTeX source (a ``\$`` is a dollar sign).
_MATH = re.compile(r"(?<!\\)\$(.+?)(?<!\\)\$", re.S)


def split_math(s: str) -> list[tuple[bool, str]]:
    """``s`` as (is_math, text) pieces: the ``$...$`` spans, and the ASCII maths of the prose
    between them (``sigma'(z_j)``, ``25^(L-1)``, ``dC/db_1``) typeset by :func:`ascii_math`."""
    s = str(s)
    out, pos = [], 0
    for m in _MATH.finditer(s):
        if m.start() > pos:
            out += _ascii_pieces(s[pos:m.start()])
        out.append((True, m.group(1)))
        pos = m.end()
    if pos < len(s):
        out += _ascii_pieces(s[pos:])
    return out


# --- ASCII maths in prose written by the checks (numbers they computed, in words) ---------------
_GREEK = ("sigma", "Sigma", "alpha", "delta", "Delta", "lambda", "epsilon", "xi", "tanh")
_SUB = r"(?:\{[^{}\s]*\}|[A-Za-z0-9]+)"
_SUP = r"(?:\([^()\s]*\)|\{[^{}\s]*\}|-?[A-Za-z0-9]+)"
#: a token that is maths: a primed or applied activation, a subscript on a one-letter name, a power,
#: a Leibniz quotient
_MATHY = re.compile(
    r"(?:\b(?:sigma|Sigma|tanh|relu|f|G)'+\("
    r"|(?<![A-Za-z0-9_.])[A-Za-z]_" + _SUB +
    r"|[A-Za-z0-9)|]\^" + _SUP +
    r"|\bd(?:C|Loss|[a-z])/d[a-zA-Z])")
_TOKEN = re.compile(r"\S+")


def _tex_token(t: str) -> str:
    t = re.sub(r"\bd(C|Loss|[a-z](?:_" + _SUB + r")?)/d([A-Za-z](?:_" + _SUB + r")?)",
               lambda m: rf"\partial {m.group(1)}/\partial {m.group(2)}", t)
    t = re.sub(r"\bLoss\b", r"\\mathrm{Loss}", t)
    t = re.sub(r"\b(" + "|".join(_GREEK) + r")\b", r"\\\1", t)
    t = re.sub(r"_(\{[^{}\s]*\}|[A-Za-z0-9]+)",
               lambda m: "_" + (m.group(1) if m.group(1).startswith("{") else "{" + m.group(1) + "}"), t)
    t = re.sub(r"\^\(([^()\s]*)\)", r"^{\1}", t)
    t = re.sub(r"\^(-?[A-Za-z0-9]+)", r"^{\1}", t)
    return t.replace(">=", r"\geq ").replace("<=", r"\leq ").replace("!=", r"\neq ")


def ascii_math(s: str) -> str:
    """Prose with its ASCII maths as ``$...$``: each whitespace-separated token that is maths
    (:data:`_MATHY`), with the operators and numbers between such tokens, becomes one span."""
    return "".join(f"${t}$" if m else t for m, t in _ascii_pieces(s))


def _ascii_pieces(s: str) -> list[tuple[bool, str]]:
    toks = list(_TOKEN.finditer(s))
    mathy = [bool(_MATHY.search(t.group())) for t in toks]
    glue = re.compile(r"^[-+=<>/*|()0-9.]+$|^(?:<=|>=|!=)$")
    out, pos, i = [], 0, 0
    while i < len(toks):
        if not mathy[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(toks) and (mathy[j + 1] or glue.match(toks[j + 1].group())):
            j += 1
        while j > i and not mathy[j] and not re.match(r"^[0-9.]+[.,;:]?$", toks[j].group()):
            j -= 1  # a trailing operator or bracket is not part of it
        a, b = toks[i].start(), toks[j].end()
        span = s[a:b]
        # punctuation that ends the sentence stays prose; brackets that do not balance too
        lead = re.match(r"^['(\[]*", span).group()
        if lead and (lead.count("'") or span.count("(") > span.count(")")):
            a += len(lead)
            span = span[len(lead):]
        trail = re.search(r"'?[.,;:]*$", span).group()
        while span.count(")") > span.count("(") and span[:len(span) - len(trail)].endswith(")"):
            trail = ")" + trail
            span = span[:-len(trail)] + trail
        body = span[:len(span) - len(trail)] if trail else span
        if a > pos:
            out.append((False, s[pos:a]))
        out.append((True, _tex_token(body)))
        if trail:
            out.append((False, trail))
        pos = b
        i = j + 1
    if pos < len(s):
        out.append((False, s[pos:]))
    return out


def tex_prose(s: str) -> str:
    """Prose for LaTeX text mode: ``$...$`` spans kept as math, everything else escaped."""
    return "".join(f"${t}$" if math_ else tex_text(t.replace(r"\$", "$")) for math_, t in split_math(s))


def plain_prose(s: str) -> str:
    r"""Prose with its math flattened to ASCII (PDF bookmarks, terminals, image alt text):
    ``$\left\|\frac{\partial C}{\partial b^{l}}\right\|$`` becomes ``||partial C/partial b^l||``."""
    def flat(t: str) -> str:
        t = re.sub(r"\\(left|right|mathrm|operatorname|text)", "", t)
        t = re.sub(r"\\[,;!]", " ", t)
        t = re.sub(r"([_^])\{([^{}]*)\}", r"\1\2", t)
        t = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"\1/\2", t)
        t = re.sub(r"\\([A-Za-z]+) ?", r"\1 ", t).replace("\\|", "||")
        return re.sub(r" +", " ", t.replace("{", "").replace("}", "")).strip()
    return "".join(flat(t) if math_ else t.replace(r"\$", "$") for math_, t in split_math(s))


def _tex_heading(s: str) -> str:
    """A section title: math typeset, and a plain-text version for the PDF's bookmarks."""
    tex = tex_prose(s)
    if tex == tex_text(s):
        return tex
    return rf"\texorpdfstring{{{tex}}}{{{tex_text(plain_prose(s))}}}"


def _tex_code(s: str) -> str:
    r"""Escape a command line for \texttt so that it survives copy and paste from the PDF.

    ``\_`` is drawn as a rule, which a PDF reader copies as a space: the typewriter font's own
    underscore glyph (``\char95``) is used instead; ``-{}`` keeps ``--`` two hyphens.
    """
    return r"\texttt{" + tex_text(s).replace("-", "-{}").replace(r"\_", r"\char95{}") + "}"


_MD_SPECIAL = re.compile(r"([\\`*_<>\[\]|])")


def _md_text(s: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", str(s))


def _md_prose(s: str) -> str:
    """Prose for GitHub Markdown: ``$...$`` spans kept as GitHub renders math, the rest escaped."""
    return "".join(f"${t}$" if math_ else _md_text(t.replace(r"\$", "$")) for math_, t in split_math(s))


# --- claims ------------------------------------------------------------------------------

def _claim(claim) -> Claim:
    if isinstance(claim, Claim):
        return claim
    if isinstance(claim, str):
        return get(claim)  # KeyError naming the id and how to list them
    raise TypeError(f"claim must be a Claim or a claim id such as 'softmax.jacobian', got {type(claim).__name__}")


def label(claim, suffix: str = "") -> str:
    """The LaTeX label of a claim: ``claim:softmax.jacobian`` (``:steps`` for its derivation)."""
    c = _claim(claim)
    if not _ID.match(c.id):
        raise ValueError(f"claim id {c.id!r} cannot be a LaTeX label: use lowercase letters, digits, '_' and '.'")
    return f"claim:{c.id}" + (f":{suffix}" if suffix else "")


def _derivation(claim: Claim, params: Mapping[str, Any]) -> Derivation:
    sig = inspect.signature(claim.derive)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [k for k in params if k not in sig.parameters and not takes_any]
    if unknown:
        known = [k for k, p in sig.parameters.items() if p.kind is not p.VAR_KEYWORD] or "none"
        raise TypeError(f"{claim.id}: unknown parameter(s) {unknown}; its derivation takes {known}")
    d = claim.derivation(**params)
    if not isinstance(d, Derivation):
        raise TypeError(f"{claim.id}: derive() must return a Derivation, got {type(d).__name__}")
    return d


def _relations(claim: Claim, d: Derivation) -> list:
    stmt = d.statement
    items = list(stmt) if isinstance(stmt, (list, tuple)) else [stmt]
    if not items:
        raise ValueError(f"{claim.id}: the derivation's statement is empty")
    for s in items:
        if isinstance(s, (bool, sp.logic.boolalg.BooleanAtom)):
            raise ValueError(f"{claim.id}: the statement evaluated to {s}: build the relation with "
                             "evaluate=False (sp.Eq(a, b, evaluate=False)) so that it can be shown")
        if isinstance(s, str) or not isinstance(s, (sp.Basic, sp.MatrixBase)):
            raise TypeError(f"{claim.id}: the statement must be SymPy relation(s), not {type(s).__name__}; "
                            "LaTeX is printed from SymPy objects, never typed in")
    return items


_REL_OPS = {"==": "=", "!=": r"\neq", "<": "<", ">": ">", "<=": r"\leq", ">=": r"\geq"}


def _relation_parts(r) -> tuple[str, str, str]:
    """(lhs, operator, rhs) of a relation; ('', '', expr) for anything else."""
    if isinstance(r, sp.core.relational.Relational):
        return latex(r.lhs), _REL_OPS[r.rel_op], latex(r.rhs)
    return "", "", latex(r)


def _step_parts(claim: Claim, s: Step) -> tuple[str, str, str]:
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
    c = _claim(claim)
    lab = label(c)
    d = _derivation(c, params)
    if not steps:
        rels = _relations(c, d)
        if len(rels) == 1:
            body = latex(rels[0])
        else:
            body = "\\begin{aligned}\n" + " \\\\\n".join(_aligned(_relation_parts(r)) for r in rels) + "\n\\end{aligned}"
        return f"{body}\n\\label{{{lab}}}"
    if not d.steps:
        raise ValueError(f"{c.id}: its derivation has no steps to show; claim_latex({c.id!r}) gives the statement")
    lines = []
    for i, s in enumerate(d.steps):
        line = _aligned(_step_parts(c, s))
        note = f"\\intertext{{{tex_prose(s.note)}}}\n" if s.note else ""
        end = f" \\label{{{label(c, 'steps')}}}" if i == len(d.steps) - 1 else " \\notag \\\\"
        lines.append(note + line + end)
    return "\n".join(lines)


def claim_markdown(claim, **params) -> str:
    """The claim as Markdown (GitHub math): title, prose statement, statement, derivation steps."""
    c = _claim(claim)
    d = _derivation(c, params)
    rels = _relations(c, d)
    out = [f"### `{c.id}`: {_md_prose(c.title)}", ""]
    if c.statement:
        out += [_md_prose(c.statement), ""]
    if len(rels) == 1:
        out += ["$$", latex(rels[0]), "$$", ""]
    else:
        body = " \\\\\n".join(_aligned(_relation_parts(r)) for r in rels)
        out += ["$$", "\\begin{aligned}", body, "\\end{aligned}", "$$", ""]
    if d.steps:
        out += ["Derivation (as SymPy computed it):", ""]
        for i, s in enumerate(d.steps, 1):
            math_ = _inline(_step_parts(c, s))
            note = f" ({_md_prose(s.note)})" if s.note else ""
            out.append(f"{i}. ${math_}${note}")
        out.append("")
    seeds = ", ".join(f"`{s}`" for s in c.seeds)
    out += [f"Source notes: {seeds}. Expected verdict: {', '.join(c.expected)}.", ""]
    return "\n".join(out)


# --- the verification record -------------------------------------------------------------

def reproduce_command(result: ClaimResult) -> str:
    """The one command that re-runs a claim exactly as the report ran it."""
    s = result.settings
    return f"gradcheck verify {result.claim.id} --seed {s.seed} --profile {s.profile}"


def _jsonable(x, depth: int = 0):
    """A strict-JSON version of a figure, counterexample or record (no NaN/inf, no objects)."""
    if depth > 20:
        return repr(x)
    if x is None or isinstance(x, (bool, str, int)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else repr(x)  # 'nan', 'inf', '-inf'
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in x.items()}
    if isinstance(x, sp.Basic):
        if x.is_Integer:
            return int(x)
        if x.is_Number and x.is_finite:
            return float(x) if not x.is_Rational else str(x)
        return str(x)
    if hasattr(x, "tolist") and hasattr(x, "dtype"):  # numpy / jax arrays and scalars
        return _jsonable(x.tolist(), depth + 1)
    if hasattr(x, "item") and callable(x.item):
        try:
            return _jsonable(x.item(), depth + 1)
        except (TypeError, ValueError):
            pass
    if isinstance(x, (list, tuple, set, frozenset)):
        return [_jsonable(v, depth + 1) for v in x]
    return repr(x)


def _short(x, n: int = 160) -> str:
    s = x if isinstance(x, str) else json.dumps(_jsonable(x))
    return s if len(s) <= n else s[: n - 3] + "..."


def finding_record(f: Finding) -> dict[str, Any]:
    """What a finding checked and how: the fields a reader needs to reproduce it."""
    rec = dict(f.record or {})
    out = {
        "verdict": f.verdict,
        "ok": f.ok,
        "what": f.what,
        "method": f.method,
        "figure": _jsonable(f.figure),
        "counterexample": _jsonable(f.counterexample),
        "dtype": rec.get("dtype"),
        "tolerance": _jsonable(rec.get("tolerance")),
        "examples": _jsonable(rec.get("examples")),
        "seed": _jsonable(rec.get("seed")),
        "record": _jsonable(rec),
    }
    return out


def package_versions() -> dict[str, str]:
    """Versions of Python and of every package that a verdict depends on."""
    out = {"python": platform.python_version()}
    for name in ("gradcheck", "jax", "jaxlib", "sympy", "mpmath", "numpy", "hypothesis", "matplotlib"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def result_record(result: ClaimResult, date: str | None = None, packages: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON record of one claim's run: verdicts expected and reached, and every finding."""
    if not isinstance(result, ClaimResult):
        raise TypeError(f"result must be a ClaimResult (claim.run()), got {type(result).__name__}")
    c, s = result.claim, result.settings
    findings = [finding_record(f) for f in result.findings]
    examples = [f["examples"] for f in findings if isinstance(f["examples"], int)]
    return {
        "id": c.id,
        "title": c.title,
        "topic": c.topic,
        "seeds": list(c.seeds),
        "statement": c.statement,
        "expected": list(c.expected),
        "reached": list(result.reached),
        "holds": result.ok,
        "summary": result.summary,
        "error": result.error,
        "figure": next((f["figure"] for f in findings if f["figure"] is not None), None),
        "counterexample": next((f["counterexample"] for f in findings if f["counterexample"] is not None), None),
        "dtype": sorted({f["dtype"] for f in findings if f["dtype"]}),
        "tolerance": [
            {"dtype": f["dtype"], **f["tolerance"]} if isinstance(f["tolerance"], dict)
            else {"dtype": f["dtype"], "tolerance": f["tolerance"]}
            for f in findings if f["tolerance"] is not None
        ],
        "examples": sum(examples) if examples else None,
        "seed": s.seed,
        "profile": s.profile,
        "max_examples": s.max_examples,
        "seconds": round(result.seconds, 3),
        "command": reproduce_command(result),
        "date": date or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "packages": dict(packages or package_versions()),
        "findings": findings,
    }


def _how(f: Mapping[str, Any]) -> str:
    """``float64, rtol 1e-07, atol 1e-10, 260 examples, seed 0``: the parts a finding has."""
    parts = []
    if f.get("dtype"):
        parts.append(str(f["dtype"]))
    tol = f.get("tolerance")
    if isinstance(tol, dict):
        parts += [f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in tol.items()]
    elif tol is not None:
        parts.append(f"tolerance {tol}")
    if f.get("examples") is not None:
        parts.append(f"{f['examples']} examples")
    if f.get("seed") is not None:
        parts.append(f"seed {f['seed']}")
    return ", ".join(parts)


def _finding_label(f: Mapping[str, Any]) -> str:
    if not f["ok"]:
        return "FAILED"
    return f["verdict"] or "supports"


def verification_latex(record: Mapping[str, Any]) -> str:
    """The verification record of one claim (a :func:`result_record`) as LaTeX text."""
    holds = "holds" if record["holds"] else "DOES NOT HOLD"
    lines = [
        r"\paragraph{Verification record.}",
        f"Expected: {tex_text(', '.join(record['expected']))}; "
        f"reached: {tex_text(', '.join(record['reached']) or 'none')}; "
        f"\\textbf{{{holds}}} ({record['seconds']:.1f}\\,s, profile {tex_text(record['profile'])}, "
        f"seed {record['seed']}).",
    ]
    if record["error"]:
        lines.append(r"The claim's code raised: " + _tex_code(record["error"].strip().splitlines()[-1]) + ".")
    if record["findings"]:
        lines.append(r"\begin{itemize}")
        for f in record["findings"]:
            how = _how(f)
            item = rf"\item \textbf{{{tex_text(_finding_label(f))}}} ({tex_prose(f['method'])}"
            item += (f"; {tex_text(how)}" if how else "") + "): " + tex_prose(f["what"])
            if f["counterexample"] is not None:
                item += r". Counterexample: " + _tex_code(_short(f["counterexample"]))
            if f["figure"] is not None:
                item += r". Figure: " + _tex_code(_short(f["figure"]))
            lines.append(item + ".")
        lines.append(r"\end{itemize}")
    lines.append(r"\noindent Reproduce: " + _tex_code(record["command"]))
    return "\n".join(lines)


def verification_markdown(record: Mapping[str, Any]) -> str:
    """The verification record of one claim (a :func:`result_record`) as Markdown."""
    holds = "holds" if record["holds"] else "**DOES NOT HOLD**"
    out = [
        f"**Verification record.** Expected: {', '.join(record['expected'])}; reached: "
        f"{', '.join(record['reached']) or 'none'}; {holds} ({record['seconds']:.1f} s, profile "
        f"{record['profile']}, seed {record['seed']}).",
        "",
    ]
    if record["error"]:
        out += [f"The claim's code raised: `{record['error'].strip().splitlines()[-1]}`", ""]
    for f in record["findings"]:
        how = _how(f)
        line = f"- **{_finding_label(f)}** ({_md_prose(f['method'])}{'; ' + how if how else ''}): {_md_prose(f['what'])}"
        if f["counterexample"] is not None:
            line += f". Counterexample: `{_short(f['counterexample'])}`"
        if f["figure"] is not None:
            line += f". Figure: `{_short(f['figure'])}`"
        out.append(line)
    if record["findings"]:
        out.append("")
    out += ["Reproduce:", "", "```", record["command"], "```", ""]
    return "\n".join(out)


def results_document(records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
                     figures: Iterable[Mapping[str, Any]] = ()) -> str:
    """``results.json``: strict JSON (no NaN), one entry per claim, with the run's metadata."""
    doc = {**_jsonable(dict(meta)), "figures": _jsonable(list(figures)), "claims": list(records)}
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


# --- whole documents ---------------------------------------------------------------------

def topic_intro(claim) -> str:
    """First paragraph of the docstring of the module that defines the claim (its topic's summary)."""
    mod = inspect.getmodule(_claim(claim).derive)
    doc = inspect.getdoc(mod) if mod else None
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip() if doc else ""


def claim_entry(result: ClaimResult, date: str | None = None, packages: Mapping[str, str] | None = None) -> dict[str, Any]:
    """:func:`result_record` plus the claim's LaTeX (statement and steps) and Markdown.

    A claim whose derivation cannot be rendered keeps its record, with ``render_error`` set.
    """
    rec = result_record(result, date, packages)
    c = result.claim
    rec.update(latex=None, latex_steps=None, markdown=None, render_error=None)
    try:
        rec["latex"] = claim_latex(c)
        rec["latex_steps"] = claim_latex(c, steps=True) if c.derivation().steps else None
        rec["markdown"] = claim_markdown(c)
    except Exception as e:  # one broken claim must not take the report down: it is shown as broken
        rec["render_error"] = f"{type(e).__name__}: {e}"
    return rec


def _by_topic(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        out.setdefault(r["topic"], []).append(r)
    return out


def section_titles(records: Sequence[Mapping[str, Any]], figures: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    """The report's sections, in order: Summary, one per topic, Figures (when there are any)."""
    return ["Summary", *_by_topic(records)] + (["Figures"] if figures else [])


_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage{amsmath,amssymb}
\usepackage{graphicx}
\usepackage[margin=2cm]{geometry}
\usepackage{longtable,booktabs}
\usepackage[hidelinks]{hyperref}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{4pt}
% \gcfit{width}{math}: the math as it is, or scaled down to width when wider (a 4 x 4 Jacobian)
\newsavebox{\gcbox}
\newcommand{\gcfit}[2]{\sbox{\gcbox}{$\displaystyle #2$}%
  \ifdim\wd\gcbox>#1\resizebox{#1}{!}{\usebox{\gcbox}}\else\usebox{\gcbox}\fi}
"""


def _alignment_point(line: str) -> int | None:
    """Index of the ``&`` that aligns a line: the first outside braces and environments."""
    depth = env = 0
    i = 0
    while i < len(line):
        if line.startswith("\\begin{", i):
            env += 1
        elif line.startswith("\\end{", i):
            env -= 1
        ch = line[i]
        if ch == "\\":
            i += 2
            continue
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "&" and depth == 0 and env == 0:
            return i
        i += 1
    return None


def _fit_statement(body: str) -> str:
    """An equation body from :func:`claim_latex`, scaled to the line when it is wider."""
    math_, _, lab = body.rpartition("\n")
    return f"\\gcfit{{\\linewidth}}{{{math_}}}\n{lab}"


def _fit_steps(body: str) -> str:
    """An align body from :func:`claim_latex` (steps), each right-hand side scaled when wider."""
    out = []
    for line in body.split("\n"):
        k = _alignment_point(line)
        if line.startswith("\\intertext") or k is None:
            out.append(line)
            continue
        m = re.search(r" (\\notag \\\\|\\label\{[^}]*\})$", line)
        end = m.start() if m else len(line)
        op = re.match(r"&(=|<|>|\\leq|\\geq|\\neq)?", line[k:]).group(0)
        rhs = line[k + len(op):end]
        out.append(f"{line[:k]}{op} \\gcfit{{0.7\\linewidth}}{{{rhs.strip()}}}{line[end:]}")
    return "\n".join(out)


def report_latex(records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
                 figures: Sequence[Mapping[str, Any]] = (), topics: Mapping[str, str] | None = None) -> str:
    """``report.tex``: a complete document, one section (starting a page) per topic.

    ``records`` are :func:`claim_entry` dicts, ``figures`` the figures' records (their PDFs are
    expected in ``figures/<name>.pdf`` beside the .tex), ``topics`` one line of prose per topic.
    """
    topics = topics or {}
    L = [_PREAMBLE, r"\title{gradcheck: verified derivations}",
         rf"\author{{generated by gradcheck {tex_text(meta.get('gradcheck', ''))}}}",
         rf"\date{{{tex_text(meta.get('date', ''))}}}", r"\begin{document}", r"\maketitle", ""]
    pk = ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items())
    L += [
        "Every equation below is printed from the SymPy objects of the claim's derivation; each "
        "claim ends with the record of how it was checked and the one command that reproduces it. "
        f"Generated by {_tex_code(meta.get('command', 'gradcheck report'))}, profile "
        f"{tex_text(meta.get('profile', ''))} ({meta.get('max_examples', '')} points per check), "
        f"seed {meta.get('seed', '')}, on {tex_text(meta.get('device', 'unknown device'))}. "
        f"Versions: {tex_text(pk)}.",
        "",
        r"\section{Summary}\label{sec:summary}",
        r"\begin{longtable}{@{}llll r@{}}",
        r"\toprule claim & expected & reached & result & s \\ \midrule \endhead",
    ]
    for r in records:
        res = ("holds" if r["holds"] else r"\textbf{misses}") + (r", \textbf{not rendered}" if r.get("render_error") else "")
        L.append(rf"\hyperref[sec:{label_of(r)}]{{{_tex_code(r['id'])}}} & {tex_text(', '.join(r['expected']))} & "
                 rf"{tex_text(', '.join(r['reached']) or '-')} & {res} & {r['seconds']:.1f} \\")
    held = sum(1 for r in records if r["holds"])
    L += [r"\bottomrule", r"\end{longtable}", f"{held} of {len(records)} claims reached their expected verdict.", ""]
    for topic, recs in _by_topic(records).items():
        L += [r"\clearpage", rf"\section{{{tex_text(topic)}}}\label{{sec:topic:{topic}}}"]
        if topics.get(topic):
            L.append(tex_prose(topics[topic]))
        for r in recs:
            L += ["", rf"\subsection{{{_tex_heading(r['title'])}}}\label{{sec:{label_of(r)}}}",
                  rf"{_tex_code(r['id'])}; source notes: " + ", ".join(_tex_code(s) for s in r["seeds"]) + "."]
            if r["statement"]:
                L.append(r"\emph{" + tex_prose(r["statement"]) + "}")
            if r.get("render_error"):
                L.append(r"\textbf{The derivation could not be rendered:} " + _tex_code(_short(r["render_error"], 300)))
            if r.get("latex"):
                L += [r"\begin{equation}", _fit_statement(r["latex"]), r"\end{equation}"]
            if r.get("latex_steps"):
                L += [r"\paragraph{Derivation (as SymPy computed it).}", r"\begin{align}",
                      _fit_steps(r["latex_steps"]), r"\end{align}"]
            L.append(verification_latex(r))
    if figures:
        L += [r"\clearpage", r"\section{Figures}\label{sec:figures}",
              "Computed by JAX in float64 and drawn by matplotlib; every number in a caption was computed."]
        for f in figures:
            L += [r"\begin{figure}[!htbp]", r"\centering",
                  rf"\includegraphics[width=0.9\linewidth]{{figures/{f['name']}.pdf}}",
                  rf"\caption{{{tex_prose(f['caption'])}}}\label{{fig:{f['name']}}}", r"\end{figure}"]
    L += [r"\end{document}", ""]
    return "\n".join(L)


def label_of(record: Mapping[str, Any]) -> str:
    return f"claim:{record['id']}"


def report_markdown(records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
                    figures: Sequence[Mapping[str, Any]] = (), topics: Mapping[str, str] | None = None) -> str:
    """``report.md``: the same content as :func:`report_latex`, in GitHub Markdown (figures as PNG)."""
    topics = topics or {}
    pk = ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items())
    L = [
        "# gradcheck: verified derivations", "",
        f"Generated {meta.get('date', '')} by `{meta.get('command', 'gradcheck report')}` (profile "
        f"{meta.get('profile', '')}, {meta.get('max_examples', '')} points per check, seed {meta.get('seed', '')}, "
        f"on {meta.get('device', 'unknown device')}). Versions: {pk}.", "",
        "Every equation is printed from the SymPy objects of the claim's derivation; each claim ends with "
        "the record of how it was checked and the one command that reproduces it.", "",
        "## Summary", "",
        "| claim | expected | reached | result | s |", "| --- | --- | --- | --- | ---: |",
    ]
    for r in records:
        res = ("holds" if r["holds"] else "**misses**") + (", **not rendered**" if r.get("render_error") else "")
        L.append(f"| `{r['id']}` | {', '.join(r['expected'])} | {', '.join(r['reached']) or '-'} | {res} | {r['seconds']:.1f} |")
    held = sum(1 for r in records if r["holds"])
    L += ["", f"{held} of {len(records)} claims reached their expected verdict.", ""]
    for topic, recs in _by_topic(records).items():
        L += [f"## {topic}", ""]
        if topics.get(topic):
            L += [_md_prose(topics[topic]), ""]
        for r in recs:
            if r.get("markdown"):
                L.append(r["markdown"])
            else:
                L += [f"### `{r['id']}`: {_md_prose(r['title'])}", ""]
            if r.get("render_error"):
                L += [f"**The derivation could not be rendered:** `{_short(r['render_error'], 300)}`", ""]
            L.append(verification_markdown(r))
    if figures:
        L += ["## Figures", ""]
        for f in figures:
            L += [f"![{_md_text(plain_prose(f['title']))}](figures/{f['name']}.png)", "", f"*{_md_prose(f['caption'])}*", ""]
    return "\n".join(L)
