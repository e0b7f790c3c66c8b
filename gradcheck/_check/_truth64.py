"""fn in float64 for the numerical path (``reference=None``): as a function of one flat point,
of one leaf at a time (:class:`~gradcheck.oracles.numerical.Block`), and its batched autodiff,
which sizes the terms a tolerance allows for and is never taken as truth."""

from __future__ import annotations

from collections.abc import Hashable

import jax
import jax.numpy as jnp
import numpy as np

from ..oracles import numerical
from ..oracles._batched import in_chunks

__all__ = ["f64_functions", "or_zeros"]

_F64: dict = {}


def f64_functions(spec, prog):
    """fn in float64 as a function of one flat point, and its batched autodiff (for the size of
    the terms only: never as truth).  Cached per (fn, shapes)."""
    key = (spec.fn, repr(spec.shapes), spec.order)
    cache = _F64 if isinstance(spec.fn, Hashable) else None  # an unhashable callable (a dataclass instance): not cached
    if cache is not None and key in cache:
        return cache[key]
    N = prog.n_in

    def f(x):
        return jnp.ravel(spec.flat_fn(*prog.unflatten(x)))

    def block(a):  # fn of leaf a alone, the other leaves read from x as they are
        def g(x, y):
            xs = prog.unflatten(x)
            return jnp.ravel(spec.flat_fn(*xs[:a], y.reshape(xs[a].shape), *xs[a + 1 :]))

        return numerical.Block(g, int(prog.offsets[a]), int(prog.offsets[a + 1]))

    def pull(z):  # z = (x, c): the cotangent's pull-back, differentiated along x only
        x, c = z[:N], z[N:]
        return jax.vjp(f, x)[1](c)[0]

    def dot_c(z):
        x, c = z[:N], z[N:]
        return jnp.dot(c, f(x))

    def jv(x, tr):
        return jax.vmap(lambda t: jax.jvp(f, (x,), (t,))[1])(tr)

    def vj(x, cr):
        return jax.vmap(lambda c: jax.vjp(f, x)[1](c)[0])(cr)

    def hscale(x, tr, cr):
        return jax.vmap(lambda t, c: jax.jvp(lambda y: jax.vjp(f, y)[1](c)[0], (x,), (t,))[1])(tr, cr)

    out = {
        "f": f,
        "leaves": [block(a) for a in range(len(prog.shapes))],
        "pull": pull,
        "dot_c": dot_c,
        "values": in_chunks(jax.jit(jax.vmap(f))),
        "jv": or_zeros(in_chunks(jax.jit(jax.vmap(jv)))),
        "vj": or_zeros(in_chunks(jax.jit(jax.vmap(vj)))),
        "hscale": or_zeros(in_chunks(jax.jit(jax.vmap(hscale)))),
    }
    if cache is not None:
        cache[key] = out
    return out


def or_zeros(g):
    """g, or zeros where fn's own autodiff cannot run (a custom_vjp has no JVP; a rule not
    linear in its tangent cannot be transposed): these only size the tolerance, never judge."""

    def run(x, d, *more):
        try:
            return np.asarray(g(x, d, *more))
        except Exception:
            return np.zeros(d.shape[:2] + (0,))

    return run
