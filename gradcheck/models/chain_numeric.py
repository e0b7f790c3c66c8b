"""The one-neuron chain in JAX and in mpmath: the numbers the chain claims compare.

JAX API (dtype follows the inputs; wrap calls in ``gradcheck.float64()`` for float64)::

    chain_forward(a0, w, b)             -> (z (L,), a (L+1,))          unrolled to L = 16, lax.scan beyond
    chain_cost(a0, w, b, y)             -> C
    chain_autodiff(a0, w, b, y)         -> (dC/dw, dC/db)             jax.grad of chain_cost
    chain_closed(a0, w, b, y)           -> (dC/dw, dC/db)             suffix cumulative product
    chain_log_closed(a0, w, b, y)       -> (log|dC/db|, sign dC/db)   the same in log space
    closed_form_from(rule)              -> (closed, log_closed)        both, built from the SymPy
                                                                       per-layer factor ``rule``
    chain_truth(a0, w, b, y, dps=50)    -> (log|dC/db|, sign)          mpmath, any depth
    random_chain(seed, L, n)            -> (a0, w, b, y) NumPy batches  N(0, 1) weights and biases
    dsigmoid(z), log_dsigmoid(z)        sigma'(z) as sigma(z)(1 - sigma(z)), and its stable log

Example: dC/db_1 of a depth-1024 chain, symbolically and in JAX::

    from gradcheck import models
    g = models.chain_backward(1024)            # ~1 s: 2048 factors, one per weight and sigma'
    g.grad_b(1) == models.chain_textbook(1024)  # True
    a0, w, b, y = models.random_chain(0, 1024, 1)
    with gradcheck.float64():
        models.chain_log_closed(a0[0], w[0], b[0], y[0])   # finite where jax.grad gives 0

Why log space: dC/db_1 is a product of L factors each at most 1/4 in absolute value when
abs(w) <= 1, so it underflows float32 to exactly 0 by depth 64 and float64 by depth 1024.  A
comparison of two zeros proves nothing; ``log|dC/db_j|`` is a cumulative *sum* that stays
finite at any depth.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import sympy as sp

from ..symbolic import sigma
from .chain import LayerRule, _depth, layer_rule

__all__ = [
    "dsigmoid",
    "log_dsigmoid",
    "UNROLL_MAX_L",
    "chain_forward",
    "chain_cost",
    "chain_autodiff",
    "closed_form_from",
    "chain_closed",
    "chain_log_closed",
    "chain_truth",
    "random_chain",
]


def dsigmoid(z):
    """sigma'(z) = sigma(z)(1 - sigma(z)) (claim sigmoid.derivative): no exp overflow."""
    s = jax.nn.sigmoid(z)
    return s * (1 - s)


def log_dsigmoid(z):
    """log sigma'(z) = log sigma(z) + log sigma(-z), finite for every finite z.

    ``log(s (1 - s))`` computed from ``s`` is -inf once s rounds to 0 or 1 (z beyond about
    +-37 in float64); 1 - sigma(z) = sigma(-z) turns it into two log-sigmoids, each stable.
    """
    return jax.nn.log_sigmoid(z) + jax.nn.log_sigmoid(-z)


#: Chains up to this depth are traced as a Python loop, deeper ones as ``lax.scan``.  Unrolled,
#: a depth-4 chain compiles about twice as fast under ``gradcheck.check`` (which compiles
#: jacfwd, jacrev, jvp and vjp of it); as a scan the compiled program stays the same size at
#: any depth (L = 1024 compiles in about a second).
UNROLL_MAX_L = 16


