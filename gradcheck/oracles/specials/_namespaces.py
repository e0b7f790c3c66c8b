"""The name -> callable namespaces that ``sp.lambdify`` evaluates a prepared expression with:
float64 NumPy (SciPy, or mpmath where SciPy has no routine), mpmath at the working precision,
and JAX (the NumPy values through ``jax.pure_callback``, never ``jax.scipy.special``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import sympy as sp

from ._kernels import ALIASES, KERNELS, STANDIN_KERNELS, mp_loop
from ._prepare import numeric_orders, partial_name, prepare

__all__ = ["jax_namespace", "mpmath_modules", "mpmath_namespace", "numpy_modules", "numpy_namespace"]


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
    k = KERNELS[kname]

    def one(c, *xs):
        return c.diff(lambda *a: k.mp(c, *a), xs, orders, **_step_options(c, xs, orders))

    return lambda *args: mp_loop(one, *args)


def _np_entry(kname: str) -> Callable:
    k = KERNELS[kname]
    arity = k.arity

    def f(*args):
        if len(args) not in arity:
            raise TypeError(f"{kname} takes {' or '.join(map(str, arity))} arguments, got {len(args)}")
        return k.numpy(*args)

    f.__name__ = kname
    return f


def _namespace(entry: Callable, partial: Callable) -> dict:
    """Every kernel by its SymPy name, its stand-in name and its aliases, and every numerical
    partial derivative :func:`prepare` may emit, built by ``entry(name)`` / ``partial(name, orders)``."""
    ns = {name: entry(name) for name in KERNELS}
    ns.update({f"gc_{name}": ns[name] for name in STANDIN_KERNELS})
    for alias, name in ALIASES.items():
        ns[alias] = ns[name]
    for name, orders in numeric_orders():
        ns[partial_name(name, orders)] = partial(name, orders)
    return ns


@functools.lru_cache(maxsize=1)
def numpy_ns() -> dict:
    return _namespace(_np_entry, _np_partial)


def numpy_namespace() -> dict:
    """name -> vectorised float64 NumPy callable, for
    ``sp.lambdify(args, prepare(expr), modules=[numpy_namespace(), "numpy"])``.

    Values from ``scipy.special`` on the argument range where SciPy has a routine, else mpmath at
    :data:`MP_DIGITS` digits element by element; never JAX.  NaN where SymPy's value is complex.
    Inputs of any float dtype (long double included) are evaluated in float64.
    """
    return dict(numpy_ns())


# --------------------------------------------------------------------------------------------
def _mp_entry(kname: str) -> Callable:
    k = KERNELS[kname]

    def f(*args):
        return k.mp(mpmath.mp, *[mpmath.mpmathify(a) for a in args])

    f.__name__ = kname
    return f


def _mp_partial(kname: str, orders: tuple[int, ...]) -> Callable:
    k = KERNELS[kname]

    def f(*args):
        xs = tuple(mpmath.mpmathify(a) for a in args)
        return mpmath.diff(lambda *a: k.mp(mpmath.mp, *a), xs, orders, **_step_options(mpmath.mp, xs, orders))

    return f


@functools.lru_cache(maxsize=1)
def mpmath_ns() -> dict:
    return _namespace(_mp_entry, _mp_partial)


def mpmath_namespace() -> dict:
    """name -> mpmath callable at the working precision, for
    ``sp.lambdify(args, prepare(expr), modules=[mpmath_namespace(), "mpmath"])``.

    Covers every supported function (SymPy's mpmath printer emits ``LambertW``, ``erfcinv``,
    ``polylog``... some of which mpmath spells differently or lacks) and the stand-ins of
    :func:`prepare`.  Returns mpmath numbers; complex where SymPy's value is complex.
    """
    return dict(mpmath_ns())


# --------------------------------------------------------------------------------------------
def _float_dtype():
    return jnp.result_type(float)  # float64 under jax_enable_x64, float32 otherwise


def _callback(np_fn: Callable, *args):
    shape = jnp.broadcast_shapes(*[jnp.shape(a) for a in args])
    dtype = _float_dtype()
    arrays = [jnp.broadcast_to(jnp.asarray(a, dtype), shape) for a in args]

    def host(*xs):
        return np.asarray(np_fn(*[np.asarray(x, np.float64) for x in xs]), dtype=dtype).reshape(np.shape(xs[0]))

    # elementwise: every argument is broadcast to the batch under vmap
    return jax.pure_callback(host, jax.ShapeDtypeStruct(shape, dtype), *arrays, vmap_method="broadcast_all")


@functools.cache
def _symbolic_partial(kname: str, nargs: int, i: int) -> Callable:
    """d kernel / d arg_i as SymPy derives it, lambdified with the JAX namespace (recursively)."""
    a = sp.symbols(f"a0:{nargs}", real=True)
    d = prepare(sp.diff(KERNELS[kname].sympy(*a), a[i]))
    if d.has(sp.Derivative):  # not expected for the args not marked numeric; be explicit
        raise NotImplementedError(f"SymPy leaves an unevaluated derivative of {kname} in argument {i}: {d}")
    return sp.lambdify(a, d, modules=[jax_ns(), "jax"])


@functools.cache
def _jax_node(kname: str, orders: tuple[int, ...]) -> Callable:
    """The JAX function for kernel ``kname`` (orders all zero) or its numerical partial."""
    k = KERNELS[kname]
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
    k = KERNELS[kname]

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
def jax_ns() -> dict:
    return _namespace(_jax_entry, _jax_partial_entry)


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
    return dict(jax_ns())


# --------------------------------------------------------------------------------------------
def numpy_modules() -> list:
    """``sp.lambdify`` modules for float64 NumPy evaluation, special functions independent of JAX."""
    return [numpy_namespace(), "scipy", "numpy"]


def mpmath_modules() -> list:
    """``sp.lambdify`` modules for evaluation in mpmath at the working precision."""
    return [mpmath_namespace(), "mpmath"]
