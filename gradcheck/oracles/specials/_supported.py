"""Refusal, before any work, of a reference that uses a function none of the namespaces can evaluate."""

from __future__ import annotations

import builtins
from collections.abc import Iterable

import sympy as sp

from ._kernels import KERNELS, SUPPORTED
from ._namespaces import jax_ns, mpmath_ns, numpy_ns
from ._prepare import kernel_of_class, prepare

__all__ = ["check_supported"]


def _printable_names(fn) -> set[str]:
    """Global names a lambdified function's code refers to (its cse helpers included)."""
    names = set()
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        names |= set(code.co_names)
        stack += [c for c in code.co_consts if hasattr(c, "co_names")]
    return names


def _route_missing(node, modules) -> str | None:
    """Why ``node`` cannot be lambdified with ``modules``, or None."""
    # the function alone: nested calls are checked as nodes of their own, so a parent (exp of an
    # unknown function) is not blamed for its child
    try:
        probe = node.func(*[a if a.is_Atom else sp.Dummy(real=True) for a in node.args])
    except Exception:
        probe = node
    try:
        fn = sp.lambdify(sorted(probe.free_symbols, key=str), prepare(probe), modules=modules)
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0]}"
    missing = [n for n in _printable_names(fn) if n not in fn.__globals__ and not hasattr(builtins, n)]
    if missing:
        return f"no definition of {', '.join(sorted(missing))}"
    return None


_ROUTES = {
    "float64 (JAX)": lambda: [jax_ns(), "jax"],
    "NumPy": lambda: [numpy_ns(), "numpy"],
    "mpmath": lambda: [mpmath_ns(), "mpmath"],
}


def _walk(exprs) -> Iterable[sp.Basic]:
    if isinstance(exprs, (sp.Basic, sp.MatrixBase)):
        exprs = [exprs]
    for e in exprs:
        if isinstance(e, sp.MatrixBase):
            yield from _walk(list(e))
        elif isinstance(e, (list, tuple)):
            yield from _walk(e)
        else:
            yield from sp.preorder_traversal(sp.sympify(e))


def check_supported(exprs) -> None:
    """Raise ValueError, before any work, naming every SymPy function applied in ``exprs`` that
    this module's namespaces (with SymPy's own printers) cannot evaluate in float64 and in mpmath.

    ``exprs``: an expression, a Matrix, or a (nested) list of them.  A supported function applied
    with an arity SymPy allows but this module does not (e.g. the two-argument dirichlet_eta) is
    refused too.  Functions the standard printers handle (exp, sin, Abs, Max, Piecewise...) pass.
    """
    seen: dict[tuple, str | None] = {}
    for node in _walk(exprs):
        if not isinstance(node, (sp.Function, sp.Derivative)) and not (isinstance(node, sp.Basic) and node.is_Function):
            continue
        key = (type(node).__name__, len(node.args)) if not isinstance(node, sp.Derivative) else (str(node), 0)
        if key in seen:
            continue
        kname = kernel_of_class(type(node))
        if kname is not None and len(node.args) not in KERNELS[kname].arity:
            seen[key] = (
                f"{type(node).__name__} with {len(node.args)} arguments (supported: "
                f"{' or '.join(map(str, KERNELS[kname].arity))})"
            )
            continue
        if isinstance(node, sp.Derivative):
            seen[key] = f"{node} (an unevaluated derivative)" if prepare(node).has(sp.Derivative) else None
            continue
        bad = []
        for route, mods in _ROUTES.items():
            why = _route_missing(node, mods())
            if why:
                bad.append(f"{route}: {why}")
        seen[key] = f"{type(node).__name__} ({'; '.join(bad)})" if bad else None
    problems = [v for v in seen.values() if v is not None]
    if problems:
        raise ValueError(
            "the reference uses functions that cannot be evaluated independently of JAX: "
            + "; ".join(problems)
            + ". Supported special functions: "
            + ", ".join(SUPPORTED)
            + " (and the elementary functions SymPy prints for NumPy, JAX and mpmath)."
        )
