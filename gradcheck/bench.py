"""Jitted benchmarks: what closed forms buy over autodiff, on whatever device JAX sees.

Four groups (issue 7), each a function returning plain-JSON rows:

``softmax``   the softmax Jacobian of a batch, closed form ``y_i (delta_ij - y_j)`` against
              ``vmap(jacrev(softmax))`` and ``vmap(jacfwd(softmax))``, C in {10, 100, 1000,
              4000}; bytes written per second against the machine's copy write rate.
``chain``     dC/db_1 of the one-neuron sigmoid chain, depth L in {4, 16, 64, 256, 1024},
              100 000 random parameter draws: the closed-form product, multiplied up alongside
              the forward pass and kept exact by a mantissa/exponent split, against
              ``vmap(jax.grad)`` of the network, against the previous closed form (a scan in log
              space), and against the floor of any method that evaluates sigma per layer: one
              elementwise sigmoid pass over the same L x N parameters.
``check``     verification throughput: points per second of :func:`gradcheck.check` (compile
              included) against :func:`jax.test_util.check_grads` called once per point, on
              the same functions, and the detection results of both (a broken ``custom_jvp``);
              and a size sweep (:func:`bench_check_sizes`): seconds per check of 100 points,
              cold and warm, for logsumexp (order 2) and a layer norm (order 1) at n = 4 ...
              4096, with the growth exponent, and a small check timed in a fresh process.
``symbolic``  seconds to derive and lambdify ``chain.grad_b1`` (L in {4, 64, 256, 1024}) and
              the softmax Jacobian (C in {2, 4, 8, 16}), with the growth exponent of a log-log
              fit.

How a jitted method is timed (:func:`time_jitted`): ``jax.jit(f).lower(*args).compile()`` is
timed on its own (trace + lower + compile: the *compile* column); then the compiled program
runs ``warmup`` times untimed and ``repeats`` times timed, each call ended by
``block_until_ready`` (JAX dispatches asynchronously: without it one times the dispatch, not the
work), and the *median* of the repeats is reported with the minimum.

Why outputs go into a donated buffer: a fresh 256 MiB output is written at the rate the
kernel can hand out zeroed pages (about 2 GB/s on the reference machine), whatever the method;
``donate_argnums`` with ``keep_unused=True`` lets XLA write the result into the memory of the
previous result, so what is timed is the method, and the copy it is compared with is timed the
same way.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "GROUPS",
    "Timing",
    "bench_chain",
    "bench_check",
    "bench_check_group",
    "bench_check_sizes",
    "bench_softmax",
    "bench_symbolic",
    "chain_db1_log",
    "chain_db1_log_scan",
    "copy_bandwidth",
    "environment",
    "growth_exponent",
    "run",
    "size_sweep_renderables",
    "small_check_fresh",
    "tables",
    "time_jitted",
    "write_json",
]

DTYPE = "float32"  # what the throughput groups run in (the dtype that a network trains in)


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Timing:
    """Compile time apart from steady state: the median (and minimum) of ``repeats`` calls."""

    compile_s: float
    median_s: float
    min_s: float
    repeats: int

    def record(self) -> dict[str, float | int]:
        return {"compile_s": self.compile_s, "median_s": self.median_s, "min_s": self.min_s,
                "repeats": self.repeats}


def time_jitted(
    f: Callable, args: Sequence[Any], *, repeats: int = 5, warmup: int = 1, donate_first: bool = False
) -> tuple[Timing, Any]:
    """Compile ``f`` for ``args``, then time it: returns the :class:`Timing` and the last output.

    ``donate_first``: ``args[0]`` is a buffer shaped like the output, donated to each call, and
    each call's output is the next call's buffer (so the output is written in place).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    jitted = jax.jit(f, donate_argnums=(0,) if donate_first else (), keep_unused=donate_first)
    t0 = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    args = list(args)
    out = None
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        out = compiled(*args)
        jax.block_until_ready(out)
        dt = time.perf_counter() - t0
        if donate_first:
            args[0] = out
        if i >= warmup:
            times.append(dt)
    return Timing(compile_s, statistics.median(times), min(times), repeats), out