def chain_forward(a0, w, b, activation: Callable = jax.nn.sigmoid):
    """``(z, a)``: the L weighted inputs and the L+1 activations (a[0] = a0).

    A Python loop up to :data:`UNROLL_MAX_L` layers, ``lax.scan`` beyond (see there why).
    """
    a0 = jnp.asarray(a0)
    if w.shape[0] <= UNROLL_MAX_L:
        a, zs, As = a0, [], [a0]
        for k in range(w.shape[0]):
            z = w[k] * a + b[k]
            a = activation(z)
            zs.append(z)
            As.append(a)
        return jnp.stack(zs), jnp.stack(As)

    def layer(a, wb):
        z = wb[0] * a + wb[1]
        nxt = activation(z)
        return nxt, (z, nxt)

    _, (z, a) = jax.lax.scan(layer, a0, (w, b))
    return z, jnp.concatenate([a0[None], a])


def chain_cost(a0, w, b, y):
    """C = (a_L - y)^2 / 2 of the sigmoid chain."""
    _, a = chain_forward(a0, w, b)
    return 0.5 * (a[-1] - y) ** 2


#: ``(dC/dw, dC/db)`` by reverse-mode autodiff of :func:`chain_cost`.
chain_autodiff = jax.grad(chain_cost, argnums=(1, 2))


def _suffix_prod(x):
    # prod_{k >= i} x[k], multiplied from the output end backwards as backprop does
    return jnp.cumprod(x[::-1])[::-1]


def _suffix_sum(x):
    return jnp.cumsum(x[::-1])[::-1]


def _jax_factor(rule: LayerRule, expr: sp.Expr, log: bool):
    """Lambdify one per-layer factor (a product of w, a_prev and sigma'(z)) to JAX.

    ``sigma'(z)`` becomes :func:`dsigmoid`, or in log space :func:`log_dsigmoid`, so that the
    JAX closed form is built from the factor SymPy derived: drop a factor from the derivation
    and the JAX closed form loses it too.
    """
    ds = sp.Function("dsigma")
    e = expr.replace(lambda n: isinstance(n, sp.Derivative) and n.expr == sigma(rule.z), lambda n: ds(rule.z))
    if e.has(sigma) or e.has(sp.Derivative):
        raise ValueError(f"a per-layer factor must be a product of w, a_prev and sigma'(z), got {expr}")
    args = (rule.w, rule.a_prev, rule.z)
    if not log:
        return sp.lambdify(args, e, modules=[{"dsigma": dsigmoid}, "jax"])
    logs, sign = [], sp.S.One
    for f in sp.Mul.make_args(e):
        if isinstance(f, sp.Pow) and f.exp.is_integer:
            base, n = f.base, f.exp
        else:
            base, n = f, 1
        if base.func == ds:
            logs.append(n * sp.Function("logdsigma")(*base.args))
        else:
            logs.append(n * sp.log(sp.Abs(base)))
            sign *= sp.sign(base) ** n
    lf = sp.lambdify(args, sp.Add(*logs), modules=[{"logdsigma": log_dsigmoid}, "jax"])
    sf = sp.lambdify(args, sign, modules="jax")
    return lf, sf


def closed_form_from(rule: LayerRule | None = None):
    """``(closed, log_closed)``: the product form of every gradient, from a per-layer rule.

    ``closed(a0, w, b, y) -> (dC/dw, dC/db)``: the suffix cumulative product of the factors.
    ``log_closed(a0, w, b, y) -> (log|dC/db|, sign(dC/db))``: the same as a cumulative sum of
    logarithms, finite at any depth.
    """
    rule = rule or layer_rule()
    f_b, f_w, f_link = (_jax_factor(rule, e, False) for e in (rule.d_db, rule.d_dw, rule.d_dprev))
    (lf_b, sf_b), (lf_link, sf_link) = (_jax_factor(rule, e, True) for e in (rule.d_db, rule.d_dprev))

    def closed(a0, w, b, y):
        z, a = chain_forward(a0, w, b)
        a_prev = a[:-1]
        link = f_link(w, a_prev, z) * jnp.ones_like(z)  # layer k's factor for layers below
        below = jnp.concatenate([_suffix_prod(link[1:]), jnp.ones_like(z[:1])])  # prod_{k>j}
        out = a[-1] - y
        db = f_b(w, a_prev, z) * jnp.ones_like(z) * below * out
        dw = f_w(w, a_prev, z) * jnp.ones_like(z) * below * out
        return dw, db

    def log_closed(a0, w, b, y):
        z, a = chain_forward(a0, w, b)
        a_prev = a[:-1]
        one = jnp.ones_like(z)
        ll, sl = lf_link(w, a_prev, z) * one, sf_link(w, a_prev, z) * one
        below_log = jnp.concatenate([_suffix_sum(ll[1:]), jnp.zeros_like(z[:1])])
        below_sign = jnp.concatenate([_suffix_prod(sl[1:]), jnp.ones_like(z[:1])])
        out = a[-1] - y
        log_db = lf_b(w, a_prev, z) * one + below_log + jnp.log(jnp.abs(out))
        sign_db = sf_b(w, a_prev, z) * one * below_sign * jnp.sign(out)
        return log_db, sign_db

    return closed, log_closed


