"""Special functions in a SymPy reference, evaluated independently of JAX.

The reference is lambdified three ways (see :mod:`gradcheck.bridge`).  For special functions
SymPy's JAX printer emits names (``besseli``, ``Ei``, ``polylog``...) that no JAX module defines,
and mapping them to ``jax.scipy.special`` would compare the user's JAX function with the very
implementation it calls.  This module supplies, for every function in :data:`SUPPORTED`:

* :func:`numpy_namespace` - float64 values from ``scipy.special`` where SciPy has a routine for
  the argument range, else mpmath at 30 digits, element by element;
* :func:`jax_namespace` - the same values through ``jax.pure_callback`` (jit- and vmap-able),
  wrapped in ``jax.custom_jvp`` whose tangent is SymPy's own derivative of the function,
  lambdified with this namespace again (so derivatives of any order work, in any mode); in the
  arguments SymPy cannot differentiate (zeta's s, a Bessel order...) a 30-digit ``mpmath.diff``;
* :func:`mpmath_namespace` - the arbitrary-precision truth;
* :func:`prepare` - rewrites what the NumPy and JAX printers refuse to print (``lowergamma``,
  ``uppergamma``, ``fresnels``, ``fresnelc``) and SymPy's unevaluated derivatives of supported
  functions (``Derivative(zeta(s), s)``) into stand-in functions these namespaces define.  Call
  it on every expression before ``sp.lambdify``;
* :func:`check_supported` - refuses, before any work, a reference using anything else.

Usage::

    exprs = [specials.prepare(e) for e in exprs]
    f = sp.lambdify(syms, exprs, modules=[specials.jax_namespace(), "jax"])
    g = sp.lambdify(syms, exprs, modules=[specials.numpy_namespace(), "numpy"])
    h = sp.lambdify(syms, exprs, modules=[specials.mpmath_namespace(), "mpmath"])
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import scipy.special as sc
import sympy as sp

__all__ = [
    "SUPPORTED",
    "check_supported",
    "jax_namespace",
    "mpmath_namespace",
    "numpy_namespace",
    "prepare",
    "MP_DIGITS",
]

#: Decimal digits of the mpmath fallback used for float64 values and numerical derivatives.
MP_DIGITS = 30

#: Highest total order of numerical partial derivative given a stand-in name (see prepare).
_MAX_NUMERIC_ORDER = 4

# --------------------------------------------------------------------------------------------
# mpmath at MP_DIGITS, one private context per thread: the truth in bridge.py changes the global
# mpmath precision under its own lock, and XLA may run host callbacks on several threads; a
# shared context would let one computation change another's precision (mpmath.diff raises the
# precision of the context it runs in).
_LOCAL = threading.local()


def _ctx() -> mpmath.ctx_mp.MPContext:
    c = getattr(_LOCAL, "ctx", None)
    if c is None:
        c = mpmath.MPContext()
        c.dps = MP_DIGITS
        _LOCAL.ctx = c
    return c


def _real(ctx, v):
    """A real mpmath number, NaN where the value is genuinely complex (as the truth does)."""
    if isinstance(v, ctx.mpc) or isinstance(v, mpmath.mpc):
        if abs(v.imag) > ctx.mpf(10) ** (-(ctx.dps // 2)) * max(1, abs(v.real)):
            return ctx.nan
        return v.real
    return v


def _to_float(ctx, v) -> float:
    try:
        v = _real(ctx, ctx.mpmathify(v))
        return float(v)
    except (TypeError, ValueError, OverflowError):
        return float("nan")


def _mp_loop(fn: Callable, *args) -> np.ndarray:
    """fn(ctx, *mpf) over the broadcast elements of args, as float64 (NaN where undefined)."""
    arrs = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in args])
    shape = arrs[0].shape if arrs else ()
    flat = [a.ravel() for a in arrs]
    out = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=np.float64)
    ctx = _ctx()
    for k in range(out.size):
        xs = [float(a[k]) for a in flat]
        if any(np.isnan(x) for x in xs):
            out[k] = np.nan
            continue
        try:
            out[k] = _to_float(ctx, fn(ctx, *[ctx.mpf(x) for x in xs]))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError, ctx.NoConvergence):
            out[k] = np.nan
    return out.reshape(shape)


def _hybrid(scipy_fn: Callable, ok: Callable, mp_fn: Callable) -> Callable:
    """SciPy where ``ok(*args)`` (its documented real domain), mpmath elsewhere."""

    def f(*args):
        arrs = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in args])
        with np.errstate(all="ignore"):
            mask = np.asarray(ok(*arrs), dtype=bool) & ~np.any([np.isnan(a) for a in arrs], axis=0)
        out = np.full(arrs[0].shape, np.nan)
        if mask.any():
            with np.errstate(all="ignore"):
                out[mask] = np.asarray(scipy_fn(*[a[mask] for a in arrs]), dtype=np.float64)
        rest = ~mask & ~np.any([np.isnan(a) for a in arrs], axis=0)
        if rest.any():
            out[rest] = _mp_loop(mp_fn, *[a[rest] for a in arrs])
        return out

    return f


def _scipy(fn: Callable) -> Callable:
    def f(*args):
        with np.errstate(all="ignore"):
            return np.asarray(fn(*[np.asarray(a, dtype=np.float64) for a in args]), dtype=np.float64)

    return f


def _is_int(n):
    return np.isfinite(n) & (n == np.round(n))


def _lambertw_real(x, k=0.0):
    k = np.asarray(k, dtype=np.float64)
    x, k = np.broadcast_arrays(np.asarray(x, np.float64), k)
    out = np.full(x.shape, np.nan)
    ok = _is_int(k)
    if ok.any():
        with np.errstate(all="ignore"):
            w = sc.lambertw(x[ok], k[ok].astype(np.int64))
        # SymPy's LambertW is complex off the real branch: NaN there, as the truth has it
        real = np.abs(w.imag) <= 1e-14 * np.maximum(1.0, np.abs(w.real))
        out[ok] = np.where(real, w.real, np.nan)
    return out


# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Kernel:
    """One special function as printed: its value routes and how to differentiate it."""

    sympy: Callable  # SymPy args -> the SymPy expression (for its derivative)
    numpy: Callable  # float64 arrays -> float64 array
    mp: Callable  # (mpmath context, *numbers) -> number
    arity: tuple[int, ...]
    numeric: frozenset = frozenset()  # args differentiated with mpmath.diff
    integer: frozenset = frozenset()  # integer-only args: zero tangent


def _k(sympy, numpy, mp, arity=(1,), numeric=(), integer=()):
    return _Kernel(sympy, numpy, mp, tuple(arity), frozenset(numeric), frozenset(integer))


def _mp_loggamma(c, x):
    return c.loggamma(x)


def _mp_zeta(c, s, a=None):
    return c.zeta(s) if a is None else c.zeta(s, a)


def _mp_erfcinv(c, y):
    # erfcinv(y) = erfinv(1 - y): 1 - y cancels for small y, so carry enough extra digits
    extra = int(max(0, -float(c.log10(abs(y))))) + 10 if y != 0 else 10
    with c.extradps(extra):
        return +c.erfinv(1 - y)


def _mp_lambertw(c, x, k=0):
    if k != int(k):
        return c.nan
    return c.lambertw(x, int(k))


def _mp_expint(c, nu, z):
    return c.expint(nu, z)


def _mp_polylog(c, s, z):
    return c.polylog(s, z)


def _mp_lowergamma(c, s, x):
    return c.gammainc(s, 0, x)


def _mp_uppergamma(c, s, x):
    return c.gammainc(s, x, c.inf)


def _mp_elliptic_e(c, a, m=None):
    return c.ellipe(a) if m is None else c.ellipe(a, m)


def _mp_elliptic_pi(c, n, a, m=None):
    return c.ellippi(n, a) if m is None else c.ellippi(n, a, m)


def _np_zeta(s, a=None):
    if a is None:
        return _scipy(sc.zeta)(s)  # SciPy's Riemann zeta covers the whole real line
    return _hybrid(sc.zeta, lambda s, a: (s > 1) & (a > 0), _mp_zeta)(s, a)


def _np_lambertw(x, k=None):
    return _lambertw_real(x) if k is None else _lambertw_real(x, k)


def _np_elliptic_e(a, m=None):
    return _scipy(sc.ellipe)(a) if m is None else _scipy(sc.ellipeinc)(a, m)


def _np_elliptic_pi(n, a, m=None):
    # SciPy has no complete/incomplete elliptic integral of the third kind by this name
    return _mp_loop(_mp_elliptic_pi, n, a) if m is None else _mp_loop(_mp_elliptic_pi, n, a, m)


def _np_expint(nu, z):
    # scipy.special.expn takes an integer order (it truncates others with a warning) and z > 0
    return _hybrid(sc.expn, lambda n, z: _is_int(n) & (n >= 0) & (z > 0), _mp_expint)(nu, z)


def _np_gamma_inc(regularised, s, x):
    return regularised(s, x) * sc.gamma(s)


_KERNELS: dict[str, _Kernel] = {
    "gamma": _k(sp.gamma, _scipy(sc.gamma), lambda c, x: c.gamma(x)),
    # SymPy's loggamma is complex where Gamma < 0 (and mpmath's off the positive axis): SciPy's
    # gammaln (log|Gamma|) only for x > 0
    "loggamma": _k(sp.loggamma, _hybrid(sc.gammaln, lambda x: x > 0, _mp_loggamma), _mp_loggamma),
    "polygamma": _k(sp.polygamma, _hybrid(sc.polygamma, lambda n, x: _is_int(n) & (n >= 0), lambda c, n, x: c.polygamma(int(n), x) if n == int(n) else c.nan),
                    lambda c, n, x: c.polygamma(int(n), x) if n == int(n) else c.nan, (2,), integer=(0,)),
    "zeta": _k(sp.zeta, _np_zeta, _mp_zeta, (1, 2), numeric=(0,)),
    "erf": _k(sp.erf, _scipy(sc.erf), lambda c, x: c.erf(x)),
    "erfc": _k(sp.erfc, _scipy(sc.erfc), lambda c, x: c.erfc(x)),
    "erfinv": _k(sp.erfinv, _scipy(sc.erfinv), lambda c, y: c.erfinv(y)),
    "erfcinv": _k(sp.erfcinv, _scipy(sc.erfcinv), _mp_erfcinv),
    "erfi": _k(sp.erfi, _scipy(sc.erfi), lambda c, x: c.erfi(x)),
    "besseli": _k(sp.besseli, _scipy(sc.iv), lambda c, n, x: c.besseli(n, x), (2,), numeric=(0,)),
    "besselj": _k(sp.besselj, _scipy(sc.jv), lambda c, n, x: c.besselj(n, x), (2,), numeric=(0,)),
    "besselk": _k(sp.besselk, _hybrid(sc.kv, lambda n, x: x > 0, lambda c, n, x: c.besselk(n, x)),
                  lambda c, n, x: c.besselk(n, x), (2,), numeric=(0,)),
    "bessely": _k(sp.bessely, _hybrid(sc.yv, lambda n, x: x > 0, lambda c, n, x: c.bessely(n, x)),
                  lambda c, n, x: c.bessely(n, x), (2,), numeric=(0,)),
    "Ei": _k(sp.Ei, _scipy(sc.expi), lambda c, x: c.ei(x)),
    # SymPy's derivative of expint in nu is a Meijer G (no float64 route): numerically instead
    "expint": _k(sp.expint, _np_expint, _mp_expint, (2,), numeric=(0,)),
    "lowergamma": _k(sp.lowergamma, _hybrid(functools.partial(_np_gamma_inc, sc.gammainc), lambda s, x: (s > 0) & (x >= 0), _mp_lowergamma),
                        _mp_lowergamma, (2,), numeric=(0,)),
    "uppergamma": _k(sp.uppergamma, _hybrid(functools.partial(_np_gamma_inc, sc.gammaincc), lambda s, x: (s > 0) & (x >= 0), _mp_uppergamma),
                        _mp_uppergamma, (2,), numeric=(0,)),
    "beta": _k(sp.beta, _scipy(sc.beta), lambda c, a, b: c.beta(a, b), (2,)),
    "LambertW": _k(sp.LambertW, _np_lambertw, _mp_lambertw, (1, 2), integer=(1,)),
    # SciPy has no polylogarithm
    "polylog": _k(sp.polylog, lambda s, z: _mp_loop(_mp_polylog, s, z), _mp_polylog, (2,), numeric=(0,)),
    "fresnels": _k(sp.fresnels, _scipy(lambda x: sc.fresnel(x)[0]), lambda c, x: c.fresnels(x)),
    "fresnelc": _k(sp.fresnelc, _scipy(lambda x: sc.fresnel(x)[1]), lambda c, x: c.fresnelc(x)),
    # li(x) = Ei(log x) for x > 0; SymPy's li is complex for x < 0
    "li": _k(sp.li, _hybrid(lambda x: sc.expi(np.log(x)), lambda x: x > 0, lambda c, x: c.li(x)), lambda c, x: c.li(x)),
    "Li": _k(sp.Li, _hybrid(lambda x: sc.expi(np.log(x)) - sc.expi(np.log(2.0)), lambda x: x > 0, lambda c, x: c.li(x, offset=True)),
             lambda c, x: c.li(x, offset=True)),
    "Si": _k(sp.Si, _scipy(lambda x: sc.sici(x)[0]), lambda c, x: c.si(x)),
    # Ci and Chi are complex for x < 0 in SymPy; SciPy returns a real convention there
    "Ci": _k(sp.Ci, _hybrid(lambda x: sc.sici(x)[1], lambda x: x > 0, lambda c, x: c.ci(x)), lambda c, x: c.ci(x)),
    "Shi": _k(sp.Shi, _scipy(lambda x: sc.shichi(x)[0]), lambda c, x: c.shi(x)),
    "Chi": _k(sp.Chi, _hybrid(lambda x: sc.shichi(x)[1], lambda x: x > 0, lambda c, x: c.chi(x)), lambda c, x: c.chi(x)),
    "airyai": _k(sp.airyai, _scipy(lambda x: sc.airy(x)[0]), lambda c, x: c.airyai(x)),
    "airyaiprime": _k(sp.airyaiprime, _scipy(lambda x: sc.airy(x)[1]), lambda c, x: c.airyai(x, derivative=1)),
    "airybi": _k(sp.airybi, _scipy(lambda x: sc.airy(x)[2]), lambda c, x: c.airybi(x)),
    "airybiprime": _k(sp.airybiprime, _scipy(lambda x: sc.airy(x)[3]), lambda c, x: c.airybi(x, derivative=1)),
    # SymPy and SciPy both use the parameter m = k**2
    "elliptic_k": _k(sp.elliptic_k, _scipy(sc.ellipk), lambda c, m: c.ellipk(m)),
    "elliptic_e": _k(sp.elliptic_e, _np_elliptic_e, _mp_elliptic_e, (1, 2)),
    "elliptic_f": _k(sp.elliptic_f, _scipy(sc.ellipkinc), lambda c, a, m: c.ellipf(a, m), (2,)),
    "elliptic_pi": _k(sp.elliptic_pi, _np_elliptic_pi, _mp_elliptic_pi, (2, 3)),
    # SymPy cannot differentiate dirichlet_eta at all (it returns a Derivative)
    "dirichlet_eta": _k(sp.dirichlet_eta, lambda s: _mp_loop(lambda c, s: c.altzeta(s), s),
                        lambda c, s: c.altzeta(s), (1,), numeric=(0,)),
}

# Names the NumPy/JAX printers emit for a kernel, besides the kernel's own name.
_ALIASES = {"lgamma": "loggamma"}

# Kernels replaced by stand-in classes in prepare(): those the NumPy/JAX printers refuse
# (``_print_not_supported``: lower/uppergamma, fresnels/c) or rewrite (beta -> a ratio of gammas
# that overflows), and those with an argument SymPy cannot differentiate in (it leaves a
# Derivative, or a Meijer G that has no float64 route), whose stand-in differentiates there
# numerically.
_STANDIN_KERNELS = frozenset(
    {"lowergamma", "uppergamma", "beta", "fresnels", "fresnelc"} | {n for n, k in _KERNELS.items() if k.numeric}
)

# The user-facing names (digamma and E1 are SymPy shorthands that evaluate to polygamma(0, x)
# and expint(1, x)).
SUPPORTED: tuple[str, ...] = tuple(sorted(
    {k.sympy.__name__ for k in _KERNELS.values()} | {"digamma", "E1"}, key=str.lower))


def _partial_name(kname: str, orders: tuple[int, ...]) -> str:
    return f"gc_d_{kname}_" + "_".join(map(str, orders))


def _kernel_of_class(cls) -> str | None:
    for name, k in _KERNELS.items():
        if k.sympy is cls:
            return name
    return getattr(cls, "_gc_kernel", None)


@functools.lru_cache(maxsize=None)
def _standin(kname: str, orders: tuple[int, ...] | None = None) -> type:
    """A SymPy function class ``gc_<kname>`` (orders None) or ``gc_d_<kname>_<orders>`` (the
    numerical partial derivative of those orders), printed by name and defined in every namespace
    here.  Its ``fdiff`` is SymPy's own derivative in the arguments SymPy differentiates, else
    the next numerical partial, so ``sp.diff`` of a prepared expression stays printable."""
    k = _KERNELS[kname]
    name = f"gc_{kname}" if orders is None else _partial_name(kname, orders)

    def fdiff(self, argindex=1):
        i = argindex - 1
        n = len(self.args)
        if i in k.integer:
            raise sp.core.function.ArgumentIndexError(self, argindex)
        if orders is not None or i in k.numeric:
            nxt = tuple(o + (j == i) for j, o in enumerate(orders or (0,) * n))
            if sum(nxt) > _MAX_NUMERIC_ORDER:
                raise sp.core.function.ArgumentIndexError(self, argindex)
            return _standin(kname, nxt)(*self.args)
        a = sp.symbols(f"gc_a0:{n}", real=True)
        d = sp.diff(k.sympy(*a), a[i])
        return prepare(d.xreplace(dict(zip(a, self.args))))

    nargs = k.arity if orders is None else (len(orders),)
    return type(name, (sp.Function,), {"fdiff": fdiff, "nargs": nargs, "_gc_kernel": kname, "_gc_orders": orders})


def _numeric_orders():
    """(kernel, orders) of every numerical partial derivative stand-in prepare() may emit."""
    for name, k in _KERNELS.items():
        for n in k.arity:
            for orders in itertools.product(range(_MAX_NUMERIC_ORDER + 1), repeat=n):
                if 0 < sum(orders) <= _MAX_NUMERIC_ORDER and not any(orders[i] for i in k.integer if i < n):
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
        name = _kernel_of_class(type(f))
        if name is None or len(f.args) not in _KERNELS[name].arity:
            return False
        for v, _ in n.variable_count:
            if v not in f.args or sum(a.has(v) for a in f.args) != 1:
                return False
        return True

    def to_partial(n):
        f = n.expr
        name = _kernel_of_class(type(f))
        orders = list(getattr(type(f), "_gc_orders", None) or (0,) * len(f.args))
        for v, c in n.variable_count:
            orders[f.args.index(v)] += int(c)
        if any(orders[i] for i in _KERNELS[name].integer if i < len(orders)) or sum(orders) > _MAX_NUMERIC_ORDER:
            return n  # not differentiable there / too high: left for the caller to refuse
        return _standin(name, tuple(orders))(*f.args)

    if expr.has(sp.Derivative):
        expr = expr.replace(is_partial, to_partial)
        if expr.has(sp.Subs):
            expr = expr.replace(lambda n: isinstance(n, sp.Subs) and not n.expr.has(sp.Derivative), lambda n: n.doit())
    for kname in sorted(_STANDIN_KERNELS):
        k = _KERNELS[kname]
        if expr.has(k.sympy):
            expr = expr.replace(
                lambda n, k=k: isinstance(n, k.sympy) and len(n.args) in k.arity,
                lambda n, kname=kname: _standin(kname)(*n.args),
            )
    return expr


# --------------------------------------------------------------------------------------------
def _step_options(c, xs, orders) -> dict:
    """mpmath.diff options that keep every step on the side of 0 where the point lies.

    mpmath's default step is 2^-(prec + 10), about 1e-34 at 30 digits.  At a point closer to 0
    than that, a central difference crosses 0, where many special functions' domains end (the
    x of lowergamma, gammainc, betainc): mpmath continues them into the complex plane, and
    ``mpmath.gammainc(a, -1e-34)`` recurses for minutes.  So the step is scaled down to the
    smallest nonzero differentiated argument (the extra working precision of mpmath.diff keeps
    it accurate), and at exactly 0 the difference is one-sided (forward): the one-sided
    derivative is the derivative wherever the function is differentiable at 0.
    """
    default = c.ldexp(1, -c.prec - 10)
    diffed = [c.mpf(x) for x, o in zip(xs, orders) if o]
    opts: dict = {}
    small = [abs(x) for x in diffed if x != 0 and abs(x) < 1e6 * default]
    if small:
        opts["h"] = min(small) * c.ldexp(1, -c.prec - 10)
    if any(x == 0 for x in diffed):
        opts["direction"] = 1
    return opts


def _np_partial(kname: str, orders: tuple[int, ...]) -> Callable:
    k = _KERNELS[kname]

    def one(c, *xs):
        return c.diff(lambda *a: k.mp(c, *a), xs, orders, **_step_options(c, xs, orders))

    return lambda *args: _mp_loop(one, *args)


def _np_entry(kname: str) -> Callable:
    k = _KERNELS[kname]
    arity = k.arity

    def f(*args):
        if len(args) not in arity:
            raise TypeError(f"{kname} takes {' or '.join(map(str, arity))} arguments, got {len(args)}")
        return k.numpy(*args)

    f.__name__ = kname
    return f


@functools.lru_cache(maxsize=1)
def _numpy_ns() -> dict:
    ns = {name: _np_entry(name) for name in _KERNELS}
    ns.update({f"gc_{name}": ns[name] for name in _STANDIN_KERNELS})
    for alias, name in _ALIASES.items():
        ns[alias] = ns[name]
    for name, orders in _numeric_orders():
        ns[_partial_name(name, orders)] = _np_partial(name, orders)
    return ns


def numpy_namespace() -> dict:
    """name -> vectorised float64 NumPy callable, for
    ``sp.lambdify(args, prepare(expr), modules=[numpy_namespace(), "numpy"])``.

    Values from ``scipy.special`` on the argument range where SciPy has a routine, else mpmath at
    :data:`MP_DIGITS` digits element by element; never JAX.  NaN where SymPy's value is complex.
    Inputs of any float dtype (long double included) are evaluated in float64.
    """
    return dict(_numpy_ns())


# --------------------------------------------------------------------------------------------
def _mp_entry(kname: str) -> Callable:
    k = _KERNELS[kname]

    def f(*args):
        return k.mp(mpmath.mp, *[mpmath.mpmathify(a) for a in args])

    f.__name__ = kname
    return f


def _mp_partial(kname: str, orders: tuple[int, ...]) -> Callable:
    k = _KERNELS[kname]

    def f(*args):
        xs = tuple(mpmath.mpmathify(a) for a in args)
        return mpmath.diff(lambda *a: k.mp(mpmath.mp, *a), xs, orders, **_step_options(mpmath.mp, xs, orders))

    return f


@functools.lru_cache(maxsize=1)
def _mpmath_ns() -> dict:
    ns = {name: _mp_entry(name) for name in _KERNELS}
    ns.update({f"gc_{name}": ns[name] for name in _STANDIN_KERNELS})
    for alias, name in _ALIASES.items():
        ns[alias] = ns[name]
    for name, orders in _numeric_orders():
        ns[_partial_name(name, orders)] = _mp_partial(name, orders)
    return ns


def mpmath_namespace() -> dict:
    """name -> mpmath callable at the working precision, for
    ``sp.lambdify(args, prepare(expr), modules=[mpmath_namespace(), "mpmath"])``.

    Covers every supported function (SymPy's mpmath printer emits ``LambertW``, ``erfcinv``,
    ``polylog``... some of which mpmath spells differently or lacks) and the stand-ins of
    :func:`prepare`.  Returns mpmath numbers; complex where SymPy's value is complex.
    """
    return dict(_mpmath_ns())


# --------------------------------------------------------------------------------------------
def _float_dtype():
    return jnp.result_type(float)  # float64 under jax_enable_x64, float32 otherwise


def _callback(np_fn: Callable, *args):
    shape = jnp.broadcast_shapes(*[jnp.shape(a) for a in args])
    dtype = _float_dtype()
    args = [jnp.broadcast_to(jnp.asarray(a, dtype), shape) for a in args]

    def host(*xs):
        return np.asarray(np_fn(*[np.asarray(x, np.float64) for x in xs]), dtype=dtype).reshape(np.shape(xs[0]))

    # elementwise: every argument is broadcast to the batch under vmap
    return jax.pure_callback(host, jax.ShapeDtypeStruct(shape, dtype), *args, vmap_method="broadcast_all")


@functools.lru_cache(maxsize=None)
def _symbolic_partial(kname: str, nargs: int, i: int) -> Callable:
    """d kernel / d arg_i as SymPy derives it, lambdified with the JAX namespace (recursively)."""
    a = sp.symbols(f"a0:{nargs}", real=True)
    d = prepare(sp.diff(_KERNELS[kname].sympy(*a), a[i]))
    if d.has(sp.Derivative):  # not expected for the args not marked numeric; be explicit
        raise NotImplementedError(f"SymPy leaves an unevaluated derivative of {kname} in argument {i}: {d}")
    return sp.lambdify(a, d, modules=[_jax_ns(), "jax"])


@functools.lru_cache(maxsize=None)
def _jax_node(kname: str, orders: tuple[int, ...]) -> Callable:
    """The JAX function for kernel ``kname`` (orders all zero) or its numerical partial."""
    k = _KERNELS[kname]
    n = len(orders)
    np_fn = k.numpy if not any(orders) else _np_partial(kname, orders)

    @jax.custom_jvp
    def f(*args):
        return _callback(np_fn, *args)

    def jvp(primals, tangents):
        y = f(*primals)
        dy = jnp.zeros_like(y)
        for i, t in enumerate(tangents):
            if isinstance(t, jax.custom_derivatives.SymbolicZero) or i in k.integer:
                continue  # a constant argument, or an integer-only one (no derivative there)
            if any(orders) or i in k.numeric:
                nxt = tuple(o + (j == i) for j, o in enumerate(orders))
                d = _jax_node(kname, nxt)(*primals)
            else:
                d = _symbolic_partial(kname, n, i)(*primals)
            dy = dy + t * d
        return y, dy

    f.defjvp(jvp, symbolic_zeros=True)
    return f


def _jax_entry(kname: str) -> Callable:
    k = _KERNELS[kname]

    def f(*args):
        if len(args) not in k.arity:
            raise TypeError(f"{kname} takes {' or '.join(map(str, k.arity))} arguments, got {len(args)}")
        dtype = _float_dtype()
        return _jax_node(kname, (0,) * len(args))(*[jnp.asarray(a, dtype) for a in args])

    f.__name__ = kname
    return f


def _jax_partial_entry(kname: str, orders: tuple[int, ...]) -> Callable:
    def f(*args):
        dtype = _float_dtype()
        return _jax_node(kname, orders)(*[jnp.asarray(a, dtype) for a in args])

    return f


@functools.lru_cache(maxsize=1)
def _jax_ns() -> dict:
    ns = {name: _jax_entry(name) for name in _KERNELS}
    ns.update({f"gc_{name}": ns[name] for name in _STANDIN_KERNELS})
    for alias, name in _ALIASES.items():
        ns[alias] = ns[name]
    for name, orders in _numeric_orders():
        ns[_partial_name(name, orders)] = _jax_partial_entry(name, orders)
    return ns


def jax_namespace() -> dict:
    """name -> JAX-traceable callable, for
    ``sp.lambdify(args, prepare(expr), modules=[jax_namespace(), "jax"])``.

    Values are :func:`numpy_namespace`'s, through ``jax.pure_callback`` (jit- and vmap-able);
    derivatives through ``jax.custom_jvp`` with SymPy's derivative of the function as the tangent,
    lambdified with this namespace again (any order, forward or reverse).  In arguments SymPy
    cannot differentiate (zeta's s, polylog's s, a Bessel order, the s of lower/upper gamma,
    expint's order) the tangent is a numerical derivative, mpmath.diff at :data:`MP_DIGITS`
    digits.  Integer-only arguments (polygamma's n, LambertW's branch) get a zero tangent.  Never
    calls ``jax.scipy.special``.  Float64 needs ``jax.enable_x64``.
    """
    return dict(_jax_ns())


# --------------------------------------------------------------------------------------------
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
    import builtins

    # the function alone: nested calls are checked as nodes of their own, so a parent (exp of an
    # unknown function) is not blamed for its child
    try:
        probe = node.func(*[a if a.is_Atom else sp.Dummy(real=True) for a in node.args])
    except Exception:  # noqa: BLE001 - Piecewise and the like need their structured args
        probe = node
    try:
        fn = sp.lambdify(sorted(probe.free_symbols, key=str), prepare(probe), modules=modules)
    except Exception as e:  # noqa: BLE001 - a printer's refusal, reported to the user
        return f"{type(e).__name__}: {str(e).splitlines()[0]}"
    missing = [n for n in _printable_names(fn) if n not in fn.__globals__ and not hasattr(builtins, n)]
    if missing:
        return f"no definition of {', '.join(sorted(missing))}"
    return None


_ROUTES = {"float64 (JAX)": lambda: [_jax_ns(), "jax"], "NumPy": lambda: [_numpy_ns(), "numpy"],
           "mpmath": lambda: [_mpmath_ns(), "mpmath"]}


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
    seen: dict[tuple, str] = {}
    for node in _walk(exprs):
        if not isinstance(node, (sp.Function, sp.Derivative)) and not (
            isinstance(node, sp.Basic) and node.is_Function
        ):
            continue
        key = (type(node).__name__, len(node.args)) if not isinstance(node, sp.Derivative) else (str(node), 0)
        if key in seen:
            continue
        kname = _kernel_of_class(type(node))
        if kname is not None and len(node.args) not in _KERNELS[kname].arity:
            seen[key] = f"{type(node).__name__} with {len(node.args)} arguments (supported: " \
                f"{' or '.join(map(str, _KERNELS[kname].arity))})"
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
            + ". Supported special functions: " + ", ".join(SUPPORTED)
            + " (and the elementary functions SymPy prints for NumPy, JAX and mpmath)."
        )