def copy_bandwidth(nbytes: int = 256 * 2**20, repeats: int = 5) -> dict[str, float]:
    """The machine's copy write rate: bytes per second of a jitted copy into a donated buffer.

    The physical limit for a result that is written once: each byte of the output must be
    written, and a copy does nothing else (it also reads each byte once).
    """
    n = max(1, nbytes // 4)
    x = jnp.arange(n, dtype=jnp.float32)
    buf = jnp.zeros(n, jnp.float32)
    timing, out = time_jitted(lambda b, x: jnp.copy(x), (buf, x), repeats=repeats, donate_first=True)
    if not bool(out[-1] == n - 1):
        raise AssertionError("the copy benchmark did not copy")
    return {"bytes": n * 4, "bytes_per_s": n * 4 / timing.median_s, **timing.record()}


def growth_exponent(sizes: Sequence[float], seconds: Sequence[float]) -> float:
    """``p`` of the least-squares fit ``log t = p log n + c``: t grows as n^p."""
    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(seconds, float))
    if len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("growth_exponent: expected at least two different sizes")
    return float(np.polyfit(x, y, 1)[0])


# ---------------------------------------------------------------------------------------------
# Softmax Jacobian
# ---------------------------------------------------------------------------------------------
def softmax_jacobian_closed(a):
    """``J_ij = y_i (delta_ij - y_j)`` for one vector, the form claim ``softmax.jacobian`` proves.

    ``delta`` comes from two iotas compared inside the fused loop, not from a stored identity
    matrix: a C x C identity would be read from memory for every vector.
    """
    y = jax.nn.softmax(a)
    c = a.shape[-1]
    eye = jax.lax.broadcasted_iota(jnp.int32, (c, c), 0) == jax.lax.broadcasted_iota(jnp.int32, (c, c), 1)
    return y[:, None] * (eye.astype(y.dtype) - y[None, :])


SOFTMAX_METHODS: dict[str, Callable] = {
    "closed": jax.vmap(softmax_jacobian_closed),
    "jacrev": jax.vmap(jax.jacrev(jax.nn.softmax)),
    "jacfwd": jax.vmap(jax.jacfwd(jax.nn.softmax)),
}


