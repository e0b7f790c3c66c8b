"""The symbols, the two costs and the rewriting of sigma' shared by the costs.* claims."""

from __future__ import annotations

import numpy as np
import sympy as sp

from gradcheck.symbolic import sigma

z = sp.Symbol("z", real=True)
b, y = sp.symbols("b y", real=True)
DSIGMA = sp.Derivative(sigma(z), z)  # sigma'(z), as a textbook writes it


def _is_dsigma(e) -> bool:
    return isinstance(e, sp.Derivative) and e.expr.func == sigma


def name_preactivation(expr, pre, zsym=z):
    """Write ``sigma(pre)`` as ``sigma(z)`` and SymPy's ``Subs(sigma'(xi), xi, pre)`` as ``sigma'(z)``."""
    dz = sp.Derivative(sigma(zsym), zsym)
    out = expr.replace(
        lambda e: isinstance(e, sp.Subs) and _is_dsigma(e.expr) and tuple(e.point) == (pre,), lambda e: dz
    )
    return out.xreplace({sigma(pre): sigma(zsym)})


def cancel_sigma_prime(expr):
    """Substitute sigma'(u) = sigma(u)(1 - sigma(u)) wherever a sigma' appears.

    SymPy writes the chain rule's sigma' at a compound argument as ``Subs(Derivative(sigma(xi),
    xi), xi, u)``: those are replaced first (``replace`` works bottom-up, and would otherwise
    rewrite the inner Derivative and leave an unevaluated Subs), then plain ``sigma'(z)``.
    """

    def is_subs(e):
        return isinstance(e, sp.Subs) and _is_dsigma(e.expr)

    out = expr.replace(is_subs, lambda e: sigma(e.point[0]) * (1 - sigma(e.point[0])))
    return out.replace(_is_dsigma, lambda e: sigma(e.variables[0]) * (1 - sigma(e.variables[0])))


def simplify_in_sigma(expr):
    """Simplify treating each ``sigma(u)`` as an atom: a rational function, so ``cancel`` suffices.

    (``sp.simplify`` on the averaged gradient takes most of a minute; this takes milliseconds.)
    """

    def one(e):
        apps = sorted(e.atoms(sigma), key=sp.default_sort_key)
        atoms = {app: sp.Dummy(f"s{i}") for i, app in enumerate(apps)}
        back = {v: k for k, v in atoms.items()}
        return sp.factor_terms(sp.cancel(e.xreplace(atoms))).xreplace(back)

    return expr.applyfunc(one) if isinstance(expr, sp.MatrixBase) else one(expr)


def _positive_int(name, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def quadratic_cost(a, target):
    return (a - target) ** 2 / 2


def cross_entropy(a, target):
    return -(target * sp.log(a) + (1 - target) * sp.log(1 - a))
