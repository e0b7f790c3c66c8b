"""Stand-ins: what SymPy's printers refuse, or cannot differentiate, rewritten into SymPy
function classes that the namespaces of :mod:`._namespaces` define by name.
"""

from __future__ import annotations

import functools
import itertools

import sympy as sp

from ._kernels import KERNELS, MAX_NUMERIC_ORDER, STANDIN_KERNELS

__all__ = ["STANDIN_FUNCTIONS", "kernel_of_class", "numeric_orders", "partial_name", "prepare", "standin"]

#: The SymPy functions that :func:`prepare` replaces by stand-ins: an expression with none of
#: them (and no ``Derivative``) needs no preparing.
STANDIN_FUNCTIONS: tuple[type, ...] = tuple(KERNELS[k].sympy for k in sorted(STANDIN_KERNELS))


def partial_name(kname: str, orders: tuple[int, ...]) -> str:
    return f"gc_d_{kname}_" + "_".join(map(str, orders))


def kernel_of_class(cls) -> str | None:
    for name, k in KERNELS.items():
        if k.sympy is cls:
            return name
    return getattr(cls, "_gc_kernel", None)


@functools.cache
def standin(kname: str, orders: tuple[int, ...] | None = None) -> type:
    """A SymPy function class ``gc_<kname>`` (orders None) or ``gc_d_<kname>_<orders>`` (the
    numerical partial derivative of those orders), printed by name and defined in every namespace
    here.  Its ``fdiff`` is SymPy's own derivative in the arguments SymPy differentiates, else
    the next numerical partial, so ``sp.diff`` of a prepared expression stays printable."""
    k = KERNELS[kname]
    name = f"gc_{kname}" if orders is None else partial_name(kname, orders)

    def fdiff(self, argindex=1):
        i = argindex - 1
        n = len(self.args)
        if i in k.integer:
            raise sp.core.function.ArgumentIndexError(self, argindex)
        if orders is not None or i in k.numeric:
            nxt = tuple(o + (j == i) for j, o in enumerate(orders or (0,) * n))
            if sum(nxt) > MAX_NUMERIC_ORDER:
                raise sp.core.function.ArgumentIndexError(self, argindex)
            return standin(kname, nxt)(*self.args)
        a = sp.symbols(f"gc_a0:{n}", real=True)
        d = sp.diff(k.sympy(*a), a[i])
        return prepare(d.xreplace(dict(zip(a, self.args))))

    nargs = k.arity if orders is None else (len(orders),)
    return type(name, (sp.Function,), {"fdiff": fdiff, "nargs": nargs, "_gc_kernel": kname, "_gc_orders": orders})


def numeric_orders():
    """(kernel, orders) of every numerical partial derivative stand-in prepare() may emit."""
    for name, k in KERNELS.items():
        for n in k.arity:
            for orders in itertools.product(range(MAX_NUMERIC_ORDER + 1), repeat=n):
                if 0 < sum(orders) <= MAX_NUMERIC_ORDER and not any(orders[i] for i in k.integer if i < n):
                    yield name, orders


# --------------------------------------------------------------------------------------------
def prepare(expr):
    """``expr`` rewritten for ``sp.lambdify`` with this module's namespaces, and for ``sp.diff``.

    Call it on the reference before differentiating it (or on each expression before
    lambdifying it; both work):

    * ``lowergamma``, ``uppergamma``, ``fresnels``, ``fresnelc`` (refused by SymPy's NumPy and JAX
      printers), ``beta`` (printed as gamma(a)gamma(b)/gamma(a+b), which overflows) and the
      functions with an argument SymPy cannot differentiate in (zeta, polylog and expint in s or
      nu, the Bessel functions in their order, lower/uppergamma in s, dirichlet_eta) become
      same-valued stand-ins ``gc_<name>``, whose derivative in such an argument is the
      numerical partial derivative ``gc_d_<name>_<orders>`` (mpmath.diff at 30 digits for
      float64, at the working precision for mpmath) and SymPy's own elsewhere;
    * ``Derivative(F(..), x, ...)`` of a supported F in arguments that are plain symbols (what
      ``sp.diff`` of an unprepared zeta(s) leaves), also inside ``Subs`` (the chain rule through
      such an argument), becomes the numerical partial ``gc_d_<F>_<orders>(..)``.

    Anything else is left alone (:func:`check_supported` says what cannot be evaluated).
    """
    if isinstance(expr, (list, tuple)):
        return type(expr)(prepare(e) for e in expr)
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(prepare)
    expr = sp.sympify(expr)

    def is_partial(n):
        if not isinstance(n, sp.Derivative):
            return False
        f = n.expr
        name = kernel_of_class(type(f))
        if name is None or len(f.args) not in KERNELS[name].arity:
            return False
        for v, _ in n.variable_count:
            if v not in f.args or sum(a.has(v) for a in f.args) != 1:
                return False
        return True

    def to_partial(n):
        f = n.expr
        name = kernel_of_class(type(f))
        orders = list(getattr(type(f), "_gc_orders", None) or (0,) * len(f.args))
        for v, c in n.variable_count:
            orders[f.args.index(v)] += int(c)
        if any(orders[i] for i in KERNELS[name].integer if i < len(orders)) or sum(orders) > MAX_NUMERIC_ORDER:
            return n  # not differentiable there / too high: left for the caller to refuse
        return standin(name, tuple(orders))(*f.args)

    if expr.has(sp.Derivative):
        expr = expr.replace(is_partial, to_partial)
        if expr.has(sp.Subs):
            expr = expr.replace(lambda n: isinstance(n, sp.Subs) and not n.expr.has(sp.Derivative), lambda n: n.doit())
    for kname in sorted(STANDIN_KERNELS):
        k = KERNELS[kname]
        if expr.has(k.sympy):
            expr = expr.replace(
                lambda n, k=k: isinstance(n, k.sympy) and len(n.args) in k.arity,
                lambda n, kname=kname: standin(kname)(*n.args),
            )
    return expr
