"""The ``chain`` group: dC/db_1 of the one-neuron sigmoid chain, depth L in {4, 16, 64, 256,
1024}, 100 000 random parameter draws: the closed-form product, multiplied up alongside the
forward pass and kept exact by a mantissa/exponent split, against ``vmap(jax.grad)`` of the
network, against the previous closed form (a scan in log space), and against the floor of any
method that evaluates sigma per layer: one elementwise sigmoid pass over the same L x N
parameters.  The 50-digit truth is :func:`gradcheck.models.chain_truth`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..models import chain_truth
from ._timing import DTYPE, target, time_jitted

__all__ = [
    "RENORM_EVERY",
    "bench_chain",
    "chain_db1_autodiff",
    "chain_db1_log",
    "chain_db1_log_scan",
    "chain_draws",
    "chain_forward_only",
]


#: Layers between two renormalisations of the running product (see :func:`chain_db1_log`).
RENORM_EVERY = 8


def _chain_layer(c, wk, bk, wf):
    """One layer of the fused forward pass and product: ``c = a + i p`` in, the same out.

    ``e = exp(-|z|)`` and ``r = 1 / (1 + e)`` give both the next activation (``r``, or ``e r``
    for z < 0) and ``sigma'(z) = e r^2``: one ``exp`` and one division per element, as many as
    the logistic itself; ``p`` is multiplied by ``wf sigma'(z)``.
    """
    a, p = jnp.real(c), jnp.imag(c)
    z = wk * a + bk
    e = jnp.exp(-jnp.abs(z))
    r = 1.0 / (1.0 + e)
    return jax.lax.complex(jnp.where(z >= 0, r, e * r), p * (wf * (e * (r * r))))


def chain_db1_log(a0, w, b, y, renorm_every: int | None = None):
    """``(log|dC/db_1|, sign)`` of N chains at once; ``w``, ``b`` are (L, N), ``a0``, ``y`` (N,).

    The product proved by claim ``chain.grad_b1``,
    ``dC/db_1 = sigma'(z_1) prod_{k>=2} w_k sigma'(z_k) (a_L - y)``, multiplied up alongside
    the forward pass, layer by layer, with no logarithm per element:

    * the carry is one ``complex64`` array ``a + i p`` (activation, running signed product):
      XLA on CPU does not fuse sibling loops with several outputs, so two real carries become
      two loops over N per layer, each recomputing ``exp``; one complex carry is one fused
      loop per layer (see :func:`_chain_layer`);
    * the product stays exact in float32 by a mantissa/exponent split: every
      :data:`RENORM_EVERY` layers ``p`` is replaced by its mantissa (``jnp.frexp``: bit
      operations, exact) and its power of two is added to an integer-valued exponent ``E``;
      ``log|dC/db_1| = E log 2 + log|p (a_L - y)|`` at the end.  Between two renormalisations
      ``|p|`` falls by the product of 8 factors ``|w_k| sigma'(z_k)`` (from about 2^-3 each
      at N(0, 1) draws), far from float32's 2^-126; it underflows only where 8 consecutive
      factors average below 2^-15.7 (``|z| > 11`` on every one of them), and ``sigma'`` alone
      underflows at ``|z| > 87``, where the answer is not a float32 anyway;
    * layers are a ``fori_loop`` over blocks of :data:`RENORM_EVERY` layers, each a
      ``fori_loop`` that reads row ``l`` of ``w`` and ``b`` in place (``dynamic_index``), so no
      (K, N) block is copied out of the parameters.

    What it costs (measured on XLA:CPU, jax 0.10, 2 cores): the same order as the plain
    forward pass.  A ``log`` per element (the previous version: a scan in log space) cost
    about 3x; unrolling several layers into one fused loop is slower on XLA:CPU, not faster.
    """
    depth, _ = w.shape
    k = min(renorm_every or RENORM_EVERY, depth)
    blocks, rest = divmod(depth, k)

    def layer(l, c):
        wk = jax.lax.dynamic_index_in_dim(w, l, 0, keepdims=False)
        bk = jax.lax.dynamic_index_in_dim(b, l, 0, keepdims=False)
        return _chain_layer(c, wk, bk, jnp.where(l == 0, jnp.ones_like(wk), wk))  # no w_1 in dC/db_1

    def renorm(c, e):
        m, ex = jnp.frexp(jnp.imag(c))
        return jax.lax.complex(jnp.real(c), m), e + ex.astype(e.dtype)

    def block(i, carry):
        c, e = carry
        c = jax.lax.fori_loop(i * k, (i + 1) * k, layer, c)
        return renorm(c, e)

    c, e = jax.lax.fori_loop(0, blocks, block, (jax.lax.complex(a0, jnp.ones_like(a0)), jnp.zeros_like(a0)))
    if rest:
        c, e = renorm(jax.lax.fori_loop(blocks * k, depth, layer, c), e)
    a, p = jnp.real(c), jnp.imag(c)
    out = p * (a - y)
    return e * np.float32(np.log(2.0)) + jnp.log(jnp.abs(out)), jnp.sign(out)


def chain_db1_log_scan(a0, w, b, y):
    """The previous closed form, kept as a reference row: one scan in log space, a ``log`` per
    element (``log sigma'(z) = -|z| + log r^2``), complex carry ``sign * a + i log|p|``."""

    def layer(c, xs):
        wk, bk, first = xs
        signed_a, s = jnp.real(c), jnp.imag(c)
        a = jnp.abs(signed_a)
        z = wk * a + bk
        az = jnp.abs(z)
        e = jnp.exp(-az)
        r = 1.0 / (1.0 + e)
        a_next = jnp.where(z >= 0, r, e * r)
        wf = jnp.where(first, 1.0, wk)  # layer 1 contributes sigma'(z_1), no w_1
        signed_next = jnp.copysign(a_next, signed_a * wf)
        return jax.lax.complex(signed_next, s - az + jnp.log(jnp.abs(wf) * (r * r))), None

    depth = w.shape[0]
    c0 = jax.lax.complex(a0, jnp.zeros_like(a0))
    c, _ = jax.lax.scan(layer, c0, (w, b, jnp.arange(depth) == 0))
    out = jnp.abs(jnp.real(c)) - y
    return jnp.imag(c) + jnp.log(jnp.abs(out)), jnp.sign(jnp.real(c)) * jnp.sign(out)


def _chain_cost(a0, w, b, y):
    # the network itself, written for autodiff: the layers of gradcheck.models.chain_forward, laid out
    # (L, N) and scanned at every depth like the closed forms it is timed against
    def layer(a, wb):
        return jax.nn.sigmoid(wb[0] * a + wb[1]), None

    a_l, _ = jax.lax.scan(layer, a0, (w, b))
    return 0.5 * (a_l - y) ** 2


def chain_forward_only(a0, w, b, y):
    """a_L alone, by the same scan: the network's forward pass, no gradient (a reference row)."""

    def layer(a, wb):
        return jax.nn.sigmoid(wb[0] * a + wb[1]), None

    a_l, _ = jax.lax.scan(layer, a0, (w, b))
    return a_l - y


def chain_db1_autodiff(a0, w, b, y):
    """dC/db_1 of N chains by ``vmap(jax.grad)``; ``w``, ``b`` are (L, N) like the closed form."""
    g = jax.vmap(jax.grad(_chain_cost, argnums=2), in_axes=(0, 1, 1, 0))(a0, w, b, y)
    return g[:, 0]


def chain_draws(L: int, n: int, seed: int = 0):
    """``n`` chains of depth L, as the claims draw them: w, b ~ N(0, 1), a0, y ~ U(0, 1).

    ``w`` and ``b`` are laid out (L, N), one contiguous row per layer, the order the scan reads.
    """
    rng = np.random.default_rng([seed, L])
    w, b = rng.standard_normal((L, n)), rng.standard_normal((L, n))
    a0, y = rng.uniform(size=n), rng.uniform(size=n)
    return tuple(jnp.asarray(v, jnp.float32) for v in (a0, w, b, y))


def bench_chain(
    quick: bool = False, depths: Sequence[int] | None = None, n: int | None = None, repeats: int | None = None
) -> dict[str, Any]:
    """Time dC/db_1 over ``n`` random chains of each depth (float32, N(0, 1) weights, biases)."""
    depths = tuple(depths or ((4, 64, 256) if quick else (4, 16, 64, 256, 1024)))
    n = n or (10_000 if quick else 100_000)
    repeats = repeats or (3 if quick else 5)
    rows: list[dict[str, Any]] = []
    checks: list[bool] = []
    for L in depths:
        a0, w, b, y = chain_draws(L, n)
        t_sig, _ = time_jitted(
            lambda buf, w: jax.nn.sigmoid(w), (jnp.zeros_like(w), w), repeats=repeats, donate_first=True
        )
        t_fwd, _ = time_jitted(chain_forward_only, (a0, w, b, y), repeats=repeats)
        t_closed, (log_c, sign_c) = time_jitted(chain_db1_log, (a0, w, b, y), repeats=repeats)
        t_logscan, _ = time_jitted(chain_db1_log_scan, (a0, w, b, y), repeats=repeats)
        t_auto, g = time_jitted(chain_db1_autodiff, (a0, w, b, y), repeats=repeats)
        log_c, sign_c, g = (np.asarray(v, np.float64) for v in (log_c, sign_c, g))
        # Agreement in log space: where autodiff's float32 result is normal, and against the
        # 50-digit truth on a few chains (autodiff underflows to 0 long before L = 1024).
        # Agreement in log space.  Against the 50-digit truth on a few chains: the closed
        # form's own error.  Against float32 autodiff where its result is normal: the median,
        # because autodiff's sigma' = s (1 - s) cancels for large |z| (1e-2 off there), and it
        # underflows to 0 long before L = 1024 (the share of zeros is reported).
        normal = np.abs(g) >= np.finfo(np.float32).tiny
        d = np.abs(np.log(np.abs(g[normal])) - log_c[normal]) if normal.any() else None
        sign_ok = bool(np.all(np.sign(g[normal]) == sign_c[normal]))
        truth = []
        for i in range(4):
            a0_i, w_i, b_i, y_i = (np.asarray(v, np.float64) for v in (a0[i], w[:, i], b[:, i], y[i]))
            truth.append(chain_truth(a0_i, w_i, b_i, y_i))
        d_truth = max(abs(t[0][0] - log_c[i]) for i, t in enumerate(truth))
        sign_truth = all(t[1][0] == sign_c[i] for i, t in enumerate(truth))
        rows.append(
            {
                "L": L,
                "N": n,
                "sigmoid_pass": t_sig.record(),
                "forward_scan": t_fwd.record(),
                "closed": t_closed.record(),
                "autodiff": t_auto.record(),
                "log_scan": t_logscan.record(),
                "forward_over_sigmoid": t_fwd.median_s / t_sig.median_s,
                "closed_over_sigmoid": t_closed.median_s / t_sig.median_s,
                "autodiff_over_closed": t_auto.median_s / t_closed.median_s,
                "autodiff_underflow_fraction": float(np.mean(g == 0)),
                "max_log_diff_vs_autodiff": None if d is None else float(d.max()),
                "median_log_diff_vs_autodiff": None if d is None else float(np.median(d)),
                "signs_agree": sign_ok and sign_truth,
                "max_log_diff_vs_truth": float(d_truth),
            }
        )
        checks.append(
            sign_ok and sign_truth and d_truth < 1e-4 + 1e-5 * L and (d is None or float(np.median(d)) < 1e-4)
        )
    targets = [
        target("chain", f"closed-form time / one sigmoid pass, L = {r['L']}", r["closed_over_sigmoid"], "<=", 1.5)
        for r in rows
    ]
    deepest = max(depths)
    targets.append(
        target(
            "chain",
            f"vmap(grad) time / closed-form time, L = {deepest}",
            next(r for r in rows if r["L"] == deepest)["autodiff_over_closed"],
            ">=",
            10.0,
        )
    )
    return {"dtype": DTYPE, "N": n, "rows": rows, "agrees": all(checks), "targets": targets}