@functools.lru_cache(maxsize=1)
def _default_closed():
    return closed_form_from(layer_rule())


def chain_closed(a0, w, b, y):
    """``(dC/dw, dC/db)`` of the sigmoid chain from the derived per-layer factors (cumprod)."""
    return _default_closed()[0](a0, w, b, y)


def chain_log_closed(a0, w, b, y):
    """``(log|dC/db|, sign(dC/db))`` of the sigmoid chain, a cumulative sum: any depth."""
    return _default_closed()[1](a0, w, b, y)


def chain_truth(a0, w, b, y, dps: int = 50):
    """``(log|dC/db_j|, sign)`` for every layer with ``dps`` digits (mpmath), at any depth.

    The forward pass and the per-layer factors are evaluated in mpmath (its exponent range is
    unbounded, so nothing underflows), then combined as the proved product.  Inputs are
    float64 scalars and 1-D arrays; returns two float64 arrays of length L.
    """
    w = [mpmath.mpf(float(v)) for v in np.asarray(w, dtype=np.float64)]
    b = [mpmath.mpf(float(v)) for v in np.asarray(b, dtype=np.float64)]
    L = len(w)
    with mpmath.workdps(dps):
        a = mpmath.mpf(float(a0))
        ds = []
        for k in range(L):
            z = w[k] * a + b[k]
            # e^{-|z|} / (1 + e^{-|z|})^2: s (1 - s) would cancel to nothing for large z
            e = mpmath.exp(-abs(z))
            ds.append(e / (1 + e) ** 2)
            a = 1 / (1 + mpmath.exp(-z))
        out = a - mpmath.mpf(float(y))
        logs = np.empty(L)
        signs = np.empty(L)
        acc, sgn = mpmath.log(abs(out)) if out != 0 else -mpmath.inf, mpmath.sign(out)
        for j in range(L - 1, -1, -1):
            logs[j] = float(mpmath.log(ds[j]) + acc)
            signs[j] = float(sgn)
            link = w[j] * ds[j]
            acc = acc + (mpmath.log(abs(link)) if link != 0 else -mpmath.inf)
            sgn = sgn * mpmath.sign(link)
    return logs, signs


def random_chain(seed: int, L: int, n: int, dtype=np.float64, scale: float = 1.0):
    """``n`` random chains of depth L as NumPy batches ``(a0 (n,), w (n, L), b (n, L), y (n,))``.

    w, b ~ N(0, scale^2), a0, y ~ U(0, 1), from ``numpy.random.default_rng(seed)``.  NumPy,
    not ``jax.random``: every eager JAX operation compiles a small program of its own (about
    0.1 to 0.4 s each on a busy CPU), and the draws are the same on every backend.
    """
    L = _depth(L)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (the number of chains) must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    w = scale * rng.standard_normal((n, L))
    b = scale * rng.standard_normal((n, L))
    a0 = rng.uniform(size=n)
    y = rng.uniform(size=n)
    return tuple(np.asarray(v, dtype=dtype) for v in (a0, w, b, y))
