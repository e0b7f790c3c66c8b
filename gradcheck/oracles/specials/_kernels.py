"""The table of special functions: for each, its SymPy class, its float64 value route (SciPy
where SciPy has a routine for the argument range, else mpmath at :data:`MP_DIGITS` digits,
element by element), its mpmath value, its arities and how each argument is differentiated.

The NumPy, mpmath and JAX namespaces (:mod:`._namespaces`) and the stand-ins of
:func:`prepare` (:mod:`._prepare`) are all built from :data:`KERNELS`; a new special function
is one row here.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable

import mpmath
import numpy as np
import scipy.special as sc
import sympy as sp

__all__ = ["ALIASES", "KERNELS", "MAX_NUMERIC_ORDER", "MP_DIGITS", "STANDIN_KERNELS", "SUPPORTED", "Kernel", "mp_loop"]

#: Decimal digits of the mpmath fallback used for float64 values and numerical derivatives.
MP_DIGITS = 30

#: Highest total order of numerical partial derivative given a stand-in name (see prepare).
MAX_NUMERIC_ORDER = 4

# --------------------------------------------------------------------------------------------
# mpmath at MP_DIGITS, one private context per thread: the mpmath truth (oracles/mpmath_truth.py)
# changes the global mpmath precision under its own lock, and XLA may run host callbacks on several threads; a
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


def mp_loop(fn: Callable, *args) -> np.ndarray:
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
            out[rest] = mp_loop(mp_fn, *[a[rest] for a in arrs])
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
class Kernel:
    """One special function as printed: its value routes and how to differentiate it."""

    sympy: type  # the SymPy function class: SymPy args -> the SymPy expression (for its derivative)
    numpy: Callable  # float64 arrays -> float64 array
    mp: Callable  # (mpmath context, *numbers) -> number
    arity: tuple[int, ...]
    numeric: frozenset = frozenset()  # args differentiated with mpmath.diff
    integer: frozenset = frozenset()  # integer-only args: zero tangent


def _k(sympy, numpy, mp, arity=(1,), numeric=(), integer=()):
    return Kernel(sympy, numpy, mp, tuple(arity), frozenset(numeric), frozenset(integer))


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
    return mp_loop(_mp_elliptic_pi, n, a) if m is None else mp_loop(_mp_elliptic_pi, n, a, m)


def _np_expint(nu, z):
    # scipy.special.expn takes an integer order (it truncates others with a warning) and z > 0
    return _hybrid(sc.expn, lambda n, z: _is_int(n) & (n >= 0) & (z > 0), _mp_expint)(nu, z)


def _np_gamma_inc(regularised, s, x):
    return regularised(s, x) * sc.gamma(s)


KERNELS: dict[str, Kernel] = {
    "gamma": _k(sp.gamma, _scipy(sc.gamma), lambda c, x: c.gamma(x)),
    # SymPy's loggamma is complex where Gamma < 0 (and mpmath's off the positive axis): SciPy's
    # gammaln (log|Gamma|) only for x > 0
    "loggamma": _k(sp.loggamma, _hybrid(sc.gammaln, lambda x: x > 0, _mp_loggamma), _mp_loggamma),
    "polygamma": _k(
        sp.polygamma,
        _hybrid(
            sc.polygamma,
            lambda n, x: _is_int(n) & (n >= 0),
            lambda c, n, x: c.polygamma(int(n), x) if n == int(n) else c.nan,
        ),
        lambda c, n, x: c.polygamma(int(n), x) if n == int(n) else c.nan,
        (2,),
        integer=(0,),
    ),
    "zeta": _k(sp.zeta, _np_zeta, _mp_zeta, (1, 2), numeric=(0,)),
    "erf": _k(sp.erf, _scipy(sc.erf), lambda c, x: c.erf(x)),
    "erfc": _k(sp.erfc, _scipy(sc.erfc), lambda c, x: c.erfc(x)),
    "erfinv": _k(sp.erfinv, _scipy(sc.erfinv), lambda c, y: c.erfinv(y)),
    "erfcinv": _k(sp.erfcinv, _scipy(sc.erfcinv), _mp_erfcinv),
    "erfi": _k(sp.erfi, _scipy(sc.erfi), lambda c, x: c.erfi(x)),
    "besseli": _k(sp.besseli, _scipy(sc.iv), lambda c, n, x: c.besseli(n, x), (2,), numeric=(0,)),
    "besselj": _k(sp.besselj, _scipy(sc.jv), lambda c, n, x: c.besselj(n, x), (2,), numeric=(0,)),
    "besselk": _k(
        sp.besselk,
        _hybrid(sc.kv, lambda n, x: x > 0, lambda c, n, x: c.besselk(n, x)),
        lambda c, n, x: c.besselk(n, x),
        (2,),
        numeric=(0,),
    ),
    "bessely": _k(
        sp.bessely,
        _hybrid(sc.yv, lambda n, x: x > 0, lambda c, n, x: c.bessely(n, x)),
        lambda c, n, x: c.bessely(n, x),
        (2,),
        numeric=(0,),
    ),
    "Ei": _k(sp.Ei, _scipy(sc.expi), lambda c, x: c.ei(x)),
    # SymPy's derivative of expint in nu is a Meijer G (no float64 route): numerically instead
    "expint": _k(sp.expint, _np_expint, _mp_expint, (2,), numeric=(0,)),
    "lowergamma": _k(
        sp.lowergamma,
        _hybrid(functools.partial(_np_gamma_inc, sc.gammainc), lambda s, x: (s > 0) & (x >= 0), _mp_lowergamma),
        _mp_lowergamma,
        (2,),
        numeric=(0,),
    ),
    "uppergamma": _k(
        sp.uppergamma,
        _hybrid(functools.partial(_np_gamma_inc, sc.gammaincc), lambda s, x: (s > 0) & (x >= 0), _mp_uppergamma),
        _mp_uppergamma,
        (2,),
        numeric=(0,),
    ),
    "beta": _k(sp.beta, _scipy(sc.beta), lambda c, a, b: c.beta(a, b), (2,)),
    "LambertW": _k(sp.LambertW, _np_lambertw, _mp_lambertw, (1, 2), integer=(1,)),
    # SciPy has no polylogarithm
    "polylog": _k(sp.polylog, lambda s, z: mp_loop(_mp_polylog, s, z), _mp_polylog, (2,), numeric=(0,)),
    "fresnels": _k(sp.fresnels, _scipy(lambda x: sc.fresnel(x)[0]), lambda c, x: c.fresnels(x)),
    "fresnelc": _k(sp.fresnelc, _scipy(lambda x: sc.fresnel(x)[1]), lambda c, x: c.fresnelc(x)),
    # li(x) = Ei(log x) for x > 0; SymPy's li is complex for x < 0
    "li": _k(sp.li, _hybrid(lambda x: sc.expi(np.log(x)), lambda x: x > 0, lambda c, x: c.li(x)), lambda c, x: c.li(x)),
    "Li": _k(
        sp.Li,
        _hybrid(
            lambda x: sc.expi(np.log(x)) - sc.expi(np.log(2.0)), lambda x: x > 0, lambda c, x: c.li(x, offset=True)
        ),
        lambda c, x: c.li(x, offset=True),
    ),
    "Si": _k(sp.Si, _scipy(lambda x: sc.sici(x)[0]), lambda c, x: c.si(x)),
    # Ci and Chi are complex for x < 0 in SymPy; SciPy returns a real convention there
    "Ci": _k(sp.Ci, _hybrid(lambda x: sc.sici(x)[1], lambda x: x > 0, lambda c, x: c.ci(x)), lambda c, x: c.ci(x)),
    "Shi": _k(sp.Shi, _scipy(lambda x: sc.shichi(x)[0]), lambda c, x: c.shi(x)),
    "Chi": _k(
        sp.Chi, _hybrid(lambda x: sc.shichi(x)[1], lambda x: x > 0, lambda c, x: c.chi(x)), lambda c, x: c.chi(x)
    ),
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
    "dirichlet_eta": _k(
        sp.dirichlet_eta, lambda s: mp_loop(lambda c, s: c.altzeta(s), s), lambda c, s: c.altzeta(s), (1,), numeric=(0,)
    ),
}

# Names the NumPy/JAX printers emit for a kernel, besides the kernel's own name.
ALIASES = {"lgamma": "loggamma"}

# Kernels replaced by stand-in classes in prepare(): those the NumPy/JAX printers refuse
# (``_print_not_supported``: lower/uppergamma, fresnels/c) or rewrite (beta -> a ratio of gammas
# that overflows), and those with an argument SymPy cannot differentiate in (it leaves a
# Derivative, or a Meijer G that has no float64 route), whose stand-in differentiates there
# numerically.
STANDIN_KERNELS = frozenset(
    {"lowergamma", "uppergamma", "beta", "fresnels", "fresnelc"} | {n for n, k in KERNELS.items() if k.numeric}
)

# The user-facing names (digamma and E1 are SymPy shorthands that evaluate to polygamma(0, x)
# and expint(1, x)).
SUPPORTED: tuple[str, ...] = tuple(
    sorted({k.sympy.__name__ for k in KERNELS.values()} | {"digamma", "E1"}, key=str.lower)
)
