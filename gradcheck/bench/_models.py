"""The ``models`` group: checks with no closed form (``reference=None``) at model size.

Each case is checked correct and wrong, by :func:`gradcheck.check` with ``max_examples=100``
(cold: its compile included; then warm: the same call again, programs cached) and by
:func:`jax.test_util.check_grads` looped over as many points as ``check`` checked (its 100
random points, Hypothesis's and the range's edges: 176 in all), drawn from the same domain with
a fixed seed:

* ``mlp``: ``sum(log_softmax(W2 tanh(W1 x + b1) + b2))``, x of 64, 10 classes, params in a dict;
  the width sets the size (32: 2,410 parameters, 512: 38,410, 2,000: 150,010, 8,000: 600,010).
  Wrong: tanh's derivative rule off by a relative 1e-3 (a ``custom_jvp``).
* ``attention``: a ``custom_vjp`` softmax attention of q, k, v of (n, d), its backward written
  by hand.  Wrong: the softmax backward's ``sum(dp * p)`` off by a relative 1e-3.

Reported per case: seconds, cold and warm, the cold ones with the part of them spent compiling
(tracing, lowering and XLA's compile, as :mod:`jax.monitoring` reports them; for check_grads, the
compiles of its eager primitives); verdicts; false alarms (a correct case flagged); the ratio of
the failing check to the passing one; and gradcheck (cold and warm) against check_grads on as
many points.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

from .._check import check
from ._timing import compile_seconds, growth_exponent, target

__all__ = ["bench_models", "mlp_case", "attention_case"]

ERROR = 1e-3
POINTS = 100
DOMAIN = (-1.0, 1.0)


def _tanh(err: float) -> Callable:
    @jax.custom_jvp
    def tanh(x):
        return jnp.tanh(x)

    @tanh.defjvp
    def _rule(primals, tangents):
        (x,), (t,) = primals, tangents
        y = jnp.tanh(x)
        return y, (1 - y * y) * (1 + err) * t

    return tanh


def mlp_case(width: int, wrong: bool) -> tuple[Callable, list]:
    """(fn, shapes) of the MLP of ``width`` hidden units; 75 width + 10 parameters."""
    act = _tanh(ERROR) if wrong else jnp.tanh

    def mlp(p, x):
        h = act(p["W1"] @ x + p["b1"])
        return jnp.sum(jax.nn.log_softmax(p["W2"] @ h + p["b2"]))

    return mlp, [{"W1": (width, 64), "b1": (width,), "W2": (10, width), "b2": (10,)}, (64,)]


def attention_case(n: int, d: int, wrong: bool) -> tuple[Callable, list]:
    """(fn, shapes) of the custom_vjp attention of q, k, v of (n, d)."""
    err = ERROR if wrong else 0.0

    def forward(q, k, v):
        p = jax.nn.softmax(q @ k.T / jnp.sqrt(q.shape[-1]), axis=-1)
        return p @ v, p

    @jax.custom_vjp
    def attention(q, k, v):
        return forward(q, k, v)[0]

    def fwd(q, k, v):
        out, p = forward(q, k, v)
        return out, (q, k, v, p)

    def bwd(res, g):
        q, k, v, p = res
        scale = 1 / jnp.sqrt(q.shape[-1])
        dp = g @ v.T
        ds = p * (dp - (1 + err) * jnp.sum(dp * p, axis=-1, keepdims=True))
        return ds @ k * scale, ds.T @ q * scale, p.T @ g

    attention.defvjp(fwd, bwd)
    return attention, [(n, d)] * 3


def _params(shapes: list) -> int:
    sizes = jax.tree_util.tree_leaves(shapes, is_leaf=lambda s: isinstance(s, tuple))
    return int(sum(int(np.prod(s)) for s in sizes))


def _check_grads(fn: Callable, shapes: list, points: int, seed: int, modes: tuple) -> tuple[float, float, int]:
    """Seconds, of them compiling (its eager primitives), and the number of points flagged by
    check_grads, one call per point (float32)."""
    rng = np.random.default_rng([seed, 5])
    flagged = 0
    t0 = time.perf_counter()
    with compile_seconds() as compiling:
        for _ in range(points):
            args = jax.tree_util.tree_map(
                lambda s: np.asarray(rng.uniform(*DOMAIN, size=s), np.float32),
                shapes,
                is_leaf=lambda s: isinstance(s, tuple),
            )
            try:
                check_grads(fn, tuple(args), order=1, modes=modes)
            except AssertionError:
                flagged += 1
    return time.perf_counter() - t0, compiling["s"], flagged


def _one(kind: str, size: tuple, wrong: bool, points: int, seed: int) -> dict[str, Any]:
    fn, shapes = mlp_case(size[0], wrong) if kind == "mlp" else attention_case(size[0], size[1], wrong)
    modes = ("fwd", "rev") if kind == "mlp" else ("rev",)  # a custom_vjp has no forward mode
    t0 = time.perf_counter()
    with compile_seconds() as cold_compile:
        r = check(fn, None, shapes=shapes, domain=DOMAIN, dtype="float32", max_examples=points, seed=seed)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    check(fn, None, shapes=shapes, domain=DOMAIN, dtype="float32", max_examples=points, seed=seed)
    warm = time.perf_counter() - t0
    g_s, g_compile, flagged = _check_grads(fn, shapes, r.points_checked, seed, modes)
    f = r.failures[0] if r.failures else None
    return {
        "model": kind,
        "size": list(size),
        "parameters": _params(shapes[0] if kind == "mlp" else shapes),  # the MLP's x is no parameter
        "wrong": wrong,
        "check_ok": bool(r.ok),
        "check_cold_s": cold,
        "check_cold_compile_s": cold_compile["s"],
        "check_warm_s": warm,
        "check_points": r.points_checked,
        "failure": None if f is None else f"[{f.category}] {f.kind} d/d {f.argument_name} [{f.mode}] {f.entry}",
        "check_grads_s": g_s,
        "check_grads_compile_s": g_compile,
        "check_grads_points": r.points_checked,
        "check_grads_flagged": flagged,
        "false_alarm": (not wrong) and not r.ok,
        "check_grads_false_alarms": 0 if wrong else flagged,
    }


def bench_models(quick: bool = False, points: int = POINTS, seed: int = 0) -> dict[str, Any]:
    """The ``models`` group of :func:`gradcheck.bench.run` (see the module's docstring)."""
    cases: list[tuple[str, tuple]] = (
        [("mlp", (32,)), ("mlp", (128,)), ("attention", (16, 8))]
        if quick
        else [("mlp", (32,)), ("mlp", (512,)), ("mlp", (2000,)), ("mlp", (8000,)), ("attention", (64, 32))]
        + [("attention", (256, 64))]
    )
    rows = []
    for kind, size in cases:
        ok_row = _one(kind, size, False, points, seed)
        bad_row = _one(kind, size, True, points, seed)
        for row in (ok_row, bad_row):
            row["fail_over_pass_cold"] = bad_row["check_cold_s"] / ok_row["check_cold_s"]
            row["check_over_check_grads"] = row["check_cold_s"] / row["check_grads_s"]
            row["check_warm_over_check_grads"] = row["check_warm_s"] / row["check_grads_s"]
        rows += [ok_row, bad_row]
    mlp_ok = [r for r in rows if r["model"] == "mlp" and not r["wrong"]]
    exponent = growth_exponent([r["parameters"] for r in mlp_ok], [r["check_warm_s"] for r in mlp_ok])
    at_150k = [r for r in rows if r["parameters"] == 150_010]
    targets = [
        target("models", "false alarms of gradcheck.check", float(sum(r["false_alarm"] for r in rows)), "<=", 0.0),
        target(
            "models",
            "largest failing / passing (cold)",
            max(r["fail_over_pass_cold"] for r in rows),
            "<=",
            3.0,
        ),
        target(
            "models",
            "wrong rules caught by gradcheck.check (share)",
            float(np.mean([not r["check_ok"] for r in rows if r["wrong"]])),
            ">=",
            1.0,
        ),
    ]
    for when, key in (("cold", "check_over_check_grads"), ("warm", "check_warm_over_check_grads")):
        if at_150k:
            name = f"gradcheck / check_grads at 150k parameters, as many points ({when})"
            targets.append(target("models", name, max(r[key] for r in at_150k), "<=", 3.0))
    return {
        "dtype": "float32",
        "points": points,
        "error": ERROR,
        "rows": rows,
        "mlp_warm_growth_exponent": exponent,
        "targets": targets,
    }
