"""The cost of a check by input size: ``gradcheck.check`` cold and warm against
``jax.test_util.check_grads`` on the same 100 points, n = 4 ... 4,096, with the fitted growth
exponent, and a small check timed in a fresh process.  Part of the ``check`` group of
``gradcheck bench`` (:func:`gradcheck.bench.bench_check_group`); its tables are in
:mod:`gradcheck.bench._tables`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from jax.test_util import check_grads

from .._check import check
from ..models.references import layer_norm_ref, logsumexp_ref
from ._timing import growth_exponent, target

__all__ = ["SIZE_CASES", "bench_check_sizes", "small_check_fresh"]

SIZES = (4, 16, 64, 256, 1024, 4096)
SIZES_QUICK = (4, 16, 64)
SIZE_DOMAIN = (-10.0, 10.0)
#: The layer norm stops here: its reference, as written below, costs about n^2.2 in SymPy
#: (measured on 2 cores: 12 s at n = 1,024, 57 s at 2,048; so 4-5 minutes at 4,096), all of it
#: spent building the expression before the engine sees it.
LAYER_NORM_MAX = 1024


def _logsumexp_case():
    """A fresh ``(fn, reference)`` pair: the engine caches programs per ``fn`` and references
    per reference callable, so new function objects make each size's first call cold.

    The reference is written as a user writes it, with Python's ``sum()``: each ``+`` re-flattens
    the growing Add, so building it is quadratic in n (measured on 2 cores: 1.6 s at n = 1,024,
    25 s at 4,096, against 0.03 s and 0.2 s for ``sp.Add(*terms)``); the symbolic column shows it.
    """
    return (lambda x: jax.nn.logsumexp(x)), (lambda a: logsumexp_ref(a))


def _layer_norm_case():
    return (lambda x: (x - x.mean()) / jnp.sqrt(x.var() + 1e-5)), layer_norm_ref


SIZE_CASES: tuple[dict[str, Any], ...] = (
    {"name": "logsumexp", "what": "jax.nn.logsumexp", "order": 2, "make": _logsumexp_case, "max_n": None},
    {
        "name": "layer norm",
        "what": "(x - mean) / sqrt(var + 1e-5)",
        "order": 1,
        "make": _layer_norm_case,
        "max_n": LAYER_NORM_MAX,
    },
)

#: Run in a fresh interpreter: imports timed apart, then the first and a second small check.
_SMALL_CHECK_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import jax, sympy as sp
import gradcheck
t_import = time.perf_counter() - t0
ref = lambda a: a.applyfunc(lambda v: 1 / (1 + sp.exp(-v)))
out = {"import_s": t_import}
for key in ("first", "second"):
    t0 = time.perf_counter()
    r = gradcheck.check(jax.nn.sigmoid, ref, shapes=[(5,)], order=2, max_examples=%d)
    out[key + "_s"] = time.perf_counter() - t0
    out[key + "_seconds"] = dict(r.seconds)
    out[key + "_ok"] = bool(r.ok)
out["path"] = r.path
out["points_checked"] = r.points_checked
print("SMALL_CHECK " + json.dumps(out))
"""


