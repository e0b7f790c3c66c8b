r"""SymPy to LaTeX in the notation of the notes.

Everything mathematical in a claim is printed from the SymPy objects of its
:class:`~gradcheck.symbolic.Derivation` by :class:`LatexPrinter`.  The printer departs from
SymPy's default where the notes (and textbooks) write things differently:

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

import re
from collections.abc import Mapping, Sequence
from typing import Any

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter as _SympyLatexPrinter

from ._prose import tex_text

__all__ = ["LEIBNIZ_FUNCTIONS", "LatexPrinter", "latex"]

#: Undefined functions whose derivatives print as partial derivatives (``\partial C/\partial a``)
#: rather than primes: costs and losses, as the notes write them.
LEIBNIZ_FUNCTIONS = frozenset({"C", "L", "J", "E", "Loss", "ell"})

_PRIMES = {1: "'", 2: "''", 3: "'''"}
_LAYER_INDEX = re.compile(r"_\{?(\d+)\}?(?:\^.*)?$")
_BIG = ("\\frac", "\\sum", "\\prod", "\\int", "\\left", "\\begin")
_WORD_NAME = re.compile(r"^[A-Za-z]{2,}(_[A-Za-z]+)+$")


def _top_level_split(name: str, sep: str) -> list[str]:
    """``name`` split at ``sep`` where it is outside braces."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
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
            return r"\operatorname{" + func.replace("_", r"\_") + "}"
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
            rf"\partial {self._print(rename.get(x, x))}" + (f"^{{{n}}}" if n > 1 else "") for x, n in variable_count
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
        raise TypeError(
            "expected a SymPy object, got a Python bool: a relation built with Eq(...) "
            "that evaluated to True/False? build it with evaluate=False"
        )
    return LatexPrinter(_PRINTER_SETTINGS).doprint(obj)