def bench_softmax(quick: bool = False, sizes: Sequence[int] | None = None, out_bytes: int | None = None,
                  repeats: int | None = None, bandwidth: dict | None = None) -> dict[str, Any]:
    """Time the three softmax Jacobians on a batch whose output is about ``out_bytes``."""
    sizes = tuple(sizes or ((10, 100, 1000) if quick else (10, 100, 1000, 4000)))
    out_bytes = out_bytes or (8 if quick else 256) * 2**20
    repeats = repeats or (3 if quick else 5)
    bandwidth = bandwidth or copy_bandwidth(out_bytes, repeats)
    rng = np.random.default_rng(0)
    rows = []
    for c in sizes:
        b = max(1, out_bytes // (4 * c * c))
        a = jnp.asarray(rng.normal(scale=3.0, size=(b, c)), jnp.float32)
        probe = a[: min(b, 4)]
        ref = np.asarray(SOFTMAX_METHODS["jacrev"](probe), np.float64)
        for name, f in SOFTMAX_METHODS.items():
            got = np.asarray(f(probe), np.float64)
            err = float(np.max(np.abs(got - ref)))
            buf = jnp.zeros((b, c, c), jnp.float32)
            timing, _ = time_jitted(lambda buf, a, f=f: f(a), (buf, a), repeats=repeats, donate_first=True)
            nbytes = b * c * c * 4
            rate = nbytes / timing.median_s
            rows.append({"C": c, "B": b, "method": name, **timing.record(), "output_bytes": nbytes,
                         "bytes_per_s": rate, "fraction_of_copy": rate / bandwidth["bytes_per_s"],
                         "max_abs_diff_vs_jacrev": err, "agrees": err <= 1e-6})
    targets = []
    by = {(r["C"], r["method"]): r for r in rows}
    c_t = 1000 if 1000 in sizes else max(sizes)
    if (c_t, "closed") in by:
        targets.append(_target("softmax", f"jacrev time / closed-form time, C = {c_t}",
                               by[(c_t, "jacrev")]["median_s"] / by[(c_t, "closed")]["median_s"], ">=", 5.0))
        targets.append(_target("softmax", f"closed-form bytes/s / copy write rate, C = {c_t}",
                               by[(c_t, "closed")]["fraction_of_copy"], ">=", 0.70))
    return {"dtype": DTYPE, "output_bytes": out_bytes, "copy": bandwidth, "rows": rows, "targets": targets}


def _target(group: str, name: str, ratio: float, op: str, threshold: float) -> dict[str, Any]:
    """One target of issue 7: a ratio measured in this run, and the bound it must meet."""
    if op not in (">=", "<="):
        raise ValueError(f"op: expected '>=' or '<=', got {op!r}")
    met = ratio >= threshold if op == ">=" else ratio <= threshold
    return {"group": group, "name": name, "ratio": float(ratio), "op": op, "threshold": threshold,
            "met": bool(met)}


# ---------------------------------------------------------------------------------------------
# One-neuron chain, dC/db_1
# ---------------------------------------------------------------------------------------------
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
    # the network itself, written for autodiff: the same layers as gradcheck.networks
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


def _chain_draws(L: int, n: int, seed: int = 0):
    """``n`` chains of depth L, as the claims draw them: w, b ~ N(0, 1), a0, y ~ U(0, 1).

    ``w`` and ``b`` are laid out (L, N), one contiguous row per layer, the order the scan reads.
    """
    rng = np.random.default_rng([seed, L])
    w, b = rng.standard_normal((L, n)), rng.standard_normal((L, n))
    a0, y = rng.uniform(size=n), rng.uniform(size=n)
    return tuple(jnp.asarray(v, jnp.float32) for v in (a0, w, b, y))


def bench_chain(quick: bool = False, depths: Sequence[int] | None = None, n: int | None = None,
                repeats: int | None = None) -> dict[str, Any]:
    """Time dC/db_1 over ``n`` random chains of each depth (float32, N(0, 1) weights, biases)."""
    from . import networks as nw

    depths = tuple(depths or ((4, 64, 256) if quick else (4, 16, 64, 256, 1024)))
    n = n or (10_000 if quick else 100_000)
    repeats = repeats or (3 if quick else 5)
    rows, checks = [], []
    for L in depths:
        a0, w, b, y = _chain_draws(L, n)
        t_sig, _ = time_jitted(lambda buf, w: jax.nn.sigmoid(w), (jnp.zeros_like(w), w),
                               repeats=repeats, donate_first=True)
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
        truth = [nw.chain_truth(*(np.asarray(v, np.float64) for v in (a0[i], w[:, i], b[:, i], y[i])))
                 for i in range(4)]
        d_truth = max(abs(t[0][0] - log_c[i]) for i, t in enumerate(truth))
        sign_truth = all(t[1][0] == sign_c[i] for i, t in enumerate(truth))
        rows.append({
            "L": L, "N": n,
            "sigmoid_pass": t_sig.record(), "forward_scan": t_fwd.record(), "closed": t_closed.record(),
            "autodiff": t_auto.record(), "log_scan": t_logscan.record(),
            "forward_over_sigmoid": t_fwd.median_s / t_sig.median_s,
            "closed_over_sigmoid": t_closed.median_s / t_sig.median_s,
            "autodiff_over_closed": t_auto.median_s / t_closed.median_s,
            "autodiff_underflow_fraction": float(np.mean(g == 0)),
            "max_log_diff_vs_autodiff": None if d is None else float(d.max()),
            "median_log_diff_vs_autodiff": None if d is None else float(np.median(d)),
            "signs_agree": sign_ok and sign_truth,
            "max_log_diff_vs_truth": float(d_truth),
        })
        checks.append(sign_ok and sign_truth and d_truth < 1e-4 + 1e-5 * L
                      and (d is None or float(np.median(d)) < 1e-4))
    targets = [_target("chain", f"closed-form time / one sigmoid pass, L = {r['L']}",
                       r["closed_over_sigmoid"], "<=", 1.5) for r in rows]
    deepest = max(depths)
    targets.append(_target("chain", f"vmap(grad) time / closed-form time, L = {deepest}",
                           next(r for r in rows if r["L"] == deepest)["autodiff_over_closed"], ">=", 10.0))
    return {"dtype": DTYPE, "N": n, "rows": rows, "agrees": all(checks), "targets": targets}


# ---------------------------------------------------------------------------------------------
# Verification throughput
# ---------------------------------------------------------------------------------------------
def _check_cases():
    """The functions both checkers see: three correct, one broken ``custom_jvp``.

    The broken rule is wrong on part of the domain only (a 10% error in sigma' for z > 2), the
    kind of bug a check at a few hand-picked points misses.
    """
    import sympy as sp

    @jax.custom_jvp
    def broken_sigmoid(x):
        return jax.nn.sigmoid(x)

    @broken_sigmoid.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        s = jax.nn.sigmoid(x)
        return s, jnp.where(x > 2.0, 1.1, 1.0) * s * (1 - s) * t

    def softmax_ref(a):
        e = a.applyfunc(sp.exp)
        return e / sum(e)

    def log_softmax_ref(a):
        return a.applyfunc(lambda v: v - sp.log(sum(sp.exp(u) for u in a)))

    return [
        {"name": "sigmoid", "fn": jax.nn.sigmoid, "ref": lambda x: 1 / (1 + sp.exp(-x)), "shape": (),
         "domain": (-20.0, 20.0), "broken": False},
        {"name": "softmax (5,)", "fn": jax.nn.softmax, "ref": softmax_ref, "shape": (5,),
         "domain": (-20.0, 20.0), "broken": False},
        {"name": "log_softmax (5,)", "fn": jax.nn.log_softmax, "ref": log_softmax_ref, "shape": (5,),
         "domain": (-20.0, 20.0), "broken": False},
        {"name": "broken custom_jvp sigmoid", "fn": broken_sigmoid, "ref": lambda x: 1 / (1 + sp.exp(-x)),
         "shape": (), "domain": (-20.0, 20.0), "broken": True},
    ]


def bench_check(quick: bool = False, check_points: int | None = None, grads_points: int | None = None,
                seed: int = 0) -> dict[str, Any]:
    """Points per second of ``gradcheck.check`` vs ``check_grads`` once per point (float64, order 1).

    ``gradcheck.check`` is timed from the call to the report, cold (its compile included) on
    ``check_points`` points; ``check_grads`` on ``grads_points`` points, one call each, as a
    test suite calls it.  Each checker's verdict on each function is recorded: the broken rule
    must be caught by both, the correct functions passed by both.
    """
    from jax.test_util import check_grads

    from ._x64 import float64
    from .check import check

    check_points = check_points or (1_000 if quick else 100_000)
    grads_points = grads_points or (20 if quick else 1_000)
    cases = _check_cases()
    if quick:  # one correct function and the broken one
        cases = [c for c in cases if c["name"] == "sigmoid" or c["broken"]]
    rows = []
    for i, case in enumerate(cases):
        t0 = time.perf_counter()
        report = check(case["fn"], case["ref"], shapes=[case["shape"]], domain=case["domain"],
                       max_examples=check_points, seed=seed)
        t_check = time.perf_counter() - t0
        pts = report.points_checked
        rng = np.random.default_rng([seed, i])
        xs = rng.uniform(*case["domain"], size=(grads_points, *case["shape"]))
        flagged = 0
        with float64():
            t0 = time.perf_counter()
            for x in xs:
                try:
                    check_grads(case["fn"], (x,), order=1, modes=("fwd", "rev"))
                except AssertionError:
                    flagged += 1
            t_grads = time.perf_counter() - t0
        rows.append({
            "function": case["name"], "broken": case["broken"],
            "check_points": pts, "check_s": t_check, "check_points_per_s": pts / t_check,
            "check_ok": bool(report.ok), "check_failures": [f.kind for f in report.failures],
            "check_grads_points": grads_points, "check_grads_s": t_grads,
            "check_grads_points_per_s": grads_points / t_grads, "check_grads_flagged": flagged,
            "speedup": (pts / t_check) / (grads_points / t_grads),
            "same_verdict": bool(report.ok) == (flagged == 0) == (not case["broken"]),
        })
    total_check = sum(r["check_points"] for r in rows) / sum(r["check_s"] for r in rows)
    total_grads = sum(r["check_grads_points"] for r in rows) / sum(r["check_grads_s"] for r in rows)
    targets = [
        _target("check", "check points/s / check_grads points/s (compile included)",
                total_check / total_grads, ">=", 100.0),
        _target("check", "share of functions with the same verdict from both (broken one caught)",
                float(np.mean([r["same_verdict"] for r in rows])), ">=", 1.0),
    ]
    return {"dtype": "float64", "order": 1, "rows": rows, "check_points_per_s": total_check,
            "check_grads_points_per_s": total_grads, "targets": targets}


# ---------------------------------------------------------------------------------------------
# Verification cost by input size
# ---------------------------------------------------------------------------------------------
def bench_check_group(quick: bool = False, sizes: Sequence[int] | None = None) -> dict[str, Any]:
    """The ``check`` group of :func:`run`: :func:`bench_check` and :func:`bench_check_sizes`."""
    result = bench_check(quick=quick)
    sweep = bench_check_sizes(quick=quick, sizes=sizes)
    result["size_sweep"] = sweep
    result["targets"] = result["targets"] + sweep["targets"]
    return result


# ---------------------------------------------------------------------------------------------
# Symbolic cost
# ---------------------------------------------------------------------------------------------
def _derive_chain_grad_b1(L: int):
    """The claim's own derivation when ``proofs.chain`` is there, else the per-layer product."""
    try:
        from proofs import chain
    except ImportError:  # the catalogue is not importable: derive with the engine directly
        from . import networks as nw

        g = nw.chain_backward(L)
        return g.grad_b(1), g.s
    d = chain.grad_b1.derive(L=L)
    return d["product"], d["gradient"].s


def _clear_symbolic_caches():
    from . import networks as nw

    for f in (nw.chain_symbols, nw.layer_rule):
        f.cache_clear()


def _time_chain_symbolic(L: int) -> dict[str, Any]:
    import sympy as sp

    from .symbolic import concrete

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
    from ._x64 import float64

    c = np.where(np.arange(1, L + 1) % 2 == 0, 2.0, 0.5)
    expected = 0.25 * float(np.prod(c[1:]))  # sigma'(0) = 1/4, dC/da_L = a_L - y = 1
    with float64():
        w = jnp.asarray(4.0 * c, jnp.float64)
        z = jnp.zeros((L,), jnp.float64)
        t0 = time.perf_counter()
        jitted = jax.jit(lambda w, z, a, y: fn(list(w), list(z), a, y))
        value = float(jitted(w, z, jnp.float64(1.0), jnp.float64(0.0)))
        t_jit = time.perf_counter() - t0
    return {"what": "chain.grad_b1", "size": L, "derive_s": t_derive, "lambdify_s": t_lambdify,
            "seconds": t_derive + t_lambdify, "first_call_s": t_jit, "value": value,
            "expected": expected, "ok": value == expected}


def _derive_softmax_jacobian(c: int):
    """``(a, J)``: claim ``softmax.jacobian``'s derivation when ``proofs.softmax`` is there."""
    try:
        from proofs import softmax
    except ImportError:  # the catalogue is not importable: Matrix.jacobian of the softmax
        import sympy as sp

        from .symbolic import array_symbols

        a = array_symbols("a", (c,))
        e = a.applyfunc(sp.exp)
        return a, (e / sum(e)).jacobian(a)
    d = softmax.jacobian.derive(C=c)
    return d["a"], d["J"]


def _time_softmax_symbolic(c: int) -> dict[str, Any]:
    import sympy as sp

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
    return {"what": "softmax jacobian", "size": c, "derive_s": t_derive, "lambdify_s": t_lambdify,
            "seconds": t_derive + t_lambdify, "first_call_s": t_jit, "value": err,
            "expected": 0.0, "ok": err <= 1e-6}


def _median_run(timer: Callable[[int], dict], size: int, repeats: int) -> dict[str, Any]:
    runs = sorted((timer(size) for _ in range(repeats)), key=lambda r: r["seconds"])
    row = runs[len(runs) // 2]
    row["repeats"] = repeats
    return row


def bench_symbolic(quick: bool = False, depths: Sequence[int] | None = None,
                   classes: Sequence[int] | None = None, repeats: int | None = None) -> dict[str, Any]:
    """Seconds to derive and lambdify (SymPy only; the median run of ``repeats``, caches
    cleared before each), and the first jitted call apart."""
    depths = tuple(depths or ((4, 16, 32) if quick else (4, 64, 256, 1024)))
    classes = tuple(classes or ((2, 4, 6) if quick else (2, 4, 8, 16)))
    repeats = repeats or (1 if quick else 3)
    _time_chain_symbolic(2), _time_softmax_symbolic(2)  # imports and first-use caches, not timed
    rows = [_median_run(_time_chain_symbolic, L, repeats) for L in depths]
    rows += [_median_run(_time_softmax_symbolic, c, repeats) for c in classes]
    growth = {}
    for what, sizes in (("chain.grad_b1", depths), ("softmax jacobian", classes)):
        rs = [r for r in rows if r["what"] == what]
        growth[what] = growth_exponent([r["size"] for r in rs], [r["seconds"] for r in rs])
    return {"rows": rows, "growth_exponent": growth, "targets": []}


# ---------------------------------------------------------------------------------------------
# All of it
# ---------------------------------------------------------------------------------------------
GROUPS: dict[str, Callable[..., dict[str, Any]]] = {
    "softmax": bench_softmax,
    "chain": bench_chain,
    "check": bench_check_group,
    "symbolic": bench_symbolic,
}


def environment() -> dict[str, Any]:
    """Device, versions and load: what a reader needs to compare two runs."""
    import jaxlib

    from . import __version__

    dev = jax.devices()[0]
    return {
        "gradcheck_version": __version__,
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "device": {"platform": dev.platform, "kind": dev.device_kind, "count": jax.device_count()},
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "dtype": DTYPE,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def run(only: Sequence[str] | None = None, quick: bool = False, progress: Callable[[str], None] | None = None,
        sizes: Sequence[int] | None = None) -> dict[str, Any]:
    """Run the selected groups (default: all) and return one JSON-ready dict.

    ``sizes``: the input sizes of the ``check`` group's size sweep (default: its own)."""
    names = list(only or GROUPS)
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise ValueError(f"only: expected group names from {sorted(GROUPS)}, got {unknown}")
    result: dict[str, Any] = {**environment(), "quick": bool(quick), "groups": {}}
    t0 = time.perf_counter()
    for name in names:
        if progress:
            progress(name)
        t = time.perf_counter()
        kwargs = {"sizes": sizes} if name == "check" and sizes else {}
        result["groups"][name] = GROUPS[name](quick=quick, **kwargs)
        result["groups"][name]["seconds"] = time.perf_counter() - t
    result["seconds"] = time.perf_counter() - t0
    result["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result["targets"] = [t for g in result["groups"].values() for t in g.get("targets", [])]
    return result


def write_json(result: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``result`` whole (:func:`gradcheck._files.write_whole`)."""
    from ._files import write_whole

    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--json: the folder {folder!r} does not exist")
    write_whole(path, json.dumps(result, indent=2, sort_keys=False) + "\n")


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------
def _ms(s: float) -> str:
    return f"{s * 1e3:.3g}"


def _gbs(b: float) -> str:
    return f"{b / 1e9:.3g}"


def _value_cell(row) -> str:
    if row["what"] == "softmax jacobian":
        return f"|diff| {row['value']:.0e}" + ("" if row["ok"] else " NO")
    return f"{row['value']:.6g}" + ("" if row["ok"] else f" (exact {row['expected']:g}): overflow")


def tables(result: dict[str, Any]) -> list:
    """The result as ``rich`` tables, one per group (the check group's size sweep: a table per
    function and lines of text) and one of the targets."""
    from rich.table import Table

    out = []
    g = result["groups"]
    if "softmax" in g:
        r = g["softmax"]
        cp = r["copy"]
        t = Table(title=f"softmax Jacobian, batch of B vectors, {r['dtype']}, output ~{r['output_bytes'] // 2**20} MiB "
                        f"into a donated buffer; copy write rate {_gbs(cp['bytes_per_s'])} GB/s")
        for col in ("C", "B", "method", "compile ms", "median ms", "min ms", "GB/s", "of copy", "max |diff|"):
            t.add_column(col, justify="right" if col != "method" else "left")
        for row in r["rows"]:
            t.add_row(str(row["C"]), str(row["B"]), row["method"], _ms(row["compile_s"]), _ms(row["median_s"]),
                      _ms(row["min_s"]), _gbs(row["bytes_per_s"]), f"{row['fraction_of_copy']:.0%}",
                      f"{row['max_abs_diff_vs_jacrev']:.1e}")
        out.append(t)
    if "chain" in g:
        r = g["chain"]
        t = Table(title=f"dC/db1 of the one-neuron chain, N = {r['N']} draws, {r['dtype']}; "
                        f"closed form = product fused into the forward pass, renormalised every "
                        f"{RENORM_EVERY} layers (log-scan: the previous closed form)")
        for col in ("L", "sigmoid pass ms", "forward scan ms", "closed ms", "log-scan ms", "vmap(grad) ms",
                    "closed/sigmoid",
                    "grad/closed",
                    "compile ms (closed, grad)", "grad = 0", "max |dlog| vs grad, truth"):
            t.add_column(col, justify="right")
        for row in r["rows"]:
            d_auto = "-" if row["max_log_diff_vs_autodiff"] is None else f"{row['max_log_diff_vs_autodiff']:.1e}"
            t.add_row(str(row["L"]), _ms(row["sigmoid_pass"]["median_s"]), _ms(row["forward_scan"]["median_s"]),
                      _ms(row["closed"]["median_s"]), _ms(row["log_scan"]["median_s"]),
                      _ms(row["autodiff"]["median_s"]), f"{row['closed_over_sigmoid']:.2f}",
                      f"{row['autodiff_over_closed']:.1f}",
                      f"{_ms(row['closed']['compile_s'])}, {_ms(row['autodiff']['compile_s'])}",
                      f"{row['autodiff_underflow_fraction']:.0%}",
                      f"{d_auto}, {row['max_log_diff_vs_truth']:.1e}")
        out.append(t)
    if "check" in g:
        r = g["check"]
        t = Table(title=f"verification throughput, {r['dtype']}, order {r['order']}: gradcheck.check "
                        f"(cold, compile included) vs jax.test_util.check_grads once per point")
        for col in ("function", "check points", "check s", "check pts/s", "check verdict",
                    "check_grads points", "check_grads pts/s", "check_grads flagged", "speed-up"):
            t.add_column(col, justify="left" if col in ("function", "check verdict") else "right")
        for row in r["rows"]:
            verdict = "pass" if row["check_ok"] else "FAIL " + ",".join(sorted(set(row["check_failures"])))
            t.add_row(row["function"], str(row["check_points"]), f"{row['check_s']:.2f}",
                      f"{row['check_points_per_s']:.0f}", verdict, str(row["check_grads_points"]),
                      f"{row['check_grads_points_per_s']:.0f}", str(row["check_grads_flagged"]),
                      f"{row['speedup']:.0f}x")
        out.append(t)
        if r.get("size_sweep"):
            out.extend(size_sweep_renderables(r["size_sweep"]))
    if "symbolic" in g:
        r = g["symbolic"]
        ge = r["growth_exponent"]
        t = Table(title="symbolic cost: SymPy derive + lambdify(cse=True), first jitted call apart; "
                        + ", ".join(f"{k} ~ size^{v:.2f}" for k, v in ge.items())
                        + "; value: chain at w_k = 4 c_k, z = 0 (exact 0.5), softmax |diff| vs closed form")
        for col in ("what", "size", "derive s", "lambdify s", "derive + lambdify s", "first call s",
                    "value (float64)"):
            t.add_column(col, justify="left" if col == "what" else "right")
        for row in r["rows"]:
            t.add_row(row["what"], str(row["size"]), f"{row['derive_s']:.3f}", f"{row['lambdify_s']:.3f}",
                      f"{row['seconds']:.3f}", f"{row['first_call_s']:.3f}", _value_cell(row))
        out.append(t)
    if result.get("targets"):
        t = Table(title="targets of issue 7, measured as ratios in this run")
        for col in ("group", "ratio", "measured", "needed", "met"):
            t.add_column(col, justify="right" if col in ("measured", "needed") else "left")
        for tg in result["targets"]:
            t.add_row(tg["group"], tg["name"], f"{tg['ratio']:.3g}", f"{tg['op']} {tg['threshold']:g}",
                      "yes" if tg["met"] else "NO")
        out.append(t)
    return out


# the size sweep lives in its own module; its names stay reachable here
from .bench_sizes import (  # noqa: E402
    bench_check_sizes, size_sweep_renderables, small_check_fresh,
)