def small_check_fresh(points: int = 100, timeout: float = 600.0) -> dict[str, Any]:
    """A small check (sigmoid on (5,), order 2) timed in a fresh Python process: the import of
    jax, sympy and gradcheck apart, then the first call and a second identical one."""
    proc = subprocess.run(
        [sys.executable, "-c", _SMALL_CHECK_SCRIPT % int(points)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SMALL_CHECK ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(
            f"the small check in a fresh process failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return {
        "function": "jax.nn.sigmoid",
        "shape": [5],
        "order": 2,
        "max_examples": int(points),
        **json.loads(line[len("SMALL_CHECK ") :]),
    }


def _time_size(case: dict, n: int, points: int, grads_points: int, seed: int) -> dict[str, Any]:
    """One function at one size: ``gradcheck.check`` cold then warm, ``check_grads`` on
    ``grads_points`` points, a cold pass then a warm pass, scaled to ``points`` points."""
    fn, ref = case["make"]()
    kw = {
        "shapes": [(n,)],
        "domain": SIZE_DOMAIN,
        "order": case["order"],
        "dtype": "float64",
        "max_examples": points,
        "seed": seed,
    }
    t0 = time.perf_counter()
    cold = check(fn, ref, **kw)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = check(fn, ref, **kw)
    t_warm = time.perf_counter() - t0

    xs = np.random.default_rng([seed, n]).uniform(*SIZE_DOMAIN, size=(grads_points, n))
    passes, flagged = [], 0
    with jax.enable_x64(True):
        for _ in range(2):  # cold: the first pass (the first call traces and compiles), then warm
            times = []
            for x in xs:
                t0 = time.perf_counter()
                try:
                    check_grads(fn, (x,), order=case["order"], modes=("fwd", "rev"))
                except AssertionError:
                    flagged += 1
                times.append(time.perf_counter() - t0)
            passes.append(times)
    first, rest = passes[0][0], passes[0][1:]
    # seconds for `points` points (measured whole when grads_points == points)
    cg_cold = first + (float(np.mean(rest)) * (points - 1) if rest else first * (points - 1))
    cg_warm = float(np.mean(passes[1])) * points
    return {
        "n": n,
        "path": cold.path,
        "points_checked": cold.points_checked,
        "ok": bool(cold.ok and warm.ok),
        "failures": sorted({f.kind for f in cold.failures}),
        "gradcheck_cold_s": t_cold,
        "gradcheck_cold_seconds": dict(cold.seconds),
        "gradcheck_warm_s": t_warm,
        "gradcheck_warm_seconds": dict(warm.seconds),
        "check_grads_points": grads_points,
        "check_grads_first_call_s": first,
        "check_grads_cold_s": cg_cold,
        "check_grads_warm_s": cg_warm,
        "check_grads_warm_per_point_s": float(np.mean(passes[1])),
        "check_grads_flagged": flagged,
        "check_grads_over_gradcheck_cold": cg_cold / t_cold,
        "check_grads_over_gradcheck_warm": cg_warm / t_warm,
    }


def _warm_up_process() -> None:
    """One-time costs of the process (lazy imports, JAX's first dispatch), not timed: a check
    and a ``check_grads`` call on another function, so that n = 4 is cold like the others."""
    check(
        lambda x: jnp.tanh(x),
        lambda a: a.applyfunc(sp.tanh),
        shapes=[(3,)],
        domain=SIZE_DOMAIN,
        order=2,
        max_examples=10,
    )
    with jax.enable_x64(True):
        check_grads(lambda x: jnp.tanh(x), (np.linspace(-1.0, 1.0, 3),), order=2, modes=("fwd", "rev"))


def bench_check_sizes(
    quick: bool = False,
    sizes: Sequence[int] | None = None,
    points: int = 100,
    grads_points: int | None = None,
    seed: int = 0,
    fresh: bool = True,
) -> dict[str, Any]:
    """Seconds per check against input size n: ``gradcheck.check`` (cold and warm) and
    ``check_grads`` on ``points`` points, for logsumexp (order 2) and a layer norm (order 1),
    float64, with the growth exponent of a log-log fit, and (``fresh``) a small check timed in
    a fresh process.

    Cold: the first call for that function at that size in this process (a fresh ``fn`` and a
    fresh reference, so the engine's caches do not help): tracing, compiling and the SymPy
    reference included.  Warm: the same call again.  ``check_grads`` runs on ``grads_points``
    random points of the same domain (default ``points``; ``--quick`` 10), once per point as a
    test suite calls it, a first pass (cold) and a second (warm), each reported as seconds
    for ``points`` points: exact when ``grads_points == points``, else the first call plus the
    mean of the others times ``points - 1``.
    """
    sizes = tuple(int(n) for n in (sizes or (SIZES_QUICK if quick else SIZES)))
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes: expected positive integers, got {sizes}")
    grads_points = int(grads_points or (min(10, points) if quick else points))
    _warm_up_process()
    functions, targets = [], []
    for case in SIZE_CASES:
        run_sizes = [n for n in sizes if case["max_n"] is None or n <= case["max_n"]]
        skipped = [n for n in sizes if n not in run_sizes]
        rows = [_time_size(case, n, points, grads_points, seed) for n in run_sizes]
        growth = {}
        if len(set(run_sizes)) >= 2:
            for key in ("gradcheck_cold", "gradcheck_warm", "check_grads_cold", "check_grads_warm"):
                growth[key] = growth_exponent(run_sizes, [r[key + "_s"] for r in rows])
        by = {r["n"]: r for r in rows}
        ratio = by[1024]["gradcheck_cold_s"] / by[64]["gradcheck_cold_s"] if {64, 1024} <= set(by) else None
        functions.append(
            {
                "name": case["name"],
                "what": case["what"],
                "order": case["order"],
                "sizes": run_sizes,
                "skipped_sizes": skipped,
                "max_n": case["max_n"],
                "rows": rows,
                "growth_exponent": growth,
                "cold_1024_over_64": ratio,
            }
        )
        if ratio is not None:
            targets.append(target("check", f"{case['name']}: gradcheck.check cold t(1,024) / t(64)", ratio, "<=", 30.0))
        cold_n = {"logsumexp": 1024, "layer norm": 256}[case["name"]]
        if cold_n in by:
            targets.append(
                target(
                    "check",
                    f"{case['name']} n = {cold_n:,}, order {case['order']}: gradcheck.check cold s",
                    by[cold_n]["gradcheck_cold_s"],
                    "<=",
                    30.0,
                )
            )
    small = small_check_fresh(points) if fresh else None
    if small is not None:
        targets.append(
            target(
                "check",
                f"small check (sigmoid (5,), order 2, {points} examples), fresh process, first call s (import apart)",
                small["first_s"],
                "<=",
                0.8,
            )
        )
        targets.append(target("check", "small check, second call s", small["second_s"], "<=", 0.2))
    return {
        "dtype": "float64",
        "domain": list(SIZE_DOMAIN),
        "points": points,
        "grads_points": grads_points,
        "sizes": list(sizes),
        "functions": functions,
        "small_check": small,
        "targets": targets,
    }
