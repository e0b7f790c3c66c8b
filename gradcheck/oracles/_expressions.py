"""Walks over a SymPy reference: its distinct nodes, the expressions that vanish on its kinks,
and the clean-up of what ``sympy.diff`` leaves at them (``DiracDelta``, unevaluated derivatives
of step functions)."""

from __future__ import annotations

import sympy as sp

__all__ = ["drop_dirac", "drop_unevaluated", "kink_expressions", "unique_nodes"]

_DISCONTINUOUS = (sp.Heaviside, sp.sign, sp.floor, sp.ceiling)


def unique_nodes(exprs) -> list:
    """Every distinct subexpression of ``exprs`` once: the DAG, not the tree (the 1,024 entries
    of a softmax share one denominator; a tree walk visits it 1,024 times)."""
    seen: set = set()
    out = []
    stack = [sp.sympify(e) for e in exprs]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        out.append(e)
        stack.extend(e.args)
    return out


_CUTS = (sp.log, sp.asin, sp.acos, sp.acosh, sp.atanh, sp.atan, sp.asinh)


def kink_expressions(exprs) -> tuple[list[sp.Expr], bool]:
    """Expressions that vanish on the kinks of ``exprs``, and whether any kink is a jump."""
    kinks: list[sp.Expr] = []
    jump = False
    for node in unique_nodes(exprs):
        if isinstance(node, (sp.Abs, sp.Heaviside, sp.sign, sp.DiracDelta)):
            kinks.append(node.args[0])
            jump |= isinstance(node, _DISCONTINUOUS)
        elif isinstance(node, (sp.floor, sp.ceiling)):
            jump = True
            kinks.append(sp.sin(sp.pi * node.args[0]))
        elif isinstance(node, (sp.Max, sp.Min)):
            args = node.args
            kinks.extend(a - b for i, a in enumerate(args) for b in args[i + 1 :])
        elif isinstance(node, (sp.atan2, sp.arg)):  # a complex function's branch cut (see below)
            jump = True
            kinks.append(node.args[0] if isinstance(node, sp.atan2) else sp.im(node.args[0]))
        elif isinstance(node, _CUTS) and node.args[0].is_extended_real is not True:
            # re(asin(x + I y)): a principal branch, cut along the real axis (log, asin, acos,
            # acosh, atanh) or the imaginary one (atan, asinh); the whole axis is marked, as a
            # kink: a point on it is not judged, the points beside it are
            jump = True
            w = node.args[0]
            kinks.append(sp.re(w) if isinstance(node, (sp.atan, sp.asinh)) else sp.im(w))
        elif isinstance(node, sp.Piecewise):
            jump = True  # a Piecewise need not be continuous at its boundaries
            for _, cond in node.args:
                for rel in cond.atoms(sp.core.relational.Relational):
                    kinks.append(rel.lhs - rel.rhs)
    out, seen = [], set()
    for k in kinks:
        k = sp.sympify(k)
        if k.free_symbols and k not in seen:
            seen.add(k)
            out.append(k)
    return out, jump


def drop_dirac(e):
    # d/dx Heaviside(x) = DiracDelta(x): zero away from the kink, and lambdify cannot print it.
    return e.replace(lambda n: isinstance(n, sp.DiracDelta), lambda n: sp.S.Zero)


def drop_unevaluated(e):
    """``Derivative(floor(x), x)`` stays unevaluated in SymPy: it is 0 away from the jumps."""
    return e.replace(
        lambda n: isinstance(n, sp.Derivative) and isinstance(n.expr, (sp.floor, sp.ceiling, sp.sign, sp.Heaviside)),
        lambda n: sp.S.Zero,
    )
