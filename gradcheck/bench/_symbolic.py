"""The ``symbolic`` group: seconds to derive and lambdify ``chain.grad_b1`` (L in {4, 64, 256,
1024}) and the softmax Jacobian (C in {2, 4, 8, 16}), with the growth exponent of a log-log fit.

The objects are the ones the claims derive from: :func:`gradcheck.models.chain_backward` for the
chain, ``Matrix.jacobian`` of the textbook softmax (:func:`gradcheck.models.softmax_ref`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .._x64 import float64
from ..models import chain_backward, chain_symbols, layer_rule, softmax_ref
from ..symbolic import array_symbols, concrete
from ._softmax import softmax_jacobian_closed
from ._timing import growth_exponent

__all__ = ["bench_symbolic"]


def _derive_chain_grad_b1(L: int):
    """``(dC/db_1, symbols)``: the product of per-layer factors that claim ``chain.grad_b1`` proves."""
    g = chain_backward(L)
    return g.grad_b(1), g.s


def _clear_symbolic_caches():
    for f in (chain_symbols, layer_rule):
        f.cache_clear()


def _time_chain_symbolic(L: int) -> dict[str, Any]:
    _clear_symbolic_caches()
    t0 = time.perf_counter()
    expr, s = _derive_chain_grad_b1(L)
    t_derive = time.perf_counter() - t0
    t0 = time.perf_counter()
    expr = concrete(expr)  # sigma' -> the logistic's derivative, by SymPy
    args = (list(s.w), list(s.z), s.a[-1], s.y)
    fn = sp.lambdify(args, expr, modules="jax", cse=True)
    t_lambdify = time.perf_counter() - t0
    # w_k sigma'(0) = 4 c_k / 4 with c_k = 2, 1/2, 2, ...: powers of two, so the true value is
    # exact at any depth, and a factor too many or too few changes it by 2x.  In float64: SymPy
    # collects the product of ratios into a ratio of products, prod w_k e^{-z_k} over
    # prod (1 + e^{-z_k})^2, and at z = 0 the denominator is 4^L, beyond float32 from L = 64
    # and beyond float64 from L = 512.  The value column shows it.
    c = np.where(np.arange(1, L + 1) % 2 == 0, 2.0, 0.5)
    expected = 0.25 * float(np.prod(c[1:]))  # sigma'(0) = 1/4, dC/da_L = a_L - y = 1
    with float64():
        w = jnp.asarray(4.0 * c, jnp.float64)
        z = jnp.zeros((L,), jnp.float64)
        t0 = time.perf_counter()
        jitted = jax.jit(lambda w, z, a, y: fn(list(w), list(z), a, y))
        value = float(jitted(w, z, jnp.float64(1.0), jnp.float64(0.0)))
        t_jit = time.perf_counter() - t0
    return {
        "what": "chain.grad_b1",
        "size": L,
        "derive_s": t_derive,
        "lambdify_s": t_lambdify,
        "seconds": t_derive + t_lambdify,
        "first_call_s": t_jit,
        "value": value,
        "expected": expected,
        "ok": value == expected,
    }


def _derive_softmax_jacobian(c: int):
    """``(a, J)``: ``Matrix.jacobian`` of the softmax of C logits, as claim ``softmax.jacobian`` derives it."""
    a = array_symbols("a", (c,))
    return a, softmax_ref(a).jacobian(a)


def _time_softmax_symbolic(c: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    a, jac = _derive_softmax_jacobian(c)
    t_derive = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn = sp.lambdify([list(a)], jac, modules="jax", cse=True)
    t_lambdify = time.perf_counter() - t0
    x = jnp.linspace(-1.0, 1.0, c, dtype=jnp.float32)
    t0 = time.perf_counter()
    got = np.asarray(jax.jit(lambda x: jnp.asarray(fn(list(x))))(x))
    t_jit = time.perf_counter() - t0
    err = float(np.max(np.abs(got - np.asarray(softmax_jacobian_closed(x)))))
    return {
        "what": "softmax jacobian",
        "size": c,
        "derive_s": t_derive,
        "lambdify_s": t_lambdify,
        "seconds": t_derive + t_lambdify,
        "first_call_s": t_jit,
        "value": err,
        "expected": 0.0,
        "ok": err <= 1e-6,
    }


def _median_run(timer: Callable[[int], dict], size: int, repeats: int) -> dict[str, Any]:
    runs = sorted((timer(size) for _ in range(repeats)), key=lambda r: r["seconds"])
    row = runs[len(runs) // 2]
    row["repeats"] = repeats
    return row


def bench_symbolic(
    quick: bool = False,
    depths: Sequence[int] | None = None,
    classes: Sequence[int] | None = None,
    repeats: int | None = None,
) -> dict[str, Any]:
    """Seconds to derive and lambdify (SymPy only; the median run of ``repeats``, caches
    cleared before each), and the first jitted call apart."""
    depths = tuple(depths or ((4, 16, 32) if quick else (4, 64, 256, 1024)))
    classes = tuple(classes or ((2, 4, 6) if quick else (2, 4, 8, 16)))
    repeats = repeats or (1 if quick else 3)
    _time_chain_symbolic(2), _time_softmax_symbolic(2)  # imports and first-use caches, not timed
    rows = [_median_run(_time_chain_symbolic, L, repeats) for L in depths]
    rows += [_median_run(_time_softmax_symbolic, c, repeats) for c in classes]
    growth = {}
    for what, _sizes in (("chain.grad_b1", depths), ("softmax jacobian", classes)):
        rs = [r for r in rows if r["what"] == what]
        growth[what] = growth_exponent([r["size"] for r in rs], [r["seconds"] for r in rs])
    return {"rows": rows, "growth_exponent": growth, "targets": []}
