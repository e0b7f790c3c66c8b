"""SymPy building blocks: activations, symbols for arrays, proofs of identities.

Two forms of every activation are kept apart on purpose:

* the *generic* function (``sigma = Function('sigma')``): differentiating a network built from
  it leaves ``sigma'`` unevaluated, so ``sympy.diff`` produces exactly the chain-rule product
  a textbook writes (one ``sigma'(z_j)`` per layer);
* the *concrete* definition (``1 / (1 + exp(-z))``): substituting it turns any derived form
  into an expression that can be proved equal to another, lambdified and evaluated.

Nothing here types in a derivative: :func:`concrete` substitutes the definition and lets SymPy
differentiate it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp
from sympy.core.function import AppliedUndef

from .derivation import Derivation, Step

__all__ = [
    "Step",
    "Derivation",
    "sigma",
    "logistic",
    "ACTIVATIONS",
    "concrete",
    "array_symbols",
    "flatten",
    "is_zero",
    "prove_equal",
    "free_symbols_of",
]

#: The generic sigmoid, left undefined so that derivatives stay as ``sigma'`` factors.
sigma = sp.Function("sigma", real=True)


def logistic(z):
    """The logistic sigmoid as SymPy expression, 1 / (1 + e^{-z})."""
    return 1 / (1 + sp.exp(-z))


_z = sp.Symbol("z", real=True)

#: Concrete definitions, by the name of the generic function they implement.
ACTIVATIONS: dict[str, sp.Lambda] = {
    "sigma": sp.Lambda(_z, logistic(_z)),
    "tanh": sp.Lambda(_z, sp.tanh(_z)),
    "relu": sp.Lambda(_z, sp.Max(0, _z)),
}


def concrete(expr, **definitions):
    """Replace generic activations in ``expr`` by their definitions and evaluate derivatives.

    ``concrete(diff(sigma(z), z))`` becomes SymPy's own derivative of 1/(1+e^{-z}).
    Keyword arguments override or add definitions: ``concrete(e, sigma=Lambda(z, tanh(z)))``.
    """
    defs = {**ACTIVATIONS, **definitions}
    out = expr
    for name, lam in defs.items():
        f = sp.Function(name, real=True) if name != "sigma" else sigma
        if out.has(f) or out.has(sp.Function(name)):
            out = out.replace(f, lam).replace(sp.Function(name), lam)
    return out.doit()


def array_symbols(name: str, shape: tuple[int, ...], real: bool = True):
    """A SymPy Symbol for shape ``()``, an n x 1 Matrix for ``(n,)``, an m x n Matrix for ``(m, n)``.

    Entries are named ``x_0, x_1, ...`` (vector) or ``x_{0,1}`` (matrix), 0-based like the
    arrays they stand for.
    """
    if shape == ():
        return sp.Symbol(name, real=real)
    if len(shape) == 1:
        return sp.Matrix(shape[0], 1, lambda i, _: sp.Symbol(f"{name}_{i}", real=real))
    if len(shape) == 2:
        return sp.Matrix(*shape, lambda i, j: sp.Symbol(f"{name}_{{{i},{j}}}", real=real))
    raise ValueError(f"shape must be (), (n,) or (m, n), got {shape!r}")


def flatten(obj) -> list:
    """The entries of a Symbol/expression (one) or a Matrix (row-major), as a list."""
    if isinstance(obj, sp.MatrixBase):
        return list(obj)
    return [sp.sympify(obj)]


def free_symbols_of(obj) -> set:
    out = set()
    for e in flatten(obj):
        out |= e.free_symbols
    return out


_STRATEGIES: Sequence[Callable] = (
    sp.cancel,
    sp.simplify,
    lambda e: sp.simplify(e.rewrite(sp.exp)),
    lambda e: sp.simplify(sp.expand(e.rewrite(sp.exp))),
    lambda e: sp.simplify(sp.powsimp(sp.expand_power_exp(e.rewrite(sp.exp)), force=True)),
)


def _exp_rational(expr) -> bool:
    """Zero as a rational function of t = e^(v/2), for every variable v under an exponential.

    Identities of sigma, sigma' and tanh become identities of rational functions, which
    ``cancel`` decides in milliseconds where ``simplify`` takes seconds.
    """
    e = expr.rewrite(sp.exp)
    vs = {v for x in e.atoms(sp.exp) for v in x.free_symbols if v.is_real}
    if not vs:
        return False
    ts = {v: sp.Symbol(f"t_{v}", positive=True) for v in vs}
    return sp.cancel(sp.together(e.subs({v: 2 * sp.log(t) for v, t in ts.items()}))) == 0


def is_zero(expr) -> bool:
    """True when SymPy *proves* ``expr`` is identically 0.

    Cheap decisions first (cancel; expansion when an undefined function is present; rational
    functions of exponentials), then increasingly
    expensive rewrites (simplify, rewrite in exp).  With an undefined function (a generic
    sigma or cost) both sides are polynomials in the applied functions and the parameters, so
    expansion decides and ``simplify`` would only burn minutes.  Never uses numerical sampling:
    ``False`` means "not proved", and callers report it as such.
    """
    expr = sp.sympify(expr)
    if expr == 0 or expr.is_zero is True:
        return True
    try:
        if expr.atoms(AppliedUndef):
            return sp.expand(expr) == 0 or sp.cancel(sp.together(expr)) == 0
        if sp.cancel(sp.together(expr)) == 0:  # rational identities: fast, where expand can take minutes
            return True
        if _exp_rational(expr):
            return True
    except (TypeError, ValueError, NotImplementedError, RecursionError):
        pass
    for strategy in _STRATEGIES:
        try:
            out = sp.sympify(strategy(expr))
            if out == 0 or out.is_zero is True:
                return True
        except (TypeError, ValueError, NotImplementedError, RecursionError):
            continue
    return False


def prove_equal(a, b) -> bool:
    """True when ``a - b`` simplifies to 0 (entrywise for matrices)."""
    if isinstance(a, sp.MatrixBase) or isinstance(b, sp.MatrixBase):
        a, b = sp.Matrix(a), sp.Matrix(b)
        if a.shape != b.shape:
            return False
        return all(is_zero(x - y) for x, y in zip(a, b))
    return is_zero(sp.sympify(a) - sp.sympify(b))
